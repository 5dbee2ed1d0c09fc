"""A parsed reward policy: the frozen dataclasses `parse_policy` builds and `evaluate` reads.

Field by field they mirror the JSON document of API.md ("Policy documents"); amounts are
minor units of the policy's currency, percentages basis points.
"""

from __future__ import annotations

from dataclasses import dataclass


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
