"""Parsing each part of a policy document: currency, reward rules, purchases, tiers,
milestones and limits, with the bounds each value must keep.

Each function reports its problems to the `Checker` and returns what it could build;
`parse_policy` uses the result only when the whole document had no error.
"""

from __future__ import annotations

from typing import Any

from rewards.policies.checker import Checker
from rewards.policies.policy import Limit, Milestone, RewardRule, Tier

MAX_AMOUNT = 10**9  # the largest fixed reward, cap or bonus, in minor units
MAX_BPS = 10_000
MAX_WITHIN_MONTHS = 120
MAX_TIERS = 20
MAX_MILESTONES = 50

_RULE_KEYS = ("fixed", "percent_bps", "cap")
_TIER_KEYS = ("from", "referrer")
_MILESTONE_KEYS = ("at", "bonus")
_LIMITS_KEYS = ("month", "lifetime")
_LIMIT_KEYS = ("count", "amount")
_PURCHASES_KEYS = ("within_months",)


def parse_currency(check: Checker, value: Any, program_currency: str | None) -> str | None:
    """3 lowercase letters, and the program's currency when there is one."""
    if not (isinstance(value, str) and len(value) == 3 and value.isascii()
            and value.isalpha() and value.islower()):
        check.error("currency", "must be 3 lowercase letters, like usd")
    elif program_currency is not None and value != program_currency.lower():
        check.error("currency", f"must be the program's currency, {program_currency.lower()}")
    else:
        return value
    return None


def parse_rule(check: Checker, value: Any, path: str) -> RewardRule | None:
    data = check.obj(value, path, _RULE_KEYS)
    if data is None:
        return None
    has_fixed, has_percent = "fixed" in data, "percent_bps" in data
    ok = True
    if has_fixed and has_percent:
        check.error(path, "give either fixed or percent_bps, not both")
        ok = False
    elif not has_fixed and not has_percent:
        check.error(path, "give fixed or percent_bps")
        ok = False
    fixed = percent = cap = None
    if has_fixed:
        fixed = check.integer(data["fixed"], f"{path}.fixed", 1, MAX_AMOUNT, amount=True)
        ok = ok and fixed is not None
    if has_percent:
        percent = check.integer(data["percent_bps"], f"{path}.percent_bps", 1, MAX_BPS)
        ok = ok and percent is not None
    if "cap" in data:
        if has_fixed and not has_percent:
            check.error(f"{path}.cap", "only goes with percent_bps, not with fixed")
            ok = False
        else:
            cap = check.integer(data["cap"], f"{path}.cap", 1, MAX_AMOUNT, amount=True)
            ok = ok and cap is not None
    return RewardRule(fixed=fixed, percent_bps=percent, cap=cap) if ok else None


def parse_purchases(check: Checker, value: Any) -> str | int | None:
    if isinstance(value, str):
        if value in ("first", "all"):
            return value
    elif isinstance(value, dict):
        data = check.obj(value, "purchases", _PURCHASES_KEYS)
        assert data is not None
        if not check.has(data, "purchases", "within_months"):
            return None
        return check.integer(data["within_months"], "purchases.within_months", 1,
                             MAX_WITHIN_MONTHS)
    check.error("purchases", 'must be "first", "all" or {"within_months": N}')
    return None


def parse_tiers(check: Checker, value: Any) -> tuple[Tier, ...]:
    """The tiers in document order; each `from` must be greater than the one before."""
    found = []
    previous: tuple[int, int] | None = None  # (index, from) of the last valid `from`
    for index, path, data in check.objects(value, "tiers", MAX_TIERS, _TIER_KEYS):
        start = rule = None
        if check.has(data, path, "from"):
            start = check.integer(data["from"], f"{path}.from", 2)
            if start is not None:
                if previous is not None and start <= previous[1]:
                    check.error(f"{path}.from", f"must be greater than tiers[{previous[0]}].from")
                    start = None
                else:
                    previous = (index, start)
        if check.has(data, path, "referrer"):
            rule = parse_rule(check, data["referrer"], f"{path}.referrer")
        if start is not None and rule is not None:
            found.append(Tier(start=start, referrer=rule))
    return tuple(found)


def parse_milestones(check: Checker, value: Any) -> tuple[Milestone, ...]:
    """The milestones in document order; no two at the same `at`."""
    found = []
    seen: dict[int, int] = {}  # at -> index of its first milestone
    for index, path, data in check.objects(value, "milestones", MAX_MILESTONES,
                                           _MILESTONE_KEYS):
        at = bonus = None
        if check.has(data, path, "at"):
            at = check.integer(data["at"], f"{path}.at", 1)
            if at is not None:
                if at in seen:
                    check.error(f"{path}.at", f"must differ from milestones[{seen[at]}].at")
                    at = None
                else:
                    seen[at] = index
        if check.has(data, path, "bonus"):
            bonus = check.integer(data["bonus"], f"{path}.bonus", 1, MAX_AMOUNT, amount=True)
        if at is not None and bonus is not None:
            found.append(Milestone(at=at, bonus=bonus))
    return tuple(found)


def parse_limits(check: Checker, value: Any) -> tuple[Limit | None, Limit | None]:
    """(the monthly limit, the lifetime limit), each None when absent."""
    month = lifetime = None
    data = check.obj(value, "limits", _LIMITS_KEYS)
    if data is not None:
        if "month" in data:
            month = _parse_limit(check, data["month"], "limits.month")
        if "lifetime" in data:
            lifetime = _parse_limit(check, data["lifetime"], "limits.lifetime")
    return month, lifetime


def _parse_limit(check: Checker, value: Any, path: str) -> Limit | None:
    data = check.obj(value, path, _LIMIT_KEYS)
    if data is None:
        return None
    if not any(key in data for key in _LIMIT_KEYS):
        check.error(path, "give count, amount or both")
        return None
    count = amount = None
    ok = True
    if "count" in data:
        count = check.integer(data["count"], f"{path}.count", 1)
        ok = count is not None
    if "amount" in data:
        amount = check.integer(data["amount"], f"{path}.amount", 1, amount=True)
        ok = ok and amount is not None
    return Limit(count=count, amount=amount) if ok else None
