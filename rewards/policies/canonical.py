"""A Policy back to its canonical JSON document, so `parse_policy(to_document(p)) == p`."""

from __future__ import annotations

from typing import Any

from rewards.policies.policy import Limit, Policy, RewardRule


def _rule_document(rule: RewardRule) -> dict:
    if rule.fixed is not None:
        return {"fixed": rule.fixed}
    out: dict[str, Any] = {"percent_bps": rule.percent_bps}
    if rule.cap is not None:
        out["cap"] = rule.cap
    return out


def _limit_document(limit: Limit) -> dict:
    out = {}
    if limit.count is not None:
        out["count"] = limit.count
    if limit.amount is not None:
        out["amount"] = limit.amount
    return out


def to_document(policy: Policy) -> dict:
    """The canonical JSON document: defaults spelled out, absent options left out."""
    purchases = policy.purchases
    doc: dict[str, Any] = {
        "currency": policy.currency,
        "hold_days": policy.hold_days,
        "min_purchase": policy.min_purchase,
        "purchases": purchases if isinstance(purchases, str) else {"within_months": purchases},
    }
    if policy.referrer is not None:
        doc["referrer"] = _rule_document(policy.referrer)
    if policy.tiers:
        doc["tiers"] = [{"from": t.start, "referrer": _rule_document(t.referrer)}
                        for t in policy.tiers]
    if policy.milestones:
        doc["milestones"] = [{"at": m.at, "bonus": m.bonus} for m in policy.milestones]
    if policy.friend is not None:
        doc["friend"] = _rule_document(policy.friend)
    limits = {}
    if policy.month_limit is not None:
        limits["month"] = _limit_document(policy.month_limit)
    if policy.lifetime_limit is not None:
        limits["lifetime"] = _limit_document(policy.lifetime_limit)
    if limits:
        doc["limits"] = limits
    return doc
