"""Reward policies: validated JSON documents and their pure evaluation.

The names exported here are the pure engine (stdlib and `rewards.money` only): nothing in
it touches the database or Flask, so a policy can be evaluated at will and replayed over
history. `versions` (publishing), `drafts` (the admin's editor) and `replay` use the
database.
"""

from rewards.policies.canonical import to_document
from rewards.policies.cautions import cautions
from rewards.policies.evaluate import Decision, Evaluation, History, Purchase, evaluate
from rewards.policies.months import add_months, month_start
from rewards.policies.parse import PolicyInvalid, parse_policy
from rewards.policies.policy import Limit, Milestone, Policy, RewardRule, Tier
from rewards.policies.rounding import percent_of, pro_rata

__all__ = [
    "Decision",
    "Evaluation",
    "History",
    "Limit",
    "Milestone",
    "Policy",
    "PolicyInvalid",
    "Purchase",
    "RewardRule",
    "Tier",
    "add_months",
    "cautions",
    "evaluate",
    "month_start",
    "parse_policy",
    "percent_of",
    "pro_rata",
    "to_document",
]
