"""The rewards ledger: computing a purchase's rewards under the published policy, reward
lines and balances moved by compare-and-set, holds and releases, refunds and clawbacks,
and `check-ledger`'s invariants."""
