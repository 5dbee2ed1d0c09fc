"""A policy prepared for evaluation: its rules, tiers, milestones and limits with their
texts worked out once per Policy object, and kept in a small cache keyed by identity."""

from __future__ import annotations

from datetime import timedelta

from rewards.money import format_money
from rewards.policies.policy import Limit, Policy, RewardRule
from rewards.policies.wording import ordinal, percent_text


class CompiledRule:
    """A reward rule with its texts prepared once."""

    __slots__ = ("name", "fixed", "bps", "cap", "percent", "cap_text", "prefix", "fixed_text")

    def __init__(self, name: str, rule: RewardRule, currency: str, prefix: str) -> None:
        self.name = name
        self.fixed = rule.fixed
        self.bps = rule.percent_bps
        self.cap = rule.cap
        self.prefix = prefix
        self.percent = percent_text(rule.percent_bps) if rule.percent_bps is not None else ""
        self.cap_text = format_money(rule.cap, currency) if rule.cap is not None else ""
        if rule.fixed is not None:
            body = f"fixed {format_money(rule.fixed, currency)} for the referral."
            self.fixed_text = f"{prefix}a {body}" if prefix else f"A {body}"
        else:
            self.fixed_text = ""


class CompiledPolicy:
    """Everything `evaluate` needs from a policy, computed once per Policy object."""

    __slots__ = (
        "policy", "currency", "hold", "min_purchase", "min_text", "first", "within",
        "base", "tier_froms", "tier_rules", "milestones", "friend", "limited",
        "month_count", "month_amount", "life_count", "life_amount",
        "month_count_text", "month_amount_text", "life_count_text", "life_amount_text",
    )

    def __init__(self, policy: Policy) -> None:
        currency = policy.currency
        self.policy = policy
        self.currency = currency
        self.hold = timedelta(days=policy.hold_days)
        self.min_purchase = policy.min_purchase
        self.min_text = format_money(policy.min_purchase, currency)
        self.first = policy.purchases == "first"
        self.within = policy.purchases if isinstance(policy.purchases, int) else None
        self.base = (CompiledRule("referrer", policy.referrer, currency, "")
                     if policy.referrer is not None else None)
        tiers = sorted(enumerate(policy.tiers), key=lambda item: item[1].start)
        self.tier_froms = tuple(tier.start for _, tier in tiers)
        self.tier_rules = tuple(
            CompiledRule(f"tiers[{i}].referrer", tier.referrer, currency,
                         f"Tier from the {ordinal(tier.start)} friend: ")
            for i, tier in tiers
        )
        self.milestones = {
            m.at: (f"milestones[{i}]", m.bonus,
                   f"Milestone bonus for the {ordinal(m.at)} rewarded friend: "
                   f"{format_money(m.bonus, currency)}.")
            for i, m in enumerate(policy.milestones)
        }
        self.friend = (CompiledRule("friend", policy.friend, currency, "")
                       if policy.friend is not None else None)
        month = policy.month_limit or Limit()
        life = policy.lifetime_limit or Limit()
        self.month_count, self.month_amount = month.count, month.amount
        self.life_count, self.life_amount = life.count, life.amount
        self.limited = any(v is not None for v in (month.count, month.amount,
                                                   life.count, life.amount))
        self.month_count_text = _count_text("monthly", month.count)
        self.life_count_text = _count_text("lifetime", life.count)
        self.month_amount_text = _amount_text("monthly", month.amount, currency)
        self.life_amount_text = _amount_text("lifetime", life.amount, currency)


def _count_text(period: str, count: int | None) -> str:
    if count is None:
        return ""
    return f"{period} limit of {count} reward{'' if count == 1 else 's'}"


def _amount_text(period: str, amount: int | None, currency: str) -> str:
    return "" if amount is None else f"{period} limit of {format_money(amount, currency)}"


_CACHE: dict[int, CompiledPolicy] = {}
_CACHE_SIZE = 1024


def compiled(policy: Policy) -> CompiledPolicy:
    """The prepared form of `policy`, made on its first evaluation."""
    prepared = _CACHE.get(id(policy))
    if prepared is not None and prepared.policy is policy:
        return prepared
    prepared = CompiledPolicy(policy)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[id(policy)] = prepared  # holds the policy, so its id cannot be reused meanwhile
    return prepared
