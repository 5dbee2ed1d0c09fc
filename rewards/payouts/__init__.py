"""Payouts: proposed from available rewards, approved by coordinators, sent once through
Stripe (or paid by hand), how each customer is paid, and the coordinator's payout queue."""
