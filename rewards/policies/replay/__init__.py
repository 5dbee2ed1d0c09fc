"""Replaying a draft policy over recent purchases and comparing it with what was paid."""

from rewards.policies.replay.results import per_customer
from rewards.policies.replay.simulation import simulate

__all__ = ["per_customer", "simulate"]
