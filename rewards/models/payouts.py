"""Payouts, their approvals, fraud signals and the staff audit log."""

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rewards.extensions import db
from rewards.models.types import BigId, UTCDateTime, utcnow

PAYOUT_STATUSES = ("awaiting_approval", "approved", "processing", "paid", "failed",
                   "needs_attention", "rejected")
# At most one of these per customer and currency at a time.
LIVE_PAYOUT = ("awaiting_approval", "approved", "processing", "failed", "needs_attention")
PAYOUT_METHODS = ("connect", "store_credit", "manual")
_LIVE_SQL = "status IN ('awaiting_approval', 'approved', 'processing', 'failed', " \
            "'needs_attention')"


class Payout(db.Model):
    """A customer's available rewards in one currency, less clawbacks owed, to be paid once."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("netted >= 0 AND gross = amount + netted", name="netting"),
        CheckConstraint(
            "status IN ('awaiting_approval', 'approved', 'processing', 'paid', 'failed', "
            "'needs_attention', 'rejected')", name="status"),
        CheckConstraint("method IN ('connect', 'store_credit', 'manual')", name="method"),
        Index("uq_payouts_one_live", "customer_id", "currency", unique=True,
              sqlite_where=text(_LIVE_SQL), postgresql_where=text(_LIVE_SQL)),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(db.String(3))
    gross: Mapped[int] = mapped_column(BigInteger)  # the rewards inside
    netted: Mapped[int] = mapped_column(BigInteger, default=0)  # clawbacks taken from it
    amount: Mapped[int] = mapped_column(BigInteger)  # what is sent
    method: Mapped[str] = mapped_column(db.String(16))
    status: Mapped[str] = mapped_column(db.String(20), default="awaiting_approval")
    # Stored before Stripe is called, so a retry sends the same key: payout-<id>.
    idempotency_key: Mapped[str | None] = mapped_column(db.String(64), unique=True)
    # The Stripe transfer or balance transaction; one per payout.
    stripe_object_id: Mapped[str | None] = mapped_column(db.String(64), unique=True)
    reference: Mapped[str | None] = mapped_column(db.String(200))
    needs_two_approvals: Mapped[bool] = mapped_column(default=False)
    failure_reason: Mapped[str | None] = mapped_column(db.String(400))
    rejection_reason: Mapped[str | None] = mapped_column(db.String(400))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    approved_at = mapped_column(UTCDateTime)
    # When a send last began: a payout left processing long after it died is resumed.
    last_attempt_at = mapped_column(UTCDateTime)
    paid_at = mapped_column(UTCDateTime)

    customer = relationship("Customer")
    program = relationship("Program")
    approvals = relationship("PayoutApproval", order_by="PayoutApproval.id")


class PayoutApproval(db.Model):
    """One coordinator's approval. Unique per person: maker-checker needs two people."""

    __tablename__ = "payout_approvals"
    __table_args__ = (UniqueConstraint("payout_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payout_id: Mapped[int] = mapped_column(BigId, ForeignKey("payouts.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    account = relationship("Account")


class FraudSignal(db.Model):
    """A reason to look twice at a referral. Signals flag, they do not block: the
    referral's rewards wait on hold until a coordinator clears or rejects them."""

    __tablename__ = "fraud_signals"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'cleared', 'rejected')", name="status"),
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


class AuditEntry(db.Model):
    """Who did what to which record, with the record before and after (JSON)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    action: Mapped[str] = mapped_column(db.String(40), index=True)
    subject: Mapped[str] = mapped_column(db.String(80), index=True)  # e.g. "payout:12"
    before: Mapped[str | None] = mapped_column(db.Text)
    after: Mapped[str | None] = mapped_column(db.Text)
    note: Mapped[str | None] = mapped_column(db.String(400))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)

    account = relationship("Account")
