"""Payouts and their approvals: one live payout per customer and currency, paid once."""

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rewards.extensions import db
from rewards.models.types import BigId, UTCDateTime, in_list, utcnow

# A payout's states (DESIGN.md, States); needs_attention: the customer must act first.
PAYOUT_STATUSES = ("awaiting_approval", "approved", "processing", "paid", "failed",
                   "needs_attention", "rejected")
# At most one of these per customer and currency at a time.
LIVE_PAYOUT = ("awaiting_approval", "approved", "processing", "failed", "needs_attention")
# Stuck payouts: a coordinator may send them again (-> approved).
RETRYABLE_PAYOUT = ("failed", "needs_attention")
# What a coordinator may still reject: not yet on its way to the customer.
REJECTABLE_PAYOUT = ("awaiting_approval", *RETRYABLE_PAYOUT)
PAYOUT_METHODS = ("connect", "store_credit", "manual")


class Payout(db.Model):
    """A customer's available rewards in one currency, less clawbacks owed, to be paid once."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("netted >= 0 AND gross = amount + netted", name="netting"),
        CheckConstraint(in_list("status", PAYOUT_STATUSES), name="status"),
        CheckConstraint(in_list("method", PAYOUT_METHODS), name="method"),
        Index("uq_payouts_one_live", "customer_id", "currency", unique=True,
              sqlite_where=text(in_list("status", LIVE_PAYOUT)),
              postgresql_where=text(in_list("status", LIVE_PAYOUT))),
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
