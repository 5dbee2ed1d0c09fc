"""What was actually paid for the replayed purchases: net of reversals and clawbacks,
rejected lines left out, currency by currency."""

from __future__ import annotations

from sqlalchemy import Select, func, select

from rewards.extensions import db
from rewards.models import Adjustment, Reward
from rewards.policies.replay.results import CurrencyComparison


def add_actual(attributed: Select,
               by_currency: dict[str, CurrencyComparison]) -> dict[tuple[int, str], int]:
    """Fill in the actual figures; returns each referrer's own net lines by currency."""
    clawed = (select(Adjustment.reward_id, func.sum(Adjustment.amount).label("amount"))
              .where(Adjustment.kind == "clawback",
                     Adjustment.reward_id.in_(
                         select(Reward.id).where(Reward.conversion_id.in_(attributed))))
              .group_by(Adjustment.reward_id)
              .subquery())
    lines = db.session.execute(
        select(Reward.customer_id, Reward.friend_id, Reward.role, Reward.currency,
               Reward.amount - Reward.reversed_amount + func.coalesce(clawed.c.amount, 0))
        .outerjoin(clawed, clawed.c.reward_id == Reward.id)
        .where(Reward.conversion_id.in_(attributed), Reward.status != "rejected")
    ).all()
    customers: dict[str, set[int]] = {}
    by_referrer: dict[tuple[int, str], int] = {}
    for beneficiary, friend, role, currency, net in lines:
        net = int(net)
        totals = by_currency.get(currency)
        if totals is None:
            totals = by_currency[currency] = CurrencyComparison(currency)
        totals.actual_cost += net
        totals.actual_rewards += 1
        customers.setdefault(currency, set()).add(friend)
        if role == "referrer":
            key = (beneficiary, currency)
            by_referrer[key] = by_referrer.get(key, 0) + net
    for currency, friends in customers.items():
        by_currency[currency].actual_customers = len(friends)
    return by_referrer

