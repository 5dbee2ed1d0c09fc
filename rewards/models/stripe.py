"""Stripe's events as received, and the disputes they report."""

from sqlalchemy import CheckConstraint, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from rewards.extensions import db
from rewards.models.types import BigId, UTCDateTime, in_list, utcnow

EVENT_STATUSES = ("received", "processed", "ignored", "waiting", "failed")
# What a processing transaction may claim and apply; processed and ignored are final.
CLAIMABLE_EVENT = ("received", "waiting", "failed")
FINAL_EVENT = ("processed", "ignored")
DISPUTE_STATUSES = ("open", "won", "lost")


class StripeEvent(db.Model):
    """One Stripe event, stored once (unique on Stripe's event id) before it is answered.

    received -> processed | ignored | failed; a refund or dispute that arrives before its
    purchase is `waiting` until the purchase is recorded.
    """

    __tablename__ = "stripe_events"
    __table_args__ = (
        CheckConstraint(in_list("status", EVENT_STATUSES), name="status"),
        Index("ix_stripe_events_status", "status", "received_at"),
        # The batch claim's query (`process_received`): the received events, oldest first.
        # Partial, so it holds only the events still to apply, however many are done.
        Index("ix_stripe_events_received", "received_at", "id",
              postgresql_where=text("status = 'received'"),
              sqlite_where=text("status = 'received'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(db.String(64), unique=True)
    type: Mapped[str] = mapped_column(db.String(64))
    created: Mapped[int]  # Stripe's own timestamp, seconds since the epoch
    payload: Mapped[str] = mapped_column(db.Text)
    status: Mapped[str] = mapped_column(db.String(16), default="received")
    # The order (payment intent or invoice id) the event is about, when it has one.
    order_id: Mapped[str | None] = mapped_column(db.String(128), index=True)
    outcome: Mapped[str | None] = mapped_column(db.String(400))
    attempts: Mapped[int] = mapped_column(default=0)
    received_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    processed_at = mapped_column(UTCDateTime)


class Dispute(db.Model):
    """A card dispute on a purchase: its rewards are held while it is open."""

    __tablename__ = "disputes"
    __table_args__ = (
        CheckConstraint(in_list("status", DISPUTE_STATUSES), name="status"),
        UniqueConstraint("dispute_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[str] = mapped_column(db.String(64))
    conversion_id: Mapped[int] = mapped_column(ForeignKey("conversions.id"), index=True)
    status: Mapped[str] = mapped_column(db.String(8), default="open")
    amount: Mapped[int]
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    closed_at = mapped_column(UTCDateTime)
