"""Reward policy documents: validate the JSON a coordinator writes and build a `Policy`.

`parse_policy` checks the whole document and reports every problem at once, each as
"<path>: <message>" (paths like `referrer.percent_bps`, `tiers[1].from`,
`limits.month.amount`); `parse_parts` checks each part, `canonical.to_document` gives the
JSON back.

Compatibility: unknown keys are errors today; later versions only add optional keys, so a
document that is valid now stays valid. Pure Python: no database, no Flask.
"""

from __future__ import annotations

from rewards.policies.checker import Checker
from rewards.policies.parse_parts import (
    parse_currency,
    parse_limits,
    parse_milestones,
    parse_purchases,
    parse_rule,
    parse_tiers,
)
from rewards.policies.policy import Milestone, Policy, Tier

MAX_MIN_PURCHASE = 10**12
MAX_HOLD_DAYS = 365

_TOP_KEYS = (
    "currency", "hold_days", "min_purchase", "purchases", "referrer", "tiers",
    "milestones", "friend", "limits",
)


class PolicyInvalid(ValueError):
    """The document is not a valid policy; `errors` lists every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))

    def __str__(self) -> str:
        return "; ".join(self.errors)


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
    check = Checker()
    data = check.obj(document, "policy", _TOP_KEYS)
    if data is None:
        raise PolicyInvalid(check.errors)

    policy_currency = None
    if check.has(data, "policy", "currency"):
        policy_currency = parse_currency(check, data["currency"], currency)

    hold_days = 0
    if "hold_days" in data:
        hold_days = check.integer(data["hold_days"], "hold_days", 0, MAX_HOLD_DAYS)

    min_purchase = 0
    if "min_purchase" in data:
        min_purchase = check.integer(data["min_purchase"], "min_purchase", 0,
                                     MAX_MIN_PURCHASE, amount=True)

    purchases: str | int | None = "first"
    if "purchases" in data:
        purchases = parse_purchases(check, data["purchases"])

    referrer = None
    if "referrer" in data:
        referrer = parse_rule(check, data["referrer"], "referrer")

    tiers: tuple[Tier, ...] = ()
    if "tiers" in data:
        tiers = parse_tiers(check, data["tiers"])

    milestones: tuple[Milestone, ...] = ()
    if "milestones" in data:
        milestones = parse_milestones(check, data["milestones"])

    friend = None
    if "friend" in data:
        friend = parse_rule(check, data["friend"], "friend")

    month_limit = lifetime_limit = None
    if "limits" in data:
        month_limit, lifetime_limit = parse_limits(check, data["limits"])

    if not _rewards_something(data):
        check.error("policy", "must reward the referrer or the friend")

    if check.errors:
        raise PolicyInvalid(check.errors)
    assert policy_currency is not None and hold_days is not None
    assert min_purchase is not None and purchases is not None
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
