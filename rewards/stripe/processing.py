"""Applying stored Stripe events, a batch per transaction, each event once.

A transaction claims its events (on PostgreSQL `FOR UPDATE SKIP LOCKED`, on SQLite the
write lock), applies them, moves each status by compare-and-set to its outcome and commits
once, so an event is applied by one transaction only and a worker that dies mid-batch leaves
its events for the next. When an event raises, the batch starts again with a savepoint per
event, so that the failing one alone is recorded as failed. A refund or dispute whose
purchase is not recorded yet waits for it; every order of the same events ends in the same
state. The purchases' rewards are computed after the commit.
"""

import json
import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from rewards.errors import Conflict, ServiceError
from rewards.extensions import db
from rewards.ledger.compute import reward_many
from rewards.models import CLAIMABLE_EVENT, StripeEvent
from rewards.stripe import batch as batches
from rewards.stripe.accounts import account_updated_event
from rewards.stripe.batch import (
    BATCH,
    PURCHASES,
    BadEvent,
    Batch,
    on_postgresql,
    stripe_conversion,
    write_outcomes,
)
from rewards.stripe.disputes import dispute_closed, dispute_created
from rewards.stripe.purchases import purchase
from rewards.stripe.refunds import charge_refunded

log = logging.getLogger(__name__)


IGNORED = "Not an event this platform uses."


def _claim(ids: list[int] | None, limit: int) -> list[StripeEvent]:
    """Lock the events this transaction applies, oldest first: the claimable ones of `ids`,
    or (ids None) up to `limit` received events. On PostgreSQL, `FOR UPDATE SKIP LOCKED`
    leaves the rows another transaction holds to it; on SQLite, a write that changes
    nothing takes the database's write lock first, so the rows are this transaction's
    alone until it ends."""
    where = [StripeEvent.status == "received"] if ids is None else [
        StripeEvent.id.in_(ids), StripeEvent.status.in_(CLAIMABLE_EVENT)]
    # Oldest first, in the order of the (status, received_at) index.
    order = (StripeEvent.received_at, StripeEvent.id)
    if on_postgresql():
        statement = (select(StripeEvent).where(*where).order_by(*order).limit(limit)
                     .with_for_update(skip_locked=True))
    else:
        picked = select(StripeEvent.id).where(*where).order_by(*order).limit(limit)
        claimed = db.session.scalars(
            update(StripeEvent).where(StripeEvent.id.in_(picked))
            .values(attempts=StripeEvent.attempts).returning(StripeEvent.id)
            .execution_options(synchronize_session=False)).all()
        if not claimed:
            return []
        statement = select(StripeEvent).where(StripeEvent.id.in_(claimed)).order_by(*order)
    return list(db.session.scalars(statement.execution_options(populate_existing=True)))


def _run(ids: list[int] | None, limit: int, reward=None) -> Batch:
    """One transaction: claim, apply each event, apply the events that waited for the
    purchases just recorded, commit. Then the new purchases' rewards, each in its own
    transaction.

    Events are applied without savepoints first (two round trips fewer per event); when
    one raises, the transaction is rolled back and the same events are claimed again and
    applied each in a savepoint of its own, so that a failing event is rolled back alone
    and recorded as failed while the others are applied."""
    batch = Batch()
    try:
        rows = _claim(ids, limit)
        batch.claimed = len(rows)
        try:
            _apply_all(rows, batch)
        except Exception:
            db.session.rollback()
            claimed = [row.id for row in rows]
            batch = Batch(claimed=len(claimed), savepoints=True)
            _apply_all(_claim(claimed, len(claimed)), batch)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    (reward or reward_batch)(batch)
    return batch


def _apply_all(rows: list[StripeEvent], batch: Batch) -> None:
    batches.prefetch(rows, batch)
    for row in rows:
        batch.statuses[row.id] = _apply(row, batch)
    write_outcomes(batch)
    _apply_waiting(batch)
    write_outcomes(batch)


def process(event_row_id: int) -> str:
    """Apply one stored event, in a transaction of its own; returns its status. Never
    raises for a bad event: a failure is recorded (status failed, the error in `outcome`,
    attempts + 1). An event already processed (or being processed by another transaction)
    is left alone: its status as stored is returned."""
    status = _run([event_row_id], 1).statuses.get(event_row_id)
    if status is None:
        status = db.session.scalar(
            select(StripeEvent.status).where(StripeEvent.id == event_row_id)) or "missing"
        db.session.rollback()
    return status


def process_received(limit: int = BATCH, reward=None) -> int:
    """Claim up to `limit` received events, oldest first, and apply them in one
    transaction. Returns how many were claimed: 0 when none waits (or other transactions
    hold those that do). `reward(batch)`, when given, computes the rewards of the batch's
    purchases once it has committed, instead of `reward_batch` right away."""
    return _run(None, limit, reward).claimed


def process_many(event_row_ids: list[int], limit: int = BATCH, reward=None) -> int:
    """Apply the claimable events among these ids (received, waiting or failed), `limit`
    to a transaction, oldest first within each; returns how many were claimed. Events
    another transaction holds or has applied are left alone."""
    ids = sorted(set(event_row_ids))
    return sum(_run(ids[start:start + limit], limit, reward).claimed
               for start in range(0, len(ids), limit))


def _handle(row: StripeEvent, batch: Batch) -> tuple[str, str, str | None, list]:
    """Apply a claimed event: (status, outcome, order id, order keys)."""
    event = json.loads(row.payload)
    data = event.get("data") if isinstance(event, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise BadEvent("The event has no data object.")
    return HANDLERS.get(row.type, _ignore)(event, obj, batch)


def _apply(row: StripeEvent, batch: Batch, *, again: bool = True, retry: bool = True) -> str:
    """Apply one claimed event; returns its status. Without savepoints an error is raised
    (`_run` starts again with them); in its savepoint, a failure rolls back the event
    alone and is recorded on it."""
    kind = row.type
    try:
        if batch.savepoints:
            with db.session.begin_nested():
                status, outcome, order_id, keys = _handle(row, batch)
        else:
            status, outcome, order_id, keys = _handle(row, batch)
    except Exception as error:
        if not batch.savepoints:
            raise
        if not retry or not isinstance(error, IntegrityError | Conflict):
            return _failed(row, error, batch)
        # Another transaction wrote the same purchase, buyer or refund at the same time;
        # now that it has committed, applying the event again finds that work done (so
        # what the batch's lookup found is no longer trusted: purchases are looked up).
        db.session.expire_all()
        batch.looked_up.clear()
        batch.absent_emails.clear()
        return _apply(row, batch, again=again, retry=False)
    batch.finish(row.id, status, outcome, order_id)
    if kind in PURCHASES and status == "processed":
        batch.purchase_keys += [key for key in keys if key]
    elif status == "waiting" and again and stripe_conversion(keys) is not None:
        # Another transaction recorded the purchase while this event was found waiting.
        return _apply(row, batch, again=False)
    return status


def _failed(row: StripeEvent, error: Exception, batch: Batch) -> str:
    log.warning("stripe event %s (%s) failed: %s", row.event_id, row.type, error)
    message = error.message if isinstance(error, ServiceError) else str(error)
    batch.finish(row.id, "failed", f"Failed: {type(error).__name__}: {message}".strip(),
                 failed=True)
    return "failed"


def _apply_waiting(batch: Batch) -> None:
    """Apply the refunds and disputes that waited for the purchases of this transaction,
    oldest first (by Stripe's `created`)."""
    keys = list(dict.fromkeys(batch.purchase_keys))
    if not keys:
        return
    statement = (select(StripeEvent)
                 .where(StripeEvent.status == "waiting", StripeEvent.order_id.in_(keys))
                 .order_by(StripeEvent.created, StripeEvent.id))
    if on_postgresql():
        statement = statement.with_for_update(skip_locked=True)
    for row in db.session.scalars(statement.execution_options(populate_existing=True)).all():
        batch.statuses[row.id] = _apply(row, batch, again=False)


def reward_batch(batch: Batch) -> None:
    """The rewards of the purchases the transaction recorded, computed here."""
    reward_many(batch.to_reward)


def _ignore(event: dict, obj: dict, batch: Batch):
    return "ignored", IGNORED, None, []


HANDLERS = {
    **dict.fromkeys(PURCHASES, purchase),
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
    "account.updated": account_updated_event,
}
