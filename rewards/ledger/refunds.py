"""Refunds: before payment they reverse rewards pro rata; after payment they claw back."""

import shortuuid
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from rewards.analytics.rollups import touch
from rewards.errors import Conflict, ServiceError
from rewards.extensions import db
from rewards.ledger import lines as ledger
from rewards.ledger.compute import refund_sentence
from rewards.models import PAID_REWARDS, UNPAID_REWARDS, Adjustment, Conversion, Refund, Reward
from rewards.money import format_money
from rewards.policies import pro_rata


def record_refund(conversion: Conversion, amount: int, external_id: str | None = None, *,
                  commit: bool = True) -> Refund:
    """Record a refund of `amount` (this refund alone) and adjust the purchase's rewards.

    The same `external_id` again is a no-op (the same amount) or a 409 (another amount).
    With commit=False (a caller that owns the transaction) it is flushed, not committed,
    and a failure is raised with nothing rolled back.
    """
    external_id = external_id or f"auto-{shortuuid.uuid()}"
    existing = db.session.scalar(
        select(Refund).filter_by(conversion_id=conversion.id, external_id=external_id))
    if existing is not None:
        if existing.amount != amount:
            raise Conflict(f"The refund {external_id} was recorded with another amount.",
                           field="refund_id")
        return existing
    before = conversion.refunded_amount
    after = before + amount
    if after > conversion.amount:
        remaining = format_money(conversion.amount - before, conversion.currency)
        raise ServiceError(f"The refund is more than what remains to refund ({remaining}).",
                           field="amount", code="refund_too_large")
    try:
        # Compare-and-set on the running total: concurrent refunds apply one after another.
        changed = db.session.execute(
            update(Conversion)
            .where(Conversion.id == conversion.id, Conversion.refunded_amount == before)
            .values(refunded_amount=after)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            raise Conflict("Another refund of this purchase was being recorded; send again.")
        refund = Refund(conversion_id=conversion.id, external_id=external_id, amount=amount,
                        cumulative=after)
        db.session.add(refund)
        db.session.flush()
        touch(conversion.program_id, conversion.occurred_at)
        db.session.expire(conversion)
        _adjust_rewards(conversion, refund)
        if commit:
            db.session.commit()
    except IntegrityError:
        if commit:
            db.session.rollback()
        raise Conflict("This refund was being recorded by another request; send again.") \
            from None
    except ServiceError:
        if commit:
            db.session.rollback()
        raise
    return refund


def _already_taken_back(reward: Reward) -> int:
    clawed = db.session.scalar(
        select(func.coalesce(func.sum(-Adjustment.amount), 0))
        .where(Adjustment.reward_id == reward.id, Adjustment.kind == "clawback"))
    return reward.reversed_amount + int(clawed)


def _adjust_rewards(conversion: Conversion, refund: Refund) -> None:
    rewards = db.session.scalars(
        select(Reward).where(Reward.conversion_id == conversion.id,
                             Reward.status.in_(UNPAID_REWARDS + PAID_REWARDS))
        .order_by(Reward.id)).all()
    for reward in rewards:
        ledger.lock_balance(reward.customer_id, reward.currency)
        db.session.refresh(reward)
        target = pro_rata(reward.amount, refund.cumulative, conversion.amount)
        owed = target - _already_taken_back(reward)
        if owed <= 0:
            continue
        sentence = refund_sentence(reward, owed, conversion)
        if reward.status in PAID_REWARDS:
            ledger.claw_back(reward, owed, refund_id=refund.id, explanation=sentence)
            continue
        reversed_ = ledger.reverse_part(reward, min(owed, reward.net_amount),
                                        refund_id=refund.id, explanation=sentence)
        if not reversed_:
            raise Conflict("A reward changed while the refund was applied; send again.")
