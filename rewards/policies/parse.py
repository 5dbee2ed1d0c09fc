"""Reward policy documents: validate the JSON a coordinator writes and build a `Policy`.

`parse_policy` checks the whole document and reports every problem at once, each as
"<path>: <message>" (paths like `referrer.percent_bps`, `tiers[1].from`,
`limits.month.amount`). `to_document` gives the canonical JSON back, so
`parse_policy(to_document(p)) == p`.

Compatibility: unknown keys are errors today; later versions only add optional keys, so a
document that is valid now stays valid. Pure Python: no database, no Flask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_AMOUNT = 10**9  # the largest fixed reward, cap or bonus, in minor units
MAX_MIN_PURCHASE = 10**12
MAX_HOLD_DAYS = 365
MAX_BPS = 10_000
MAX_WITHIN_MONTHS = 120
MAX_TIERS = 20
MAX_MILESTONES = 50

_TOP_KEYS = (
    "currency", "hold_days", "min_purchase", "purchases", "referrer", "tiers",
    "milestones", "friend", "limits",
)
_RULE_KEYS = ("fixed", "percent_bps", "cap")
_TIER_KEYS = ("from", "referrer")
_MILESTONE_KEYS = ("at", "bonus")
_LIMITS_KEYS = ("month", "lifetime")
_LIMIT_KEYS = ("count", "amount")
_PURCHASES_KEYS = ("within_months",)


class PolicyInvalid(ValueError):
    """The document is not a valid policy; `errors` lists every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))

    def __str__(self) -> str:
        return "; ".join(self.errors)


@dataclass(frozen=True, slots=True)
class RewardRule:
    """Exactly one of `fixed` / `percent_bps`; `cap` only with `percent_bps`."""

    fixed: int | None = None
    percent_bps: int | None = None
    cap: int | None = None


@dataclass(frozen=True, slots=True)
class Tier:
    """From the referrer's `start`-th rewarded friend on, `referrer` replaces the base rule."""

    start: int  # JSON key "from"
    referrer: RewardRule


@dataclass(frozen=True, slots=True)
class Milestone:
    """A bonus for the referrer when the `at`-th friend is first rewarded."""

    at: int
    bonus: int


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` referrer lines and/or `amount` minor units in the period."""

    count: int | None = None
    amount: int | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    currency: str
    hold_days: int = 0
    min_purchase: int = 0
    purchases: str | int = "first"  # "first", "all", or N for {"within_months": N}
    referrer: RewardRule | None = None
    tiers: tuple[Tier, ...] = ()
    milestones: tuple[Milestone, ...] = ()
    friend: RewardRule | None = None
    month_limit: Limit | None = None
    lifetime_limit: Limit | None = None


# --------------------------------------------------------------------------- parsing


class _Checker:
    """Collects located errors while walking the document."""

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def obj(self, value: Any, path: str, keys: tuple[str, ...]) -> dict | None:
        """The value as a dict (unknown keys reported), or None after an error."""
        if not isinstance(value, dict):
            self.error(path, "must be a JSON object")
            return None
        for key in value:
            if key not in keys:
                self.error(_join(path, key), "unknown key")
        return value

    def integer(self, value: Any, path: str, low: int, high: int | None = None, *,
                amount: bool = False) -> int | None:
        """An int (never a bool, never a float) within [low, high], or None after an error."""
        if type(value) is not int:
            self.error(path, "must be a whole number of minor units" if amount
                       else "must be a whole number")
            return None
        if high is None:
            if value < low:
                self.error(path, f"must be at least {low}")
                return None
        elif not low <= value <= high:
            self.error(path, f"must be between {low} and {high}")
            return None
        return value

    def rule(self, value: Any, path: str) -> RewardRule | None:
        data = self.obj(value, path, _RULE_KEYS)
        if data is None:
            return None
        has_fixed, has_percent = "fixed" in data, "percent_bps" in data
        ok = True
        if has_fixed and has_percent:
            self.error(path, "give either fixed or percent_bps, not both")
            ok = False
        elif not has_fixed and not has_percent:
            self.error(path, "give fixed or percent_bps")
            ok = False
        fixed = percent = cap = None
        if has_fixed:
            fixed = self.integer(data["fixed"], f"{path}.fixed", 1, MAX_AMOUNT, amount=True)
            ok = ok and fixed is not None
        if has_percent:
            percent = self.integer(data["percent_bps"], f"{path}.percent_bps", 1, MAX_BPS)
            ok = ok and percent is not None
        if "cap" in data:
            if has_fixed and not has_percent:
                self.error(f"{path}.cap", "only goes with percent_bps, not with fixed")
                ok = False
            else:
                cap = self.integer(data["cap"], f"{path}.cap", 1, MAX_AMOUNT, amount=True)
                ok = ok and cap is not None
        return RewardRule(fixed=fixed, percent_bps=percent, cap=cap) if ok else None

    def limit(self, value: Any, path: str) -> Limit | None:
        data = self.obj(value, path, _LIMIT_KEYS)
        if data is None:
            return None
        if not any(key in data for key in _LIMIT_KEYS):
            self.error(path, "give count, amount or both")
            return None
        count = amount = None
        ok = True
        if "count" in data:
            count = self.integer(data["count"], f"{path}.count", 1)
            ok = count is not None
        if "amount" in data:
            amount = self.integer(data["amount"], f"{path}.amount", 1, amount=True)
            ok = ok and amount is not None
        return Limit(count=count, amount=amount) if ok else None


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path != "policy" else str(key)


def _rewards_something(data: dict) -> bool:
    """True when a paying key is present (an invalid value is reported on its own)."""
    if "referrer" in data or "friend" in data:
        return True
    return any(key in data and data[key] != [] for key in ("tiers", "milestones"))


def parse_policy(document: object, *, currency: str | None = None) -> Policy:
    """Validate `document` and build the Policy.

    `currency`, when given, is the program's currency and the document must use it.
    Raises PolicyInvalid listing every error found, not just the first.
    """
    check = _Checker()
    data = check.obj(document, "policy", _TOP_KEYS)
    if data is None:
        raise PolicyInvalid(check.errors)

    # currency
    policy_currency = None
    if "currency" not in data:
        check.error("currency", "is required")
    else:
        value = data["currency"]
        if not (isinstance(value, str) and len(value) == 3 and value.isascii()
                and value.isalpha() and value.islower()):
            check.error("currency", "must be 3 lowercase letters, like usd")
        elif currency is not None and value != currency.lower():
            check.error("currency", f"must be the program's currency, {currency.lower()}")
        else:
            policy_currency = value

    hold_days = 0
    if "hold_days" in data:
        hold_days = check.integer(data["hold_days"], "hold_days", 0, MAX_HOLD_DAYS)

    min_purchase = 0
    if "min_purchase" in data:
        min_purchase = check.integer(data["min_purchase"], "min_purchase", 0,
                                     MAX_MIN_PURCHASE, amount=True)

    purchases: str | int | None = "first"
    if "purchases" in data:
        purchases = _purchases(check, data["purchases"])

    referrer = None
    if "referrer" in data:
        referrer = check.rule(data["referrer"], "referrer")

    tiers: tuple[Tier, ...] | None = ()
    if "tiers" in data:
        tiers = _tiers(check, data["tiers"])

    milestones: tuple[Milestone, ...] | None = ()
    if "milestones" in data:
        milestones = _milestones(check, data["milestones"])

    friend = None
    if "friend" in data:
        friend = check.rule(data["friend"], "friend")

    month_limit = lifetime_limit = None
    if "limits" in data:
        limits = check.obj(data["limits"], "limits", _LIMITS_KEYS)
        if limits is not None:
            if "month" in limits:
                month_limit = check.limit(limits["month"], "limits.month")
            if "lifetime" in limits:
                lifetime_limit = check.limit(limits["lifetime"], "limits.lifetime")

    if not _rewards_something(data):
        check.error("policy", "must reward the referrer or the friend")

    if check.errors:
        raise PolicyInvalid(check.errors)
    assert policy_currency is not None and hold_days is not None
    assert min_purchase is not None and purchases is not None
    assert tiers is not None and milestones is not None
    return Policy(
        currency=policy_currency,
        hold_days=hold_days,
        min_purchase=min_purchase,
        purchases=purchases,
        referrer=referrer,
        tiers=tiers,
        milestones=milestones,
        friend=friend,
        month_limit=month_limit,
        lifetime_limit=lifetime_limit,
    )


def _purchases(check: _Checker, value: Any) -> str | int | None:
    if isinstance(value, str):
        if value in ("first", "all"):
            return value
    elif isinstance(value, dict):
        data = check.obj(value, "purchases", _PURCHASES_KEYS)
        assert data is not None
        if "within_months" not in data:
            check.error("purchases.within_months", "is required")
            return None
        return check.integer(data["within_months"], "purchases.within_months", 1,
                             MAX_WITHIN_MONTHS)
    check.error("purchases", 'must be "first", "all" or {"within_months": N}')
    return None


def _tiers(check: _Checker, value: Any) -> tuple[Tier, ...] | None:
    if not isinstance(value, list):
        check.error("tiers", "must be a list")
        return None
    ok = True
    if len(value) > MAX_TIERS:
        check.error("tiers", f"must have at most {MAX_TIERS} tiers")
        ok = False
    tiers = []
    previous: tuple[int, int] | None = None  # (index, from) of the last valid `from`
    for index, item in enumerate(value):
        path = f"tiers[{index}]"
        data = check.obj(item, path, _TIER_KEYS)
        if data is None:
            ok = False
            continue
        start = rule = None
        if "from" not in data:
            check.error(f"{path}.from", "is required")
        else:
            start = check.integer(data["from"], f"{path}.from", 2)
            if start is not None:
                if previous is not None and start <= previous[1]:
                    check.error(f"{path}.from", f"must be greater than tiers[{previous[0]}].from")
                    start = None
                else:
                    previous = (index, start)
        if "referrer" not in data:
            check.error(f"{path}.referrer", "is required")
        else:
            rule = check.rule(data["referrer"], f"{path}.referrer")
        if start is None or rule is None:
            ok = False
        else:
            tiers.append(Tier(start=start, referrer=rule))
    return tuple(tiers) if ok else None


def _milestones(check: _Checker, value: Any) -> tuple[Milestone, ...] | None:
    if not isinstance(value, list):
        check.error("milestones", "must be a list")
        return None
    ok = True
    if len(value) > MAX_MILESTONES:
        check.error("milestones", f"must have at most {MAX_MILESTONES} milestones")
        ok = False
    milestones = []
    seen: dict[int, int] = {}  # at -> index of its first milestone
    for index, item in enumerate(value):
        path = f"milestones[{index}]"
        data = check.obj(item, path, _MILESTONE_KEYS)
        if data is None:
            ok = False
            continue
        at = bonus = None
        if "at" not in data:
            check.error(f"{path}.at", "is required")
        else:
            at = check.integer(data["at"], f"{path}.at", 1)
            if at is not None:
                if at in seen:
                    check.error(f"{path}.at", f"must differ from milestones[{seen[at]}].at")
                    at = None
                else:
                    seen[at] = index
        if "bonus" not in data:
            check.error(f"{path}.bonus", "is required")
        else:
            bonus = check.integer(data["bonus"], f"{path}.bonus", 1, MAX_AMOUNT, amount=True)
        if at is None or bonus is None:
            ok = False
        else:
            milestones.append(Milestone(at=at, bonus=bonus))
    return tuple(milestones) if ok else None


# --------------------------------------------------------------------------- output


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
