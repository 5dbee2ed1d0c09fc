"""Fraud signals on referrals, and the browsers and networks customers sign in from."""

from sqlalchemy import CheckConstraint, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rewards.extensions import db
from rewards.models.types import UTCDateTime, in_list, utcnow

SIGNAL_STATUSES = ("open", "cleared", "rejected")


class FraudSignal(db.Model):
    """A reason to look twice at a referral. Signals flag, they do not block: the
    referral's rewards wait on hold until a coordinator clears or rejects them."""

    __tablename__ = "fraud_signals"
    __table_args__ = (
        CheckConstraint(in_list("status", SIGNAL_STATUSES), name="status"),
        UniqueConstraint("referral_id", "kind", "conversion_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    conversion_id: Mapped[int | None] = mapped_column(ForeignKey("conversions.id"))
    # The conversion id, or 0 for signals raised at signup (NULLs are never equal).
    conversion_key: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(db.String(32))
    detail: Mapped[str] = mapped_column(db.String(400))
    status: Mapped[str] = mapped_column(db.String(16), default="open")
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    resolved_at = mapped_column(UTCDateTime)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    referral = relationship("Referral")


class KnownVisitor(db.Model):
    """A visitor id (and hashed IP) seen on a signed-in customer's browser, so that a
    'friend' signing up from the referrer's own browser or network can be flagged."""

    __tablename__ = "known_visitors"
    __table_args__ = (UniqueConstraint("customer_id", "visitor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    visitor_id: Mapped[str] = mapped_column(db.String(32), index=True)
    ip_hash: Mapped[str | None] = mapped_column(db.String(32), index=True)
    seen_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
