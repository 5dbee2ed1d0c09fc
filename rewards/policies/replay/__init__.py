"""Replaying a draft policy over recent purchases and comparing it with what was paid."""

from rewards.policies.replay.simulation import per_customer, simulate

__all__ = ["per_customer", "simulate"]
