"""The coordinator's decisions on fraud signals, and what their pages read.

Clearing a signal finds it harmless: the referral's held rewards are released once nothing
else holds them. Rejecting it finds the referral fraudulent: its unpaid rewards are
rejected, and so are those its later purchases earn. Both are audited and commit.
"""

from sqlalchemy import select, update

from rewards.audit import log as audit
from rewards.errors import Conflict, NotFound, ServiceError
from rewards.extensions import db
from rewards.ledger import holds
from rewards.models import Account, Conversion, FraudSignal, Reward, utcnow

AUDITED = ("status", "resolved_by", "resolved_at")


def _resolve(signal_id: int, account: Account, to: str) -> tuple[FraudSignal, dict, int]:
    """Compare-and-set the open signal to `to`, then apply the referral's verdict to its
    unpaid rewards. Returns the signal, its audit snapshot before, and how many moved."""
    signal = db.session.get(FraudSignal, signal_id)
    if signal is None:
        raise NotFound(f"No fraud signal #{signal_id}.")
    before = audit.snapshot(signal, *AUDITED)
    holds.lock_referrers([signal.referral])
    changed = db.session.execute(
        update(FraudSignal).where(FraudSignal.id == signal_id, FraudSignal.status == "open")
        .values(status=to, resolved_by=account.id, resolved_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        db.session.rollback()
        current = db.session.get(FraudSignal, signal_id)
        raise Conflict(f"Fraud signal #{signal_id} is already {current.status}.")
    db.session.expire(signal)
    return signal, before, holds.settle_referral(signal.referral_id)


def clear(signal_id: int, account: Account) -> FraudSignal:
    """The coordinator finds the signal harmless."""
    signal, before, released = _resolve(signal_id, account, "cleared")
    audit.record(account, "clear_signal", f"signal:{signal.id}", before=before,
                 after=audit.snapshot(signal, *AUDITED) | {"rewards_released": released},
                 note=signal.detail)
    db.session.commit()
    return signal


def reject(signal_id: int, account: Account, reason: str) -> FraudSignal:
    """The coordinator finds the referral fraudulent."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Give a reason for the rejection.", field="reason")
    signal, before, rejected = _resolve(signal_id, account, "rejected")
    audit.record(account, "reject_signal", f"signal:{signal.id}", before=before,
                 after=audit.snapshot(signal, *AUDITED) | {"reason": reason[:400],
                                                           "rewards_rejected": rejected},
                 note=f"{signal.detail} Rejected: {reason}")
    db.session.commit()
    return signal


def signals_for_referral(referral_id: int) -> list[FraudSignal]:
    """Every signal of a referral, open or resolved, oldest first."""
    return list(db.session.scalars(
        select(FraudSignal).filter_by(referral_id=referral_id).order_by(FraudSignal.id)))


def open_signals_for_payout(payout_id: int) -> list[FraudSignal]:
    """Open signals on the referrals whose rewards are in the payout (a signal raised
    after the payout was proposed does not move its rewards: the coordinator sees it)."""
    referrals = (select(Conversion.referral_id)
                 .join(Reward, Reward.conversion_id == Conversion.id)
                 .where(Reward.payout_id == payout_id, Conversion.referral_id.is_not(None)))
    return list(db.session.scalars(
        select(FraudSignal).where(FraudSignal.referral_id.in_(referrals),
                                  FraudSignal.status == "open")
        .order_by(FraudSignal.referral_id, FraudSignal.id)))
