"""Clearing or rejecting a fraud signal, from the payout page that shows it."""

from flask import flash, request
from sqlalchemy import func, select

from rewards.extensions import db
from rewards.fraud import review
from rewards.models import Conversion, Reward
from rewards.web.coordinator import bp
from rewards.web.coordinator.common import attempt, back_to, me, queue_url


def _still_held(referral_id: int) -> int:
    return db.session.scalar(
        select(func.count(Reward.id)).join(Conversion, Conversion.id == Reward.conversion_id)
        .where(Conversion.referral_id == referral_id, Reward.status == "on_hold")) or 0


@bp.post("/signals/<int:signal_id>/clear")
def signal_clear(signal_id: int):
    signal, error = attempt(review.clear, signal_id, me())
    if error:
        flash(error.message, "error")
        return back_to(queue_url())
    held = _still_held(signal.referral_id)
    if held:
        flash(f"Cleared signal #{signal_id} on referral #{signal.referral_id}; {held} "
              f"reward{'s' if held != 1 else ''} stay held until its other signals are "
              "resolved and any card dispute on its purchases closes.", "success")
    else:
        flash(f"Cleared signal #{signal_id} on referral #{signal.referral_id}: its held "
              "rewards are released and go into the next payout.", "success")
    return back_to(queue_url())


@bp.post("/signals/<int:signal_id>/reject")
def signal_reject(signal_id: int):
    signal, error = attempt(review.reject, signal_id, me(), request.form.get("reason", ""))
    if error:
        flash(error.message, "error")
    else:
        flash(f"Rejected signal #{signal_id} on referral #{signal.referral_id}: its unpaid "
              "rewards are rejected, and so are those its later purchases earn.", "success")
    return back_to(queue_url())
