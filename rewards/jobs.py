"""rq job functions. Each takes ids only, runs inside the app context, and is safe to run
twice. `enqueue` is called after the commit; without Redis it runs the job inline.
"""

import contextlib
import logging
import time
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select

from rewards.background import get_queue, redis_connection
from rewards.extensions import db
from rewards.models import Conversion, utcnow

log = logging.getLogger(__name__)

# Work recorded in the database but not done after this long is enqueued again by `sweep`.
STALE_AFTER = timedelta(minutes=5)
# A Stripe event not processed this long after it was received is enqueued again.
STRIPE_EVENT_STALE_AFTER = timedelta(minutes=2)
# Set (SET NX) while a `process_stripe_events` job is queued and not started: the webhook
# queues one only when it can set the key, so one job waits at a time however many events
# arrive, for one Redis round trip per event. The job deletes the key before it claims
# anything, so an event stored after that queues the next job. The key expires on its own:
# a queued job that is lost holds new ones back this long at most (and `sweep` picks up
# whatever waits longer).
STRIPE_EVENTS_QUEUED = "rewards:stripe-events:queued"
STRIPE_EVENTS_QUEUED_SECONDS = 10
# A `process_stripe_events` job stops after this long and queues its successor, so that
# steady traffic never keeps one job running past rq's job timeout (180 s).
STRIPE_EVENTS_JOB_SECONDS = 60


def enqueue(func, *ids) -> None:
    if current_app.config["INLINE_JOBS"]:
        func(*ids)
        return
    try:
        get_queue().enqueue(func, *ids)
    except RedisError:
        # The work is in the database; `sweep` will enqueue it once Redis answers again.
        log.warning("could not enqueue %s%r; sweep will retry", func.__name__, ids)


def process_conversion(conversion_id: int) -> bool:
    """Compute an attributed purchase's rewards, once; False when already done."""
    from rewards.ledger.compute import reward_conversion

    return reward_conversion(conversion_id)


def send_payout(payout_id: int) -> str:
    """Send an approved payout through Stripe; only one copy of the job calls Stripe."""
    from rewards.payouts.lifecycle import send

    return send(payout_id)


def resume_payout(payout_id: int) -> str:
    """Finish a payout whose sender died: record what Stripe made, or send it."""
    from rewards.payouts.lifecycle import send

    return send(payout_id, resume=True)


def process_stripe_event(event_row_id: int) -> str:
    """Apply a stored Stripe event; safe twice (its status moves by compare-and-set)."""
    from rewards.stripe.events import process

    return process(event_row_id)


def process_stripe_events(event_row_ids: list[int] | None = None) -> int:
    """Apply the received Stripe events, one transaction of up to `BATCH` at a time, until
    none waits; returns how many it claimed. It claims what waits, and each event is
    claimed by one transaction only, so copies of this job running at once (or one after
    the other) share the work and apply each event once. `event_row_ids` (from `sweep`):
    these events are applied first, in batches, whichever of received, waiting or failed
    they are."""
    from rewards.stripe.events import process_many, process_received

    redis = redis_connection()
    if redis is not None:
        with contextlib.suppress(RedisError):  # the key expires by itself
            redis.delete(STRIPE_EVENTS_QUEUED)  # from now on, a new event queues a job
    deadline = time.monotonic() + STRIPE_EVENTS_JOB_SECONDS
    # On PostgreSQL with a queue, each batch's rewards are a job of their own; otherwise
    # (SQLite has one writer at a time) they are computed after each batch, here.
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    reward = _hand_off if redis is not None and postgresql else None
    claimed = process_many(event_row_ids, reward=reward) if event_row_ids else 0
    while count := process_received(reward=reward):
        claimed += count
        if redis is not None and time.monotonic() > deadline:
            queue_stripe_events()  # more may wait: a successor carries on
            break
    return claimed


def reward_purchases(conversion_ids: list[int]) -> int:
    """Compute the rewards of these attributed purchases, each once (a compare-and-set on
    `processed_at`); returns how many were computed. One that fails is left to the sweep."""
    from rewards.ledger.compute import reward_many

    return reward_many(conversion_ids)


def _hand_off(batch) -> None:
    """Queue a `reward_purchases` job for a committed batch's purchases, so that another
    worker process (`python -m worker` runs two by default) computes them while this job
    applies the next batch. When Redis fails they are computed here."""
    ids = list(dict.fromkeys(batch.to_reward))
    if not ids:
        return
    try:
        get_queue().enqueue(reward_purchases, ids)
    except RedisError:
        reward_purchases(ids)


def stripe_event_stored(event_row_id: int) -> None:
    """After the webhook stored (and committed) a new event: without Redis, apply it now;
    with Redis, make sure a `process_stripe_events` job is queued."""
    if current_app.config["INLINE_JOBS"]:
        process_stripe_event(event_row_id)
        return
    queue_stripe_events()


def queue_stripe_events() -> bool:
    """Queue a `process_stripe_events` job unless one is queued and has not started
    (STRIPE_EVENTS_QUEUED); returns whether it queued one. When Redis fails the events
    are stored all the same, and `sweep` applies them."""
    try:
        if not redis_connection().set(STRIPE_EVENTS_QUEUED, "1", nx=True,
                                      ex=STRIPE_EVENTS_QUEUED_SECONDS):
            return False
        get_queue().enqueue(process_stripe_events)
        return True
    except RedisError:
        log.warning("could not queue process_stripe_events; sweep will apply the events")
        return False


def flush_clicks() -> int:
    from rewards.attribution.clicks import flush_clicks as flush

    return flush()


def refresh_rollups() -> int:
    from rewards.analytics.rollups import refresh

    return refresh()


def sweep() -> dict:
    """Re-enqueue work that waited too long. Safe to run at any time, and concurrently."""
    cutoff = utcnow() - STALE_AFTER
    waiting = db.session.scalars(
        select(Conversion.id).where(
            Conversion.processed_at.is_(None),
            Conversion.referrer_id.is_not(None),
            Conversion.created_at < cutoff,
        )
    ).all()
    db.session.rollback()
    for conversion_id in waiting:
        enqueue(process_conversion, conversion_id)
    from rewards.ledger.lines import release_due
    from rewards.payouts import lifecycle as payouts

    released = release_due()
    db.session.commit()
    proposed = payouts.propose_due()
    retry_ids, resume_ids = payouts.stale()
    db.session.rollback()
    for payout_id in retry_ids:
        enqueue(send_payout, payout_id)
    for payout_id in resume_ids:
        enqueue(resume_payout, payout_id)
    from rewards.stripe.events import requeue_ids

    stripe_events = requeue_ids(utcnow() - STRIPE_EVENT_STALE_AFTER)
    db.session.rollback()
    if stripe_events:
        # One batch job for all of them (not a job per event): it applies these in
        # batches, then whatever else is received.
        enqueue(process_stripe_events, stripe_events)
    return {"rewards_released": released, "payouts_proposed": proposed,
            "payouts_retried": len(retry_ids) + len(resume_ids),
            "conversions_requeued": len(waiting), "clicks_flushed": flush_clicks(),
            "stripe_events_requeued": len(stripe_events), "rollup_days": refresh_rollups()}
