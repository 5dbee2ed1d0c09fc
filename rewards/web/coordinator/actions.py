"""One payout action, reported in a sentence: used by the detail page and the batch form."""

from dataclasses import dataclass

from sqlalchemy import func, select

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import RETRYABLE_PAYOUT, Payout, PayoutApproval
from rewards.payouts import approvals
from rewards.web.coordinator.common import attempt, me

REWARDS_TO = {"available": "its rewards are available again",
              "rejected": "its rewards are rejected for good"}


@dataclass
class Outcome:
    category: str  # a flash category: success, info or error
    message: str
    # The form itself is wrong (no reason given...): every other payout would fail the same.
    bad_input: bool = False


def _refused(payout_id: int, error: ServiceError) -> Outcome:
    return Outcome("error", f"#{payout_id}: {error.message}", bad_input=bool(error.field))


def approve(payout_id: int) -> Outcome:
    _, error = attempt(approvals.approve, payout_id, me())
    if error:
        return _refused(payout_id, error)
    payout = db.session.get(Payout, payout_id)
    if payout.status == "awaiting_approval":
        given = db.session.scalar(select(func.count(PayoutApproval.id))
                                  .filter_by(payout_id=payout_id))
        return Outcome("info", f"Approved #{payout_id} ({given} of 2): a second, different "
                               "coordinator must approve it too.")
    if payout.status == "paid":
        return Outcome("success", f"Approved #{payout_id}: paid.")
    if payout.status in RETRYABLE_PAYOUT:
        words = "needs attention" if payout.status == "needs_attention" else "failed"
        return Outcome("error", f"Approved #{payout_id}, but sending {words}: "
                                f"{payout.failure_reason}")
    if payout.method == "manual" and payout.status == "approved":
        return Outcome("success", f"Approved #{payout_id}: pay it outside the platform, "
                                  "then mark it paid with the reference.")
    return Outcome("success", f"Approved #{payout_id}")


def reject(payout_id: int, reason: str, rewards_to: str) -> Outcome:
    _, error = attempt(approvals.reject, payout_id, me(), reason, rewards_to)
    if error:
        if error.field:  # the reason or the choice: say it once, without a payout number
            return Outcome("error", error.message, bad_input=True)
        return _refused(payout_id, error)
    return Outcome("success", f"Rejected #{payout_id}: {REWARDS_TO[rewards_to]}.")


def retry(payout_id: int) -> Outcome:
    _, error = attempt(approvals.retry, payout_id, me())
    if error:
        return _refused(payout_id, error)
    payout = db.session.get(Payout, payout_id)
    if payout.status == "paid":
        return Outcome("success", f"Retried #{payout_id}: paid.")
    if payout.status in RETRYABLE_PAYOUT:
        return Outcome("error", f"Retried #{payout_id}, but it still cannot be sent: "
                                f"{payout.failure_reason}")
    if payout.method == "manual":
        return Outcome("success", f"Retried #{payout_id}: it is approved again; pay it outside "
                                  "the platform, then mark it paid with the reference.")
    return Outcome("success", f"Retried #{payout_id}: it is approved and will be sent again.")


def mark_paid(payout_id: int, reference: str) -> Outcome:
    _, error = attempt(approvals.mark_paid, payout_id, me(), reference)
    if error:
        if error.field:
            return Outcome("error", error.message, bad_input=True)
        return _refused(payout_id, error)
    payout = db.session.get(Payout, payout_id)
    return Outcome("success", f"Marked #{payout_id} paid with the reference "
                              f"{payout.reference}.")
