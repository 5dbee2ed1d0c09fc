"""Stripe's events: stored once on intake, processed by a job, idempotently.

`ingest` stores an event (insert-or-nothing on Stripe's event id) and commits; the webhook
answers once it is stored. `process` applies a stored event, and is safe to run twice or
concurrently: the work it does is idempotent by itself (a purchase is unique per order id,
a refund per external id, a dispute per dispute id, and ledger moves are compare-and-set),
and its status moves with a compare-and-set from received, waiting or failed to the
outcome (processed, ignored, waiting or failed), so processed and ignored are final.

Events can come in any order. A refund or dispute whose purchase is not recorded yet waits
(`waiting`, with the order id it needs); recording the purchase processes them, oldest
first by Stripe's `created`. Every order of the same events ends in the same state.

Attribution of a Stripe purchase, in this order (the link that matched is recorded in
`Conversion.matched_via`): `client_reference_id` (a visitor id when the program has clicks
with that visitor id, otherwise a referral code), `metadata.referral_code`, the promotion
code used, the buyer's Stripe customer id (a known customer whose signup was referred),
the buyer's email (likewise). About promotion codes: an event only carries the promotion
code's id (`promo_...`) unless it was expanded, and fetching its text would mean calling
Stripe while processing. So the value taken is, from the first discount that has one,
`discounts[].promotion_code` (its `code` when expanded to an object, else the value as it
is), then `metadata.promotion_code`, and it is looked up as a referral code. A business
whose Stripe promotion codes are the referral codes should expand them, or put the code in
the metadata.
"""

import json
import logging
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import Click, Conversion, Dispute, Refund, Reward, StripeEvent, utcnow
from ..money import format_money
from . import ledger
from .conversions import NewConversion, record_conversion, request_hash
from .errors import Conflict, ServiceError
from .fraud import _verdict, has_open_dispute
from .programs import default_program, get_program
from .refunds import record_refund

log = logging.getLogger(__name__)

CLAIMABLE = ("received", "waiting", "failed")
PURCHASES = ("checkout.session.completed", "checkout.session.async_payment_succeeded",
             "invoice.paid")
HOLDABLE = ("pending", "available")
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


def ingest(event: dict) -> tuple[StripeEvent, bool]:
    """Store the event unless an event with its id is stored (insert ... on conflict do
    nothing), and commit. Returns the stored row and whether it is new."""
    event = _check_event(event)
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    new_id = db.session.execute(
        insert(StripeEvent)
        .values(event_id=event["id"], type=event["type"], created=event["created"],
                payload=json.dumps(event, separators=(",", ":")), status="received",
                attempts=0, received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(StripeEvent.id)
    ).scalar()
    db.session.commit()
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
    return db.session.scalar(select(Conversion).where(
        Conversion.source == "stripe", Conversion.order_id.in_(keys)).order_by(Conversion.id)
        .limit(1))


def _finish(row_id: int, status: str, outcome: str, order_id: str | None = None, *,
            failed: bool = False) -> bool:
    """Compare-and-set the event from a claimable status to its outcome; commits."""
    values = {"status": status, "outcome": outcome[:400]}
    if status in ("processed", "ignored"):
        values["processed_at"] = utcnow()
    if order_id:
        values["order_id"] = order_id[:128]
    if failed:
        values["attempts"] = StripeEvent.attempts + 1
    changed = db.session.execute(
        update(StripeEvent)
        .where(StripeEvent.id == row_id, StripeEvent.status.in_(CLAIMABLE))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return changed == 1


def process(event_row_id: int, *, _again: bool = True) -> str:
    """Apply a stored event once; returns its status. Never raises for a bad event: a
    failure is recorded (status failed, the error in `outcome`, attempts + 1)."""
    row = db.session.get(StripeEvent, event_row_id)
    if row is None:
        db.session.rollback()
        return "missing"
    db.session.refresh(row)
    if row.status not in CLAIMABLE:
        status = row.status
        db.session.rollback()
        return status
    kind = row.type
    try:
        event = json.loads(row.payload)
        data = event.get("data") if isinstance(event, dict) else None
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            raise BadEvent("The event has no data object.")
        status, outcome, order_id, keys = HANDLERS.get(kind, _ignore)(event, obj)
    except Exception as error:  # recorded on the event; the sweep retries it
        db.session.rollback()
        log.warning("stripe event %s (%s) failed: %s", row.event_id, kind, error)
        message = error.message if isinstance(error, ServiceError) else str(error)
        _finish(event_row_id, "failed",
                f"Failed: {type(error).__name__}: {message}".strip(), failed=True)
        return "failed"
    _finish(event_row_id, status, outcome, order_id)
    if kind in PURCHASES and status == "processed":
        _process_waiting(keys)
    elif status == "waiting" and _again and _stripe_conversion(keys) is not None:
        # The purchase was recorded while this event was found waiting: apply it now.
        db.session.rollback()
        return process(event_row_id, _again=False)
    db.session.rollback()
    return status


def _process_waiting(keys: list[str]) -> int:
    """Process the refunds and disputes that waited for this purchase, oldest first."""
    keys = [key for key in keys if key]
    waiting = db.session.scalars(
        select(StripeEvent.id).where(StripeEvent.status == "waiting",
                                     StripeEvent.order_id.in_(keys))
        .order_by(StripeEvent.created, StripeEvent.id)).all()
    db.session.rollback()
    for row_id in waiting:
        process(row_id, _again=False)
    return len(waiting)


def _ignore(event: dict, obj: dict):
    return "ignored", IGNORED, None, []


def _waiting(keys: list[str | None]):
    keys = [key for key in keys if key]
    if not keys:
        return "ignored", "The event names no payment intent or invoice to apply it to.", \
            None, []
    return ("waiting", f"Waiting for the purchase {keys[0]} to be recorded.", keys[0], keys)


# --- purchases -----------------------------------------------------------------------------

def _program(obj: dict):
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    slug = metadata.get("program")
    if isinstance(slug, str) and slug:
        return get_program(slug)
    program = default_program()
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


def _purchase(event: dict, obj: dict):
    kind = event["type"]
    if kind == "checkout.session.completed" and obj.get("payment_status") != "paid":
        # An asynchronous payment: checkout.session.async_payment_succeeded will follow.
        return "ignored", "Waiting for payment: the session is not paid yet.", None, []
    session = kind.startswith("checkout.session.")
    invoice_id = _id(obj.get("invoice")) if session else _id(obj.get("id"))
    payment_intent = _id(obj.get("payment_intent"))
    order_id = payment_intent or invoice_id or _id(obj.get("id"))
    keys = [order_id, payment_intent, invoice_id]
    amount = obj.get("amount_total") if session else obj.get("amount_paid")
    currency = obj.get("currency")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return "ignored", "Nothing was paid, so there is no purchase to record.", order_id, []
    if not isinstance(currency, str) or len(currency) != 3:
        raise BadEvent("The purchase has no valid currency.", field="currency")
    existing = _stripe_conversion(keys)
    if existing is not None:
        return ("processed", f"The purchase {existing.order_id} was already recorded.",
                existing.order_id, keys)
    details = obj.get("customer_details") if isinstance(obj.get("customer_details"), dict) \
        else {}
    email = details.get("email") or obj.get("customer_email")
    name = details.get("name") or obj.get("customer_name")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    program = _program(obj)
    new = NewConversion(
        order_id=order_id, amount=amount, currency=currency.lower(),
        occurred_at=datetime.fromtimestamp(event["created"], UTC),
        external_id=None, email=email if isinstance(email, str) else None,
        name=name if isinstance(name, str) else None,
        card_fingerprint=_card_fingerprint(obj),
        stripe_customer_id=_id(obj.get("customer")),
        links=_links(program, obj, metadata),
    )
    digest = request_hash({"order_id": order_id, "amount": amount,
                           "currency": currency.lower()})
    try:
        conversion = record_conversion(program, new, source="stripe", digest=digest).conversion
    except Conflict:
        db.session.rollback()
        existing = _stripe_conversion(keys)
        if existing is None:
            raise
        return ("processed", f"The purchase {existing.order_id} was already recorded.",
                existing.order_id, keys)
    via = f" (matched by {conversion.matched_via})" if conversion.matched_via else ""
    outcome = (f"Recorded the purchase {order_id} of "
               f"{format_money(amount, conversion.currency)}{via}: {conversion.reason}")
    return "processed", outcome, order_id, keys


# --- refunds -------------------------------------------------------------------------------

def _charge_refunded(event: dict, obj: dict):
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
    record_refund(conversion, amount, external_id=f"{charge_id}:{refunded}")
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


def _lock_rewards(conversion: Conversion, statuses) -> list[Reward]:
    rewards = db.session.scalars(select(Reward).where(
        Reward.conversion_id == conversion.id, Reward.status.in_(statuses))
        .order_by(Reward.id)).all()
    for customer_id, currency in sorted({(r.customer_id, r.currency) for r in rewards}):
        ledger.lock_balance(customer_id, currency)
    for reward in rewards:
        db.session.refresh(reward)
    return [reward for reward in rewards if reward.status in statuses]


def _hold(conversion: Conversion) -> int:
    return sum(ledger.move(reward, "on_hold", from_=HOLDABLE, held_from=reward.status)
               for reward in _lock_rewards(conversion, HOLDABLE))


def _release(conversion: Conversion) -> int:
    """Held rewards go back exactly where they were (a reward whose hold ended meanwhile
    is made available by the sweep), unless a fraud signal or another dispute holds them."""
    if has_open_dispute(conversion.id):
        return 0
    if conversion.referral_id is not None and _verdict(conversion.referral_id) is not None:
        return 0
    return sum(ledger.move(reward, reward.held_from or "pending", from_="on_hold",
                           held_from=None)
               for reward in _lock_rewards(conversion, ("on_hold",)))


def _dispute_created(event: dict, obj: dict):
    keys = _dispute_keys(obj)
    conversion = _stripe_conversion(keys)
    if conversion is None:
        return _waiting(keys)
    dispute_id = _id(obj.get("id"))
    if dispute_id is None:
        raise BadEvent("The dispute has no id.", field="id")
    dispute = _dispute_row(dispute_id, conversion, obj.get("amount"), "open")
    if dispute.status != "open":
        db.session.commit()
        return ("processed", f"The dispute {dispute_id} was already closed ({dispute.status}).",
                conversion.order_id, keys)
    held = _hold(conversion)
    db.session.commit()
    return ("processed", f"The dispute {dispute_id} on {conversion.order_id} is open: "
            f"{held} reward(s) put on hold.", conversion.order_id, keys)


def _dispute_closed(event: dict, obj: dict):
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
    db.session.commit()
    if dispute.status == "won":
        released = _release(conversion)
        db.session.commit()
        return ("processed", f"The dispute {dispute_id} on {conversion.order_id} was won: "
                f"{released} reward(s) released.", conversion.order_id, keys)
    # Lost: what remains of the purchase is taken back like a refund (once, by dispute id).
    db.session.refresh(conversion)
    done = db.session.scalar(select(Refund.id).filter_by(conversion_id=conversion.id,
                                                          external_id=dispute_id))
    remaining = conversion.amount - conversion.refunded_amount
    if done is None and remaining > 0:
        record_refund(conversion, remaining, external_id=dispute_id)
    return ("processed", f"The dispute {dispute_id} on {conversion.order_id} was lost: "
            "the purchase is taken back in full.", conversion.order_id, keys)


# --- Connect -------------------------------------------------------------------------------

def _account_updated(event: dict, obj: dict):
    from .payout_methods import account_updated

    customer = account_updated(obj)
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
