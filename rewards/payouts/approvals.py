"""The coordinator's decisions on a payout: approve (a second, different coordinator too
above the program's threshold), reject, retry, or mark a manual one paid. Each is audited
and commits; an approved payout paid through Stripe is sent by a job."""

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from rewards import background
from rewards.audit import log as audit
from rewards.errors import Conflict, ServiceError
from rewards.extensions import db
from rewards.ledger import lines as ledger
from rewards.models import (
    REJECTABLE_PAYOUT,
    RETRYABLE_PAYOUT,
    Account,
    Adjustment,
    Payout,
    PayoutApproval,
    Reward,
    utcnow,
)
from rewards.payouts.transitions import AUDITED, get_payout, move, settle


def approve(payout_id: int, account: Account) -> Payout:
    """Record this coordinator's approval; with enough approvals the payout is approved
    and, unless it is paid by hand, sent by a job."""
    payout = get_payout(payout_id)
    if payout.status != "awaiting_approval":
        raise Conflict(f"Payout #{payout.id} is {payout.status.replace('_', ' ')}, "
                       "not awaiting approval.")
    before = audit.snapshot(payout, *AUDITED)
    try:
        db.session.add(PayoutApproval(payout_id=payout.id, account_id=account.id))
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"You have already approved payout #{payout_id}; a second, different "
                       "coordinator must approve it too.") from None
    approvals = db.session.scalar(
        select(func.count(PayoutApproval.id)).filter_by(payout_id=payout.id))
    needed = 2 if payout.needs_two_approvals else 1
    if approvals >= needed and not move(payout, "approved", ("awaiting_approval",),
                                        approved_at=utcnow()):
        db.session.rollback()
        raise Conflict(f"Payout #{payout_id} was changed by someone else; reload the page.")
    audit.record(account, "approve_payout", f"payout:{payout.id}", before=before,
                 after=audit.snapshot(payout, *AUDITED),
                 note=f"approval {approvals} of {needed}")
    db.session.commit()
    if payout.status == "approved" and payout.method != "manual":
        background.enqueue("rewards.jobs.send_payout", payout.id)
    return payout


def reject(payout_id: int, account: Account, reason: str, rewards_to: str) -> Payout:
    """Reject a payout; its rewards go back to available or are rejected for good, and
    the clawbacks it netted are owed again."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Give a reason for the rejection.", field="reason")
    if rewards_to not in ("available", "rejected"):
        raise ServiceError("Choose whether the rewards go back to available or are rejected.",
                           field="rewards_to")
    payout = get_payout(payout_id)
    before = audit.snapshot(payout, *AUDITED)
    ledger.lock_balance(payout.customer_id, payout.currency)
    if not move(payout, "rejected", REJECTABLE_PAYOUT,
                rejection_reason=reason[:400]):
        db.session.rollback()
        raise Conflict(f"Payout #{payout_id} is {payout.status.replace('_', ' ')} and can no "
                       "longer be rejected.")
    for reward in db.session.scalars(select(Reward).filter_by(payout_id=payout.id,
                                                              status="in_payout")).all():
        ledger.unreserve(reward, to=rewards_to)
    for line in db.session.scalars(select(Adjustment).filter_by(payout_id=payout.id,
                                                                status="netted")).all():
        line.status, line.payout_id = "owed", None
        ledger.shift_balance(line.customer_id, line.currency, owed=-line.amount)
    audit.record(account, "reject_payout", f"payout:{payout.id}", before=before,
                 after=audit.snapshot(payout, *AUDITED), note=f"rewards {rewards_to}: {reason}")
    db.session.commit()
    return payout


def retry(payout_id: int, account: Account) -> Payout:
    """failed or needs attention -> approved, and send again."""
    payout = get_payout(payout_id)
    before = audit.snapshot(payout, *AUDITED)
    if not move(payout, "approved", RETRYABLE_PAYOUT, failure_reason=None):
        raise Conflict(f"Payout #{payout_id} is {payout.status.replace('_', ' ')}; only failed "
                       "payouts or ones that need attention can be retried.")
    audit.record(account, "retry_payout", f"payout:{payout.id}", before=before,
                 after=audit.snapshot(payout, *AUDITED))
    db.session.commit()
    if payout.method != "manual":
        background.enqueue("rewards.jobs.send_payout", payout.id)
    return payout


def mark_paid(payout_id: int, account: Account, reference: str) -> Payout:
    """A manual payout, paid outside the platform, recorded with its reference."""
    reference = (reference or "").strip()
    if not reference:
        raise ServiceError("Give the payment reference (bank transfer id, cheque number...).",
                           field="reference")
    payout = get_payout(payout_id)
    if payout.method != "manual":
        raise Conflict(f"Payout #{payout_id} is sent through Stripe, not marked paid by hand.")
    before = audit.snapshot(payout, *AUDITED)
    if not move(payout, "processing", ("approved",), last_attempt_at=utcnow()):
        raise Conflict(f"Payout #{payout_id} is {payout.status.replace('_', ' ')}, not "
                       "approved.")
    settle(payout, reference=reference[:200])
    audit.record(account, "mark_paid", f"payout:{payout.id}", before=before,
                 after=audit.snapshot(payout, *AUDITED))
    db.session.commit()
    return payout
