"""Stripe's events in: stored once on intake (unique on Stripe's event id) before the
webhook answers, then applied by one batch job at a time; the sweep picks up what waited."""

import contextlib
import json
import logging
import time
from datetime import datetime

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from rewards import background
from rewards.extensions import db
from rewards.ledger.compute import reward_many
from rewards.models import Conversion, StripeEvent, utcnow
from rewards.stripe.batch import BadEvent, Batch, on_postgresql
from rewards.stripe.processing import process, process_many, process_received

log = logging.getLogger(__name__)


def _check_event(event: object) -> dict:
    if not isinstance(event, dict):
        raise BadEvent("The body is not a Stripe event object.")
    event_id, kind, created = event.get("id"), event.get("type"), event.get("created")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 64:
        raise BadEvent("The event has no valid id.", field="id")
    if not isinstance(kind, str) or not 0 < len(kind) <= 64:
        raise BadEvent("The event has no valid type.", field="type")
    if isinstance(created, bool) or not isinstance(created, int):
        raise BadEvent("The event has no valid created time.", field="created")
    return event


def store(event: object) -> int | None:
    """Store the event unless an event with its id is stored (insert ... on conflict do
    nothing), and commit. Returns the new row's id, or None when it was stored before.
    One statement and the commit: what the webhook does before it answers."""
    event = _check_event(event)
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = StripeEvent.__table__  # a Core statement: no ORM work on the hot path
    new_id = db.session.execute(
        insert(table)
        .values(event_id=event["id"], type=event["type"], created=event["created"],
                payload=json.dumps(event, separators=(",", ":")), status="received",
                attempts=0, received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(table.c.id)
    ).scalar()
    db.session.commit()
    return new_id


def ingest(event: dict) -> tuple[StripeEvent, bool]:
    """`store`, then the stored row: returns it and whether it is new."""
    new_id = store(event)
    row = db.session.scalar(select(StripeEvent).filter_by(event_id=event["id"]))
    return row, new_id is not None


MAX_ATTEMPTS = 5


def requeue_ids(cutoff: datetime) -> list[int]:
    """Events to process again: still received, failed fewer than MAX_ATTEMPTS times, or
    waiting for a purchase that is recorded now; all received before `cutoff`."""
    recorded = select(Conversion.id).where(Conversion.source == "stripe",
                                           Conversion.order_id == StripeEvent.order_id)
    return list(db.session.scalars(
        select(StripeEvent.id).where(
            StripeEvent.received_at < cutoff,
            (StripeEvent.status == "received")
            | ((StripeEvent.status == "failed") & (StripeEvent.attempts < MAX_ATTEMPTS))
            | ((StripeEvent.status == "waiting") & recorded.exists()))
        .order_by(StripeEvent.id).limit(1000)))


# Set (SET NX) while a `process_stripe_events` job is queued and not started: intake queues
# one only when it can set the key, so one waits at a time however many events arrive. The
# job deletes the key before it claims anything, so an event stored after that queues the
# next job; the key expires on its own should a queued job be lost (the sweep picks up
# whatever waits longer).
QUEUED_KEY = "rewards:stripe-events:queued"


QUEUED_SECONDS = 10


# A batch job stops after this long and queues its successor, so that steady traffic never
# keeps one job running past rq's job timeout (180 s).
JOB_SECONDS = 60


def stored(event_row_id: int) -> None:
    """After intake committed a new event: without Redis, apply it now; with Redis, make
    sure a batch job is queued."""
    if current_app.config["INLINE_JOBS"]:
        process(event_row_id)
        return
    queue_batch_job()


def queue_batch_job() -> bool:
    """Queue a `process_stripe_events` job unless one is queued and has not started;
    returns whether it queued one. When Redis fails the events are stored all the same,
    and `sweep` applies them."""
    try:
        if not background.redis_connection().set(QUEUED_KEY, "1", nx=True, ex=QUEUED_SECONDS):
            return False
        background.get_queue().enqueue("rewards.jobs.process_stripe_events")
        return True
    except RedisError:
        log.warning("could not queue process_stripe_events; sweep will apply the events")
        return False


def drain(event_row_ids: list[int] | None = None) -> int:
    """The batch job: apply `event_row_ids` (from the sweep) first, then the received
    events, a transaction of up to BATCH at a time, until none waits; returns how many it
    claimed. Each event is claimed by one transaction only, so copies of this job running
    at once share the work and apply each event once."""
    redis = background.redis_connection()
    if redis is not None:
        with contextlib.suppress(RedisError):  # the key expires by itself
            redis.delete(QUEUED_KEY)  # from now on, a new event queues a job
    deadline = time.monotonic() + JOB_SECONDS
    # On PostgreSQL with a queue, each batch's rewards are a job of their own, which another
    # worker process runs meanwhile; SQLite has one writer at a time, so they are computed
    # after each batch, here.
    reward = _hand_off if redis is not None and on_postgresql() else None
    claimed = process_many(event_row_ids, reward=reward) if event_row_ids else 0
    while count := process_received(reward=reward):
        claimed += count
        if redis is not None and time.monotonic() > deadline:
            queue_batch_job()  # more may wait: a successor carries on
            break
    return claimed


def _hand_off(batch: Batch) -> None:
    """Queue a `reward_purchases` job for a committed batch's purchases; when Redis fails,
    compute them here."""
    ids = list(dict.fromkeys(batch.to_reward))
    if ids and not background.enqueue("rewards.jobs.reward_purchases", ids):
        reward_many(ids)
