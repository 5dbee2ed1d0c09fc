"""Turning an attributed purchase into reward lines, exactly as the published policy says."""

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, case, func, select, true, update

from rewards.extensions import db
from rewards.ledger import holds
from rewards.ledger import lines as ledger
from rewards.models import LIVE_REWARDS, Conversion, PolicyVersion, Referral, Refund, Reward, utcnow
from rewards.policies import (
    Evaluation,
    History,
    Purchase,
    add_months,
    evaluate,
    month_start,
    pro_rata,
)
from rewards.policies.versions import load_version

log = logging.getLogger(__name__)

def _purchase_columns(conversion: Conversion) -> tuple:
    """The friend's earlier purchases (a count) and a live friend reward of theirs (an id
    or None), as columns for a query."""
    earlier = select(func.count(Conversion.id)).where(
        Conversion.customer_id == conversion.customer_id,
        Conversion.program_id == conversion.program_id,
        Conversion.id != conversion.id,
        (Conversion.occurred_at < conversion.occurred_at)
        | and_(Conversion.occurred_at == conversion.occurred_at,
               Conversion.id < conversion.id),
    ).scalar_subquery()
    rewarded_before = select(Reward.id).where(
        Reward.customer_id == conversion.customer_id, Reward.role == "friend",
        Reward.status.in_(LIVE_REWARDS)).limit(1).scalar_subquery()
    return earlier, rewarded_before


def _purchase(conversion: Conversion, referral: Referral, earlier, friend_rewarded) -> Purchase:
    return Purchase(
        amount=conversion.amount,
        currency=conversion.currency,
        occurred_at=conversion.occurred_at,
        friend_id=conversion.customer_id,
        friend_signed_up_at=referral.created_at,
        friend_prior_purchases=earlier or 0,
        friend_rewarded_before=friend_rewarded is not None,
    )


def purchase_facts(conversion: Conversion, referral: Referral) -> Purchase:
    """The purchase as the policy sees it (one query)."""
    earlier, friend_rewarded = db.session.execute(
        select(*_purchase_columns(conversion))).one()
    return _purchase(conversion, referral, earlier, friend_rewarded)


def referrer_history(referrer_id: int, currency: str, at: datetime) -> History:
    """The referrer's live lines as the policy's limits see them, in one query: the month's
    and the lifetime's totals (one row), joined to the friends rewarded, oldest first."""
    lines = (Reward.customer_id == referrer_id, Reward.role == "referrer",
             Reward.currency == currency, Reward.status.in_(LIVE_REWARDS))
    first_rewarded = (
        select(Reward.friend_id, func.min(Reward.occurred_at).label("first"),
               func.min(Reward.id).label("first_id"))
        .where(*lines, Reward.rule.not_like("milestones%"))
        .group_by(Reward.friend_id)
        .subquery("first_rewarded")
    )
    start = month_start(at)
    in_month = and_(Reward.occurred_at >= start, Reward.occurred_at < add_months(start, 1))
    net = Reward.amount - Reward.reversed_amount
    totals = select(
        func.coalesce(func.sum(case((in_month, 1), else_=0)), 0).label("month_count"),
        func.coalesce(func.sum(case((in_month, net), else_=0)), 0).label("month_amount"),
        func.count(Reward.id).label("life_count"),
        func.coalesce(func.sum(net), 0).label("life_amount"),
    ).where(*lines).subquery("totals")
    rows = db.session.execute(
        select(totals.c.month_count, totals.c.month_amount, totals.c.life_count,
               totals.c.life_amount, first_rewarded.c.friend_id)
        .select_from(totals).outerjoin(first_rewarded, true())
        .order_by(first_rewarded.c.first, first_rewarded.c.first_id)
    ).all()
    month_count, month_amount, life_count, life_amount, _ = rows[0]
    return History(rewarded_friends=tuple(row.friend_id for row in rows
                                          if row.friend_id is not None),
                   month_count=int(month_count), month_amount=int(month_amount),
                   lifetime_count=int(life_count), lifetime_amount=int(life_amount))


def reward_conversion(conversion_id: int) -> bool:
    """Compute and record the purchase's rewards, once. False when it was already done.

    The compare-and-set on `processed_at` and the reward inserts share one transaction, so
    of two racing copies one does the work and the other finds it done; the unique
    (conversion, beneficiary, rule) constraint backs that up.
    """
    # The purchase with its referral, in one query.
    found = db.session.execute(
        select(Conversion, Referral)
        .outerjoin(Referral, Referral.id == Conversion.referral_id)
        .where(Conversion.id == conversion_id)).first()
    if found is None or found[0].processed_at is not None:
        return False
    conversion, referral = found
    if conversion.referrer_id is not None:
        # Serialise work for this referrer so that limits see every earlier line.
        ledger.lock_balance(conversion.referrer_id, conversion.currency)
    claimed = db.session.execute(
        update(Conversion)
        .where(Conversion.id == conversion_id, Conversion.processed_at.is_(None))
        .values(processed_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return False
    _evaluate_and_record(conversion, referral)
    db.session.commit()
    return True


def reward_many(conversion_ids: Iterable[int]) -> int:
    """`reward_conversion` for each purchase, each in a transaction of its own; one that
    fails is logged and left to the sweep. Returns how many were computed here."""
    done = 0
    for conversion_id in dict.fromkeys(conversion_ids):
        try:
            done += reward_conversion(conversion_id)
        except Exception:
            db.session.rollback()
            log.exception("computing the rewards of purchase #%s failed; the sweep retries",
                          conversion_id)
    return done


def _evaluate_and_record(conversion: Conversion, referral: Referral | None
                         ) -> Evaluation | None:
    if referral is None:
        return None
    # Read under the referrer's lock, in one query: the version published now, the facts
    # of the purchase, and whether a signal or a dispute holds its rewards.
    latest = (select(PolicyVersion.id, PolicyVersion.digest)
              .where(PolicyVersion.program_id == conversion.program_id)
              .order_by(PolicyVersion.version.desc()).limit(1))
    (version_id, digest, earlier, friend_rewarded, *verdict) = db.session.execute(select(
        latest.with_only_columns(PolicyVersion.id).scalar_subquery(),
        latest.with_only_columns(PolicyVersion.digest).scalar_subquery(),
        *_purchase_columns(conversion),
        *holds.verdict_columns(conversion.referral_id, conversion.id))).one()
    if version_id is None:
        return None
    evaluation = evaluate(
        load_version(version_id, digest),
        _purchase(conversion, referral, earlier, friend_rewarded),
        referrer_history(referral.referrer_id, conversion.currency, conversion.occurred_at),
    )
    now = utcnow()
    status = "pending" if evaluation.available_at > now else "available"
    # A flagged referral's rewards wait on hold for a coordinator (or are rejected with a
    # rejected signal). Without a refund to apply first, they are added in the state that
    # holding them would leave: on hold, remembering where they would be. The verdict is
    # read under the referrer's balance lock, which a new signal's hold also takes.
    under = holds.verdict(*verdict) if not conversion.refunded_amount else None
    line_status, held_from = holds.new_reward_status(status, under)
    rewards = []
    for decision in evaluation.decisions:
        beneficiary = referral.referrer_id if decision.role == "referrer" else referral.friend_id
        rewards.append(Reward(
            program_id=conversion.program_id, customer_id=beneficiary,
            conversion_id=conversion.id, friend_id=referral.friend_id, role=decision.role,
            rule=decision.rule, policy_version_id=version_id, amount=decision.amount,
            reversed_amount=0, currency=conversion.currency, status=line_status,
            held_from=held_from, explanation=decision.explanation[:400],
            occurred_at=conversion.occurred_at, available_at=evaluation.available_at,
        ))
    ledger.add_rewards(rewards)
    if conversion.refunded_amount and rewards:
        # A refund that arrived before the rewards were computed still applies.
        latest_refund = db.session.scalar(select(Refund).filter_by(conversion_id=conversion.id)
                                          .order_by(Refund.id.desc()).limit(1))
        for reward in rewards:
            share = pro_rata(reward.amount, conversion.refunded_amount, conversion.amount)
            if share:
                ledger.reverse_part(reward, share, refund_id=latest_refund.id,
                                    explanation=refund_sentence(reward, share, conversion))
    if conversion.refunded_amount:
        # A flagged referral's rewards wait on hold for a coordinator.
        holds.hold_purchase(conversion.id)
    return evaluation


def refund_sentence(reward: Reward, share: int, conversion: Conversion) -> str:
    from rewards.money import format_money

    return (
        f"{format_money(share, reward.currency)} of {format_money(reward.amount, reward.currency)}"
        f" back: {format_money(conversion.refunded_amount, conversion.currency)} of the "
        f"{format_money(conversion.amount, conversion.currency)} purchase was refunded."
    )


def rewards_of(conversion_id: int) -> list[Reward]:
    return list(db.session.scalars(
        select(Reward).filter_by(conversion_id=conversion_id).order_by(Reward.id)
    ))
