"""Turning an attributed purchase into reward lines, exactly as the published policy says."""

from datetime import UTC, datetime

from sqlalchemy import and_, func, select, update

from ..extensions import db
from ..models import Conversion, Referral, Refund, Reward, utcnow
from ..policies.evaluate import Evaluation, History, Purchase, evaluate, pro_rata
from . import ledger
from .fraud import hold_flagged
from .policies import current_version, load

# Statuses whose lines still count toward a referrer's history and limits.
LIVE = ("pending", "available", "on_hold", "in_payout", "paid")


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def purchase_facts(conversion: Conversion, referral: Referral) -> Purchase:
    earlier = db.session.scalar(
        select(func.count(Conversion.id)).where(
            Conversion.customer_id == conversion.customer_id,
            Conversion.program_id == conversion.program_id,
            Conversion.id != conversion.id,
            (Conversion.occurred_at < conversion.occurred_at)
            | and_(Conversion.occurred_at == conversion.occurred_at,
                   Conversion.id < conversion.id),
        )
    )
    friend_rewarded = db.session.scalar(
        select(Reward.id).where(Reward.customer_id == conversion.customer_id,
                                Reward.role == "friend", Reward.status.in_(LIVE)).limit(1)
    )
    return Purchase(
        amount=conversion.amount,
        currency=conversion.currency,
        occurred_at=conversion.occurred_at,
        friend_id=conversion.customer_id,
        friend_signed_up_at=referral.created_at,
        friend_prior_purchases=earlier or 0,
        friend_rewarded_before=friend_rewarded is not None,
    )


def referrer_history(referrer_id: int, currency: str, at: datetime) -> History:
    lines = (Reward.customer_id == referrer_id, Reward.role == "referrer",
             Reward.currency == currency, Reward.status.in_(LIVE))
    first_rewarded = (
        select(Reward.friend_id, func.min(Reward.occurred_at).label("first"),
               func.min(Reward.id).label("first_id"))
        .where(*lines, Reward.rule.not_like("milestones%"))
        .group_by(Reward.friend_id)
        .subquery()
    )
    friends = tuple(db.session.scalars(
        select(first_rewarded.c.friend_id)
        .order_by(first_rewarded.c.first, first_rewarded.c.first_id)
    ))
    net = func.coalesce(func.sum(Reward.amount - Reward.reversed_amount), 0)
    start = month_start(at)
    month_count, month_amount = db.session.execute(
        select(func.count(Reward.id), net).where(
            *lines, Reward.occurred_at >= start, Reward.occurred_at < next_month(start))
    ).one()
    life_count, life_amount = db.session.execute(
        select(func.count(Reward.id), net).where(*lines)
    ).one()
    return History(rewarded_friends=friends, month_count=month_count,
                   month_amount=int(month_amount), lifetime_count=life_count,
                   lifetime_amount=int(life_amount))


def reward_conversion(conversion_id: int) -> bool:
    """Compute and record the purchase's rewards, once. False when it was already done.

    The compare-and-set on `processed_at` and the reward inserts share one transaction, so
    of two racing copies one does the work and the other finds it done; the unique
    (conversion, beneficiary, rule) constraint backs that up.
    """
    conversion = db.session.get(Conversion, conversion_id)
    if conversion is None or conversion.processed_at is not None:
        return False
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
    _evaluate_and_record(conversion)
    db.session.commit()
    return True


def _evaluate_and_record(conversion: Conversion) -> Evaluation | None:
    version = current_version(conversion.program_id)
    referral = db.session.get(Referral, conversion.referral_id) if conversion.referral_id else None
    if version is None or referral is None:
        return None
    evaluation = evaluate(
        load(version),
        purchase_facts(conversion, referral),
        referrer_history(referral.referrer_id, conversion.currency, conversion.occurred_at),
    )
    now = utcnow()
    status = "pending" if evaluation.available_at > now else "available"
    rewards = []
    for decision in evaluation.decisions:
        beneficiary = referral.referrer_id if decision.role == "referrer" else referral.friend_id
        reward = Reward(
            program_id=conversion.program_id, customer_id=beneficiary,
            conversion_id=conversion.id, friend_id=referral.friend_id, role=decision.role,
            rule=decision.rule, policy_version_id=version.id, amount=decision.amount,
            reversed_amount=0, currency=conversion.currency, status=status,
            explanation=decision.explanation[:400], occurred_at=conversion.occurred_at,
            available_at=evaluation.available_at,
        )
        ledger.add_reward(reward)
        rewards.append(reward)
    if conversion.refunded_amount and rewards:
        # A refund that arrived before the rewards were computed still applies.
        latest = db.session.scalar(select(Refund).filter_by(conversion_id=conversion.id)
                                   .order_by(Refund.id.desc()).limit(1))
        for reward in rewards:
            share = pro_rata(reward.amount, conversion.refunded_amount, conversion.amount)
            if share:
                ledger.reverse_part(reward, share, refund_id=latest.id,
                                    explanation=refund_sentence(reward, share, conversion))
    # A flagged referral's rewards wait on hold for a coordinator.
    hold_flagged(conversion.id)
    return evaluation


def refund_sentence(reward: Reward, share: int, conversion: Conversion) -> str:
    from ..money import format_money

    return (
        f"{format_money(share, reward.currency)} of {format_money(reward.amount, reward.currency)}"
        f" back: {format_money(conversion.refunded_amount, conversion.currency)} of the "
        f"{format_money(conversion.amount, conversion.currency)} purchase was refunded."
    )


def rewards_of(conversion_id: int) -> list[Reward]:
    return list(db.session.scalars(
        select(Reward).filter_by(conversion_id=conversion_id).order_by(Reward.id)
    ))
