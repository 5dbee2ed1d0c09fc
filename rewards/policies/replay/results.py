"""What a replay reports: the draft against what was paid, per currency and per referrer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rewards.policies.rounding import pro_rata


@dataclass
class CurrencyComparison:
    """The draft against what was actually paid, in one currency (minor units)."""

    currency: str
    purchases: int = 0  # attributed purchases in this currency that were replayed
    draft_cost: int = 0
    actual_cost: int = 0
    draft_rewards: int = 0  # reward lines
    actual_rewards: int = 0
    draft_customers: int = 0  # friends whose purchase earned at least one line
    actual_customers: int = 0
    draft_per_customer: int | None = None  # cost / customers, half up; None without any
    actual_per_customer: int | None = None

    @property
    def cost_delta(self) -> int:
        return self.draft_cost - self.actual_cost

    @property
    def rewards_delta(self) -> int:
        return self.draft_rewards - self.actual_rewards

    @property
    def customers_delta(self) -> int:
        return self.draft_customers - self.actual_customers

    @property
    def per_customer_delta(self) -> int | None:
        if self.draft_per_customer is None or self.actual_per_customer is None:
            return None
        return self.draft_per_customer - self.actual_per_customer


@dataclass
class ReferrerChange:
    """One referrer's own rewards (referrer lines, bonuses included) in one currency."""

    referrer_id: int
    external_id: str | None
    name: str | None
    email: str  # masked
    currency: str
    actual: int
    draft: int

    @property
    def delta(self) -> int:
        return self.draft - self.actual


@dataclass
class SimulationResult:
    program_id: int
    days: int
    since: datetime
    until: datetime
    purchases: int  # attributed purchases replayed
    published_version: int | None  # the version in force now, or None
    currencies: list[CurrencyComparison] = field(default_factory=list)
    referrers: list[ReferrerChange] = field(default_factory=list)  # |delta| desc, top 10


def per_customer(cost: int, customers: int) -> int | None:
    """Cost per acquired customer in minor units, rounded half up; None without customers."""
    return pro_rata(cost, 1, customers) if customers else None
