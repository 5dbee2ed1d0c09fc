"""What one transaction applying Stripe events gathers and shares: the batch's lookups,
its outcomes, and reading an event's ids, order keys and program."""

import contextlib
import json
from dataclasses import dataclass, field

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

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import CLAIMABLE_EVENT, FINAL_EVENT, Conversion, Customer, StripeEvent, utcnow
from rewards.people.customers import normalise_email
from rewards.people.programs import default_program, get_program

PURCHASES = ("checkout.session.completed", "checkout.session.async_payment_succeeded",
             "invoice.paid")


class BadEvent(ServiceError):
    code = "bad_event"


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
    # The order keys of the batch's purchase events looked up at the start (`prefetch`),
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


def write_outcomes(batch: Batch) -> None:
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


def ref_id(value) -> str | None:
    """A Stripe reference: an id string, or an expanded object's id."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def stripe_conversion(keys) -> Conversion | None:
    keys = [key for key in keys if key]
    if not keys:
        return None
    # Read afresh: another transaction may have changed it since this one last read it.
    return db.session.scalar(select(Conversion).where(
        Conversion.source == "stripe", Conversion.order_id.in_(keys)).order_by(Conversion.id)
        .limit(1).execution_options(populate_existing=True))


def purchase_keys(kind: str, obj: dict) -> tuple[str | None, str | None, str | None]:
    """A purchase event's (order id, payment intent, invoice id)."""
    session = kind.startswith("checkout.session.")
    invoice_id = ref_id(obj.get("invoice")) if session else ref_id(obj.get("id"))
    payment_intent = ref_id(obj.get("payment_intent"))
    return payment_intent or invoice_id or ref_id(obj.get("id")), payment_intent, invoice_id


def data_object(payload: str) -> dict | None:
    event = json.loads(payload)
    data = event.get("data") if isinstance(event, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else None


def buyer_email(obj: dict) -> str | None:
    details = obj.get("customer_details") if isinstance(obj.get("customer_details"), dict) \
        else {}
    email = details.get("email") or obj.get("customer_email")
    return email if isinstance(email, str) else None


def program_of(obj: dict, batch: Batch):
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    slug = metadata.get("program")
    slug = slug if isinstance(slug, str) and slug else None
    if slug not in batch.programs:
        batch.programs[slug] = get_program(slug) if slug else default_program()
    program = batch.programs[slug]
    if program is None:
        raise ServiceError("No program is set up to record Stripe purchases.")
    return program


def _prefetch_buyers(wanted: set[tuple[int, str]], batch: Batch) -> None:
    """Which of the batch's buyers' emails no customer of their program has: one query."""
    if not wanted:
        return
    if on_postgresql():
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


def prefetch(rows: list[StripeEvent], batch: Batch) -> None:
    """Which of the batch's purchases are recorded already, and which of their buyers'
    emails no customer has: one query for each rather than one per event."""
    keys = set()
    buyers = set()
    for row in rows:
        if row.type in PURCHASES:
            with contextlib.suppress(ValueError):  # a bad payload fails when applied
                obj = data_object(row.payload)
                keys.update(key for key in purchase_keys(row.type, obj or {}) if key)
                email = normalise_email(buyer_email(obj or {}))
                if email and not ref_id((obj or {}).get("customer")):
                    with contextlib.suppress(ServiceError):  # no program: fails when applied
                        buyers.add((program_of(obj, batch).id, email))
    _prefetch_buyers(buyers, batch)
    if not keys:
        return
    if on_postgresql():
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


def on_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def waiting(keys: list[str | None]):
    keys = [key for key in keys if key]
    if not keys:
        return "ignored", "The event names no payment intent or invoice to apply it to.", \
            None, []
    return ("waiting", f"Waiting for the purchase {keys[0]} to be recorded.", keys[0], keys)
