"""Stripe's events: stored once on intake, processed by a job, idempotently.

`store` (and `ingest`, which also reads the row back) stores an event (insert-or-nothing on
Stripe's event id) and commits; the webhook answers once it is stored. `process_received`
applies the received events in batches (one transaction of up to BATCH events), `process`
one event; both are safe to run twice or concurrently:

- A transaction first claims its events: on PostgreSQL it locks their rows with
  `FOR UPDATE SKIP LOCKED` (rows another transaction holds are left to it), on SQLite a
  write that changes nothing takes the database's write lock. So an event is applied by
  one transaction only, and a worker that dies mid-batch leaves its events received for
  the next batch or the sweep.
- The events are applied, each status moves with a compare-and-set from received, waiting
  or failed to the outcome (processed, ignored, waiting or failed; processed and ignored
  are final), and one commit makes the work and the statuses durable together. When an
  event raises, the batch starts again with each event in a savepoint of its own, so
  that the failing one is rolled back alone and recorded as failed (attempts + 1).
- The work is idempotent by itself too (a purchase is unique per order id, a refund per
  external id, a dispute per dispute id, and ledger moves are compare-and-set).
- The rewards of the purchases recorded are computed after the commit, in the same job
  (`rewards.reward_conversion`, a compare-and-set on `processed_at`); the sweep computes
  any left undone.

While a batch is open it holds what it wrote (new buyers, the balances a refund or a
dispute moves) until its commit, a fraction of a second: a request touching the same rows
waits that long.

Events can come in any order. A refund or dispute whose purchase is not recorded yet waits
(`waiting`, with the order id it needs); recording the purchase processes them, oldest
first by Stripe's `created`. Every order of the same events ends in the same state.

Attribution of a Stripe purchase, in this order (the link that matched is recorded in
`Conversion.matched_via`): `client_reference_id` (a visitor id when the program has clicks
with that visitor id, otherwise a referral code), `metadata.referral_code`, the promotion
code used, the buyer's Stripe customer id (a known customer whose signup was referred),
the buyer's email (likewise). About promotion codes: an event only carries the promotion
code's id (`promo_...`) unless it was expanded. So the value taken is, from the first
discount that has one, `discounts[].promotion_code` (its `code` when expanded to an
object; for a bare `promo_...` id, the code Stripe gives for it, asked once per id and
process, when STRIPE_API_KEY is set), then `metadata.promotion_code`, and it is looked up
as a referral code. Stripe unreachable fails the event, which is tried again later, rather
than record the purchase unattributed.
"""

import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import (
    Integer,
    String,
    bindparam,
    column,
    func,
    or_,
    select,
    true,
    tuple_,
    update,
    values,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from rewards import background
from rewards.attribution.purchases import NewConversion, record_conversion, request_hash
from rewards.errors import Conflict, ServiceError
from rewards.extensions import db
from rewards.ledger import holds
from rewards.ledger.compute import reward_many
from rewards.ledger.refunds import record_refund
from rewards.models import (
    CLAIMABLE_EVENT,
    FINAL_EVENT,
    Click,
    Conversion,
    Customer,
    Dispute,
    Refund,
    StripeEvent,
    utcnow,
)
from rewards.money import format_money
from rewards.people.customers import normalise_email
from rewards.people.programs import default_program, get_program
from rewards.stripe import accounts
from rewards.stripe import gateway as stripe_gateway

log = logging.getLogger(__name__)

PURCHASES = ("checkout.session.completed", "checkout.session.async_payment_succeeded",
             "invoice.paid")
IGNORED = "Not an event this platform uses."
MAX_ATTEMPTS = 5


class BadEvent(ServiceError):
    code = "bad_event"


# --- intake --------------------------------------------------------------------------------

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


# --- processing ----------------------------------------------------------------------------

def _id(value) -> str | None:
    """A Stripe reference: an id string, or an expanded object's id."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _stripe_conversion(keys) -> Conversion | None:
    keys = [key for key in keys if key]
    if not keys:
        return None
    # Read afresh: another transaction may have changed it since this one last read it.
    return db.session.scalar(select(Conversion).where(
        Conversion.source == "stripe", Conversion.order_id.in_(keys)).order_by(Conversion.id)
        .limit(1).execution_options(populate_existing=True))


BATCH = 100  # events one transaction of `process_received` claims and commits together


@dataclass
class Batch:
    """What one processing transaction gathers as it applies its events."""

    # Each event's status as applied here (the claimed ones and those that waited).
    statuses: dict[int, str] = field(default_factory=dict)
    claimed: int = 0
    # Purchases recorded with a referrer: their rewards are computed after the commit.
    to_reward: list[int] = field(default_factory=list)
    # The order keys of the purchases processed: the refunds and disputes that waited for
    # them are applied before the commit.
    purchase_keys: list[str] = field(default_factory=list)
    # Programs by slug (None: the default program), read once per transaction.
    programs: dict = field(default_factory=dict)
    # Whether each event is applied in a savepoint of its own (see `_run`).
    savepoints: bool = False
    # The order keys of the batch's purchase events looked up at the start (`_prefetch`),
    # and those of them already recorded then.
    looked_up: set[str] = field(default_factory=set)
    recorded: set[str] = field(default_factory=set)
    # The buyers' emails (normalised) that the lookup at the start found no customer with,
    # in the program of their event; an email leaves once this transaction adds its buyer.
    # A buyer with one of these is added without a lookup of their own (a customer another
    # transaction adds meanwhile collides on the unique (program, email)).
    absent_emails: set[tuple[int, str]] = field(default_factory=set)
    # The events' outcomes, in the order they were reached, written by `_write_outcomes`.
    outcomes: list[dict] = field(default_factory=list)

    def finish(self, row_id: int, status: str, outcome: str, order_id: str | None = None, *,
               failed: bool = False) -> None:
        """The event's move from a claimable status to its outcome, to be written."""
        self.outcomes.append({
            "row_id": row_id, "new_status": status, "new_outcome": outcome[:400],
            "new_processed_at": utcnow() if status in FINAL_EVENT else None,
            "new_order_id": order_id[:128] if order_id else None,
            "failures": 1 if failed else 0})

    def may_be_recorded(self, keys: list[str | None]) -> bool:
        """False when the batch's lookup found no purchase for any of these keys and none
        was recorded since by this transaction; then they need no lookup of their own (a
        purchase another transaction records meanwhile collides on the unique order id)."""
        keys = [key for key in keys if key]
        return not keys or any(key not in self.looked_up or key in self.recorded
                               or key in self.purchase_keys for key in keys)


def _write_outcomes(batch: Batch) -> None:
    """Compare-and-set each event from a claimable status to its outcome (the last one
    reached, when it has two), in one statement executed for all: in the batch's
    transaction, on rows it holds."""
    if not batch.outcomes:
        return
    table = StripeEvent.__table__
    db.session.execute(
        update(table)
        .where(table.c.id == bindparam("row_id"),
               or_(*(table.c.status == status for status in CLAIMABLE_EVENT)))
        .values(status=bindparam("new_status"), outcome=bindparam("new_outcome"),
                processed_at=bindparam("new_processed_at"),
                order_id=func.coalesce(bindparam("new_order_id"), table.c.order_id),
                attempts=table.c.attempts + bindparam("failures")),
        batch.outcomes)
    batch.outcomes = []


def _purchase_keys(kind: str, obj: dict) -> tuple[str | None, str | None, str | None]:
    """A purchase event's (order id, payment intent, invoice id)."""
    session = kind.startswith("checkout.session.")
    invoice_id = _id(obj.get("invoice")) if session else _id(obj.get("id"))
    payment_intent = _id(obj.get("payment_intent"))
    return payment_intent or invoice_id or _id(obj.get("id")), payment_intent, invoice_id


def _data_object(payload: str) -> dict | None:
    event = json.loads(payload)
    data = event.get("data") if isinstance(event, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else None


def _buyer_email(obj: dict) -> str | None:
    details = obj.get("customer_details") if isinstance(obj.get("customer_details"), dict) \
        else {}
    email = details.get("email") or obj.get("customer_email")
    return email if isinstance(email, str) else None


def _prefetch_buyers(wanted: set[tuple[int, str]], batch: Batch) -> None:
    """Which of the batch's buyers' emails no customer of their program has: one query."""
    if not wanted:
        return
    if _postgresql():
        # As for purchases: one index probe per (program, email).
        pairs = values(column("program_id", Integer), column("email", String),
                       name="wanted").data(sorted(wanted))
        found = (select(Customer.id)
                 .where(Customer.program_id == pairs.c.program_id,
                        Customer.email == pairs.c.email).limit(1).lateral("found"))
        statement = (select(pairs.c.program_id, pairs.c.email).select_from(pairs)
                     .join(found, true()))
    else:
        statement = select(Customer.program_id, Customer.email).where(
            tuple_(Customer.program_id, Customer.email).in_(sorted(wanted)))
    batch.absent_emails = wanted - {tuple(row) for row in db.session.execute(statement)}


def _prefetch(rows: list[StripeEvent], batch: Batch) -> None:
    """Which of the batch's purchases are recorded already, and which of their buyers'
    emails no customer has: one query for each rather than one per event."""
    keys = set()
    buyers = set()
    for row in rows:
        if row.type in PURCHASES:
            with contextlib.suppress(ValueError):  # a bad payload fails when applied
                obj = _data_object(row.payload)
                keys.update(key for key in _purchase_keys(row.type, obj or {}) if key)
                email = normalise_email(_buyer_email(obj or {}))
                if email and not _id((obj or {}).get("customer")):
                    with contextlib.suppress(ServiceError):  # no program: fails when applied
                        buyers.add((_program(obj, batch).id, email))
    _prefetch_buyers(buyers, batch)
    if not keys:
        return
    if _postgresql():
        # One index probe per key, whatever the planner believes of the table: a long IN
        # list on a table without statistics (autovacuum off) is planned as a scan of
        # every Stripe purchase.
        wanted = values(column("key", String), name="wanted").data(
            [(key,) for key in sorted(keys)])
        found = (select(Conversion.order_id)
                 .where(Conversion.source == "stripe", Conversion.order_id == wanted.c.key)
                 .limit(1).lateral("found"))
        statement = select(found.c.order_id).select_from(wanted).join(found, true())
    else:
        statement = select(Conversion.order_id).where(
            Conversion.source == "stripe", Conversion.order_id.in_(sorted(keys)))
    batch.recorded = set(db.session.scalars(statement))
    batch.looked_up = keys


def _postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


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
    if _postgresql():
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
    _prefetch(rows, batch)
    for row in rows:
        batch.statuses[row.id] = _apply(row, batch)
    _write_outcomes(batch)
    _apply_waiting(batch)
    _write_outcomes(batch)


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
    elif status == "waiting" and again and _stripe_conversion(keys) is not None:
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
    if _postgresql():
        statement = statement.with_for_update(skip_locked=True)
    for row in db.session.scalars(statement.execution_options(populate_existing=True)).all():
        batch.statuses[row.id] = _apply(row, batch, again=False)


def reward_batch(batch: Batch) -> None:
    """The rewards of the purchases the transaction recorded, computed here."""
    reward_many(batch.to_reward)


def _ignore(event: dict, obj: dict, batch: Batch):
    return "ignored", IGNORED, None, []


def _waiting(keys: list[str | None]):
    keys = [key for key in keys if key]
    if not keys:
        return "ignored", "The event names no payment intent or invoice to apply it to.", \
            None, []
    return ("waiting", f"Waiting for the purchase {keys[0]} to be recorded.", keys[0], keys)


# --- purchases -----------------------------------------------------------------------------

def _program(obj: dict, batch: Batch):
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    slug = metadata.get("program")
    slug = slug if isinstance(slug, str) and slug else None
    if slug not in batch.programs:
        batch.programs[slug] = get_program(slug) if slug else default_program()
    program = batch.programs[slug]
    if program is None:
        raise ServiceError("No program is set up to record Stripe purchases.")
    return program


def _promotion_code(obj: dict, metadata: dict) -> str | None:
    discounts = obj.get("discounts") if isinstance(obj.get("discounts"), list) else []
    legacy = obj.get("discount")
    for discount in [*discounts, *([legacy] if isinstance(legacy, dict) else [])]:
        if not isinstance(discount, dict):
            continue  # a bare discount id ("di_...") says nothing about its code
        code = discount.get("promotion_code")
        if isinstance(code, dict):
            code = code.get("code") or code.get("id")
        elif isinstance(code, str) and code.startswith("promo_") and stripe_gateway.configured():
            code = stripe_gateway.promotion_code(code)
        if isinstance(code, str) and code:
            return code
    code = metadata.get("promotion_code")
    return code if isinstance(code, str) and code else None


def _links(program, obj: dict, metadata: dict) -> tuple[tuple[str, str, str], ...]:
    links = []
    reference = obj.get("client_reference_id")
    if isinstance(reference, str) and reference:
        is_visitor = db.session.scalar(select(Click.id).filter_by(
            program_id=program.id, visitor_id=reference[:64]).limit(1)) is not None
        links.append(("client_reference_id", "visitor" if is_visitor else "code", reference))
    code = metadata.get("referral_code")
    if isinstance(code, str) and code:
        links.append(("metadata", "code", code))
    promotion = _promotion_code(obj, metadata)
    if promotion:
        links.append(("promotion_code", "code", promotion))
    return tuple(links)


def _card_fingerprint(obj: dict) -> str | None:
    details = obj.get("payment_method_details")
    card = details.get("card") if isinstance(details, dict) else None
    fingerprint = card.get("fingerprint") if isinstance(card, dict) else None
    return fingerprint if isinstance(fingerprint, str) and fingerprint else None


def _purchase(event: dict, obj: dict, batch: Batch):
    kind = event["type"]
    if kind == "checkout.session.completed" and obj.get("payment_status") != "paid":
        # An asynchronous payment: checkout.session.async_payment_succeeded will follow.
        return "ignored", "Waiting for payment: the session is not paid yet.", None, []
    session = kind.startswith("checkout.session.")
    order_id, payment_intent, invoice_id = _purchase_keys(kind, obj)
    keys = [order_id, payment_intent, invoice_id]
    amount = obj.get("amount_total") if session else obj.get("amount_paid")
    currency = obj.get("currency")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return "ignored", "Nothing was paid, so there is no purchase to record.", order_id, []
    if not isinstance(currency, str) or len(currency) != 3:
        raise BadEvent("The purchase has no valid currency.", field="currency")
    existing = _stripe_conversion(keys) if batch.may_be_recorded(keys) else None
    if existing is not None:
        return ("processed", f"The purchase {existing.order_id} was already recorded.",
                existing.order_id, keys)
    details = obj.get("customer_details") if isinstance(obj.get("customer_details"), dict) \
        else {}
    email = details.get("email") or obj.get("customer_email")
    name = details.get("name") or obj.get("customer_name")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    program = _program(obj, batch)
    # No customer had this email when the batch looked (and none was added since by it).
    unknown = isinstance(email, str) and (program.id, normalise_email(email)) in \
        batch.absent_emails
    new = NewConversion(
        order_id=order_id, amount=amount, currency=currency.lower(),
        occurred_at=datetime.fromtimestamp(event["created"], UTC),
        external_id=None, email=email if isinstance(email, str) else None,
        name=name if isinstance(name, str) else None,
        card_fingerprint=_card_fingerprint(obj),
        stripe_customer_id=_id(obj.get("customer")),
        links=_links(program, obj, metadata),
        email_unknown=unknown,
    )
    digest = request_hash({"order_id": order_id, "amount": amount,
                           "currency": currency.lower()})
    try:
        # In this transaction, which has found no purchase for these keys; the rewards
        # are computed once it has committed.
        result = record_conversion(program, new, source="stripe", digest=digest,
                                   commit=False, known_new=True)
    except Conflict:
        existing = _stripe_conversion(keys)
        if existing is None:
            raise
        return ("processed", f"The purchase {existing.order_id} was already recorded.",
                existing.order_id, keys)
    conversion = result.conversion
    if unknown:  # the buyer is added now: another purchase by them looks them up
        batch.absent_emails.discard((program.id, normalise_email(email)))
    if result.created and conversion.referrer_id is not None:
        batch.to_reward.append(conversion.id)
    via = f" (matched by {conversion.matched_via})" if conversion.matched_via else ""
    outcome = (f"Recorded the purchase {order_id} of "
               f"{format_money(amount, conversion.currency)}{via}: {conversion.reason}")
    return "processed", outcome, order_id, keys


# --- refunds -------------------------------------------------------------------------------

def _charge_refunded(event: dict, obj: dict, batch: Batch):
    keys = [_id(obj.get("payment_intent")), _id(obj.get("invoice"))]
    conversion = _stripe_conversion(keys)
    if conversion is None:
        return _waiting(keys)
    charge_id = _id(obj.get("id")) or "charge"
    refunded = obj.get("amount_refunded")
    if isinstance(refunded, bool) or not isinstance(refunded, int) or refunded < 0:
        raise BadEvent("The charge has no valid amount_refunded.", field="amount_refunded")
    # amount_refunded is cumulative: what is new is what exceeds what is recorded, so a
    # repeat or an older event refunds nothing more.
    amount = min(refunded, conversion.amount) - conversion.refunded_amount
    if amount <= 0:
        return ("processed", f"Nothing more to refund on {conversion.order_id}: "
                f"{format_money(conversion.refunded_amount, conversion.currency)} "
                "is already refunded.", conversion.order_id, keys)
    record_refund(conversion, amount, external_id=f"{charge_id}:{refunded}", commit=False)
    return ("processed", f"Refunded {format_money(amount, conversion.currency)} of the "
            f"purchase {conversion.order_id}.", conversion.order_id, keys)


# --- disputes ------------------------------------------------------------------------------

def _dispute_keys(obj: dict) -> list[str | None]:
    charge = obj.get("charge")
    return [_id(obj.get("payment_intent")),
            _id(charge.get("payment_intent")) if isinstance(charge, dict) else None,
            _id(charge.get("invoice")) if isinstance(charge, dict) else None]


def _dispute_row(dispute_id: str, conversion: Conversion, amount, status: str) -> Dispute:
    """The dispute, inserted with `status` unless it exists (insert ... on conflict do
    nothing). Flushed, not committed."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    amount = amount if isinstance(amount, int) and not isinstance(amount, bool) else 0
    db.session.execute(
        insert(Dispute)
        .values(dispute_id=dispute_id, conversion_id=conversion.id, status=status,
                amount=amount, created_at=utcnow(),
                closed_at=utcnow() if status != "open" else None)
        .on_conflict_do_nothing(index_elements=["dispute_id"]))
    dispute = db.session.scalar(select(Dispute).filter_by(dispute_id=dispute_id))
    db.session.refresh(dispute)
    return dispute


def _dispute_created(event: dict, obj: dict, batch: Batch):
    keys = _dispute_keys(obj)
    conversion = _stripe_conversion(keys)
    if conversion is None:
        return _waiting(keys)
    dispute_id = _id(obj.get("id"))
    if dispute_id is None:
        raise BadEvent("The dispute has no id.", field="id")
    dispute = _dispute_row(dispute_id, conversion, obj.get("amount"), "open")
    if dispute.status != "open":
        return ("processed", f"The dispute {dispute_id} was already closed ({dispute.status}).",
                conversion.order_id, keys)
    held = holds.hold_purchase(conversion.id)
    return ("processed", f"The dispute {dispute_id} on {conversion.order_id} is open: "
            f"{held} reward(s) put on hold.", conversion.order_id, keys)


def _dispute_closed(event: dict, obj: dict, batch: Batch):
    status = obj.get("status")
    closed = {"won": "won", "warning_closed": "won", "lost": "lost"}.get(status)
    if closed is None:
        return "ignored", f"The dispute is not closed (its status is {status}).", None, []
    keys = _dispute_keys(obj)
    conversion = _stripe_conversion(keys)
    if conversion is None:
        return _waiting(keys)
    dispute_id = _id(obj.get("id"))
    if dispute_id is None:
        raise BadEvent("The dispute has no id.", field="id")
    dispute = _dispute_row(dispute_id, conversion, obj.get("amount"), closed)
    if dispute.status == "open":
        db.session.execute(
            update(Dispute).where(Dispute.id == dispute.id, Dispute.status == "open")
            .values(status=closed, closed_at=utcnow())
            .execution_options(synchronize_session=False))
        db.session.refresh(dispute)
    if dispute.status == "won":
        released = holds.release_purchase(conversion.id)
        return ("processed", f"The dispute {dispute_id} on {conversion.order_id} was won: "
                f"{released} reward(s) released.", conversion.order_id, keys)
    # Lost: what remains of the purchase is taken back like a refund (once, by dispute id).
    db.session.refresh(conversion)
    done = db.session.scalar(select(Refund.id).filter_by(conversion_id=conversion.id,
                                                          external_id=dispute_id))
    remaining = conversion.amount - conversion.refunded_amount
    if done is None and remaining > 0:
        record_refund(conversion, remaining, external_id=dispute_id, commit=False)
    return ("processed", f"The dispute {dispute_id} on {conversion.order_id} was lost: "
            "the purchase is taken back in full.", conversion.order_id, keys)


# --- Connect -------------------------------------------------------------------------------

def _account_updated(event: dict, obj: dict, batch: Batch):
    customer = accounts.account_updated(obj, commit=False)
    if customer is None:
        return "processed", f"The account {_id(obj.get('id'))} is not a referrer's.", None, []
    state = "can" if customer.stripe_account_ready else "cannot yet"
    return ("processed", f"Customer #{customer.id}'s Stripe account {state} receive payouts.",
            None, [])


HANDLERS = {
    "checkout.session.completed": _purchase,
    "checkout.session.async_payment_succeeded": _purchase,
    "invoice.paid": _purchase,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
    "charge.dispute.closed": _dispute_closed,
    "account.updated": _account_updated,
}


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


# --- the batch job -------------------------------------------------------------------------

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
    reward = _hand_off if redis is not None and _postgresql() else None
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
