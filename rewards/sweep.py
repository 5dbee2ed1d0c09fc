"""`sweep`: picks up what waited too long. Releases rewards whose hold has ended, proposes
the payouts that are due, and enqueues again the work recorded in the database whose job
was lost (a Redis outage): purchases to reward, payouts to send or resume, Stripe events to
apply. Safe to run at any time, and concurrently."""

from datetime import timedelta

from sqlalchemy import select

from rewards import background
from rewards.analytics import rollups
from rewards.attribution import clicks
from rewards.extensions import db
from rewards.ledger import holds
from rewards.models import Conversion, utcnow
from rewards.payouts import proposals, sending
from rewards.stripe import inbox as stripe_inbox

# Work recorded in the database but not done after this long is enqueued again.
STALE_AFTER = timedelta(minutes=5)
# A Stripe event not processed this long after it was received is enqueued again.
STRIPE_EVENT_STALE_AFTER = timedelta(minutes=2)


def sweep() -> dict:
    """Returns how much of each kind of work it found."""
    waiting = db.session.scalars(select(Conversion.id).where(
        Conversion.processed_at.is_(None), Conversion.referrer_id.is_not(None),
        Conversion.created_at < utcnow() - STALE_AFTER)).all()
    db.session.rollback()
    for conversion_id in waiting:
        background.enqueue("rewards.jobs.process_conversion", conversion_id)
    released = holds.release_due()
    db.session.commit()
    proposed = proposals.propose_due()
    retry_ids, resume_ids = sending.stale()
    db.session.rollback()
    for payout_id in retry_ids:
        background.enqueue("rewards.jobs.send_payout", payout_id)
    for payout_id in resume_ids:
        background.enqueue("rewards.jobs.resume_payout", payout_id)
    events = stripe_inbox.requeue_ids(utcnow() - STRIPE_EVENT_STALE_AFTER)
    db.session.rollback()
    if events:
        # One batch job for all of them: it applies these in batches, then whatever else
        # is received.
        background.enqueue("rewards.jobs.process_stripe_events", events)
    return {"rewards_released": released, "payouts_proposed": proposed,
            "payouts_retried": len(retry_ids) + len(resume_ids),
            "conversions_requeued": len(waiting), "clicks_flushed": clicks.flush_clicks(),
            "stripe_events_requeued": len(events), "rollup_days": rollups.refresh()}
