"""Fraud signals on referrals (computed when signups and purchases are recorded) and the
coordinator's decisions on them. What a signal does to rewards is `rewards.ledger.holds`."""
