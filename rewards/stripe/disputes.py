"""Card disputes: an open dispute holds its purchase's rewards; won releases them, lost
takes the purchase back like a refund."""


from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from rewards.extensions import db
from rewards.ledger import holds
from rewards.ledger.refunds import record_refund
from rewards.models import Conversion, Dispute, Refund, utcnow
from rewards.stripe.batch import BadEvent, Batch, ref_id, stripe_conversion, waiting


def _dispute_keys(obj: dict) -> list[str | None]:
    charge = obj.get("charge")
    return [ref_id(obj.get("payment_intent")),
            ref_id(charge.get("payment_intent")) if isinstance(charge, dict) else None,
            ref_id(charge.get("invoice")) if isinstance(charge, dict) else None]


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


def _disputed(obj: dict, status: str):
    """(order keys, the purchase or None, the dispute row inserted with `status` unless it
    exists)."""
    keys = _dispute_keys(obj)
    conversion = stripe_conversion(keys)
    if conversion is None:
        return keys, None, None
    dispute_id = ref_id(obj.get("id"))
    if dispute_id is None:
        raise BadEvent("The dispute has no id.", field="id")
    return keys, conversion, _dispute_row(dispute_id, conversion, obj.get("amount"), status)


def dispute_created(event: dict, obj: dict, batch: Batch):
    keys, conversion, dispute = _disputed(obj, "open")
    if conversion is None:
        return waiting(keys)
    dispute_id = dispute.dispute_id
    if dispute.status != "open":
        return ("processed", f"The dispute {dispute_id} was already closed ({dispute.status}).",
                conversion.order_id, keys)
    held = holds.hold_purchase(conversion.id)
    return ("processed", f"The dispute {dispute_id} on {conversion.order_id} is open: "
            f"{held} reward(s) put on hold.", conversion.order_id, keys)


def dispute_closed(event: dict, obj: dict, batch: Batch):
    status = obj.get("status")
    closed = {"won": "won", "warning_closed": "won", "lost": "lost"}.get(status)
    if closed is None:
        return "ignored", f"The dispute is not closed (its status is {status}).", None, []
    keys, conversion, dispute = _disputed(obj, closed)
    if conversion is None:
        return waiting(keys)
    dispute_id = dispute.dispute_id
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
