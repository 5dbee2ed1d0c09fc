"""Who referred whom, and why: link clicks, the resolver chain (a code, the visitor's
clicks in the window, an earlier signup), signups, purchases, and the purchases nothing
tied to a referrer. Every attribution carries its reason in one sentence."""
