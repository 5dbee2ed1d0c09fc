"""What a replay reads: the window's purchases and refunds, and each referrer's history
at the window start, in a handful of queries whatever the number of purchases.

Each referrer starts the window with the history its actual reward lines give before the
window (rewarded friends in order, lifetime and this month's counts and amounts, live
lines only, net of reversals), as `ledger.compute.referrer_history` would read it.
A friend's earlier purchases are counted from all of the friend's purchases in the
program, attributed or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, null, select

from rewards.extensions import db
from rewards.models import LIVE_REWARDS, Conversion, Referral, Refund, Reward
from rewards.policies.replay.state import ReferrerHistory


@dataclass
class Window:
    attributed: Select  # the ids of the window's attributed purchases, for a subquery
    refunds: list[Any]  # (conversion id, cumulative, created_at) of those, as recorded
    # (id, friend, amount, currency, occurred_at, refunded_amount, referrer or None,
    # referral created_at, processed_at or None) of every purchase of the window's friends
    purchases: list[Any]
    prior: dict[int, int]  # friend -> purchases before the window
    rewarded_before: set[int]  # friends holding a live friend reward from before it
    referrers: dict[tuple[int, str], ReferrerHistory]  # (referrer, currency) at its start


def load_window(program_id: int, since: datetime, first_month: datetime) -> Window:
    in_window = (Conversion.program_id == program_id, Conversion.occurred_at >= since)
    attributed = select(Conversion.id).where(*in_window, Conversion.referral_id.is_not(None))
    friends = (select(Conversion.customer_id)
               .where(*in_window, Conversion.referral_id.is_not(None)).distinct())
    referrers = (select(Referral.referrer_id)
                 .join(Conversion, Conversion.referral_id == Referral.id)
                 .where(*in_window).distinct())

    # Refunds of the window's purchases, in the order they were recorded.
    refunds = db.session.execute(
        select(Refund.conversion_id, Refund.cumulative, Refund.created_at)
        .where(Refund.conversion_id.in_(attributed))
        .order_by(Refund.created_at, Refund.id)
    ).all()

    # The purchases: every one of the window's friends' purchases (the unattributed ones
    # count as earlier purchases only), in time order, with the referral they came by.
    # When each was processed matters only to place refunds.
    processed = (func.coalesce(Conversion.processed_at, Conversion.created_at) if refunds
                 else null())
    purchases = db.session.execute(
        select(Conversion.id, Conversion.customer_id, Conversion.amount, Conversion.currency,
               Conversion.occurred_at, Conversion.refunded_amount, Referral.referrer_id,
               Referral.created_at, processed)
        .outerjoin(Referral, Referral.id == Conversion.referral_id)
        .where(*in_window, Conversion.customer_id.in_(friends))
        .order_by(Conversion.occurred_at, Conversion.id)
    ).all()

    # The friends' purchases before the window.
    prior: dict[int, int] = dict(db.session.execute(
        select(Conversion.customer_id, func.count(Conversion.id))
        .where(Conversion.program_id == program_id, Conversion.occurred_at < since,
               Conversion.customer_id.in_(friends))
        .group_by(Conversion.customer_id)
    ).all())

    # Friends who already hold a live friend reward from before the window.
    rewarded_before = set(db.session.scalars(
        select(Reward.customer_id).distinct()
        .where(Reward.role == "friend", Reward.status.in_(LIVE_REWARDS), Reward.occurred_at < since,
               Reward.customer_id.in_(friends))
    ))

    return Window(attributed, refunds, purchases, prior, rewarded_before,
                  _starting_histories(referrers, since, first_month))


def _starting_histories(referrers: Select, since: datetime,
                        first_month: datetime) -> dict[tuple[int, str], ReferrerHistory]:
    """Each referrer's history at the window start, from its live lines before it."""
    key = (first_month.year, first_month.month)
    states: dict[tuple[int, str], ReferrerHistory] = {}
    before = (Reward.role == "referrer", Reward.status.in_(LIVE_REWARDS),
              Reward.occurred_at < since, Reward.customer_id.in_(referrers))
    net = Reward.amount - Reward.reversed_amount
    this_month = Reward.occurred_at >= first_month
    totals = db.session.execute(
        select(Reward.customer_id, Reward.currency, func.count(Reward.id),
               func.coalesce(func.sum(net), 0),
               func.coalesce(func.sum(case((this_month, 1), else_=0)), 0),
               func.coalesce(func.sum(case((this_month, net), else_=0)), 0))
        .where(*before)
        .group_by(Reward.customer_id, Reward.currency)
    ).all()
    for referrer, currency, count, amount, month_count, month_amount in totals:
        state = states[(referrer, currency)] = ReferrerHistory(key)
        state.life_count, state.life_amount = count, int(amount)
        state.month_count, state.month_amount = int(month_count), int(month_amount)
    first = func.min(Reward.occurred_at)
    first_id = func.min(Reward.id)
    ordered = db.session.execute(
        select(Reward.customer_id, Reward.currency, Reward.friend_id, func.count(Reward.id))
        .where(*before, Reward.rule.not_like("milestones%"))
        .group_by(Reward.customer_id, Reward.currency, Reward.friend_id)
        .order_by(Reward.customer_id, Reward.currency, first, first_id)
    ).all()
    for referrer, currency, friend, count in ordered:
        state = states.get((referrer, currency))
        if state is None:  # cannot happen: the totals count the same lines
            state = states[(referrer, currency)] = ReferrerHistory(key)
        state.friends.append(friend)
        state.friend_lines[friend] = count
    return states
