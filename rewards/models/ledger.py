"""The rewards ledger: reward lines, their adjustments, refunds and balances.

A reward is a ledger line whose `amount` never changes. Refunds before payment are
negative `reversal` adjustments (the reward's `reversed_amount` keeps their running sum,
which check-ledger verifies); after payment they are negative `clawback` adjustments that
are owed back and netted from later payouts. `balances` holds each customer's totals per
currency and status, kept in step in the same transaction as every line change.
"""

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rewards.extensions import db
from rewards.models.types import BigId, UTCDateTime, in_list, utcnow

# A reward's states (DESIGN.md, States): pending -> available -> in_payout -> paid;
# pending|available -> on_hold -> back, or -> reversed (refund) or rejected (coordinator).
REWARD_STATUSES = ("pending", "available", "on_hold", "in_payout", "paid", "reversed",
                   "rejected")
# Live lines: they count toward a referrer's history and limits and toward reward cost, and
# each has a balance column holding its net amount; reversed and rejected ones count for nothing.
LIVE_REWARDS = ("pending", "available", "on_hold", "in_payout", "paid")
BALANCE_COLUMNS = LIVE_REWARDS
# What a hold (a fraud signal, a card dispute) takes; it remembers which in `held_from`.
HOLDABLE = ("pending", "available")
# Not yet in a payout: a refund reverses these; it claws back the paid ones.
UNPAID_REWARDS = ("pending", "available", "on_hold")
PAID_REWARDS = ("in_payout", "paid")
ADJUSTMENT_KINDS = ("reversal", "clawback")
ADJUSTMENT_STATUSES = ("applied", "owed", "netted")


class Reward(db.Model):
    __tablename__ = "rewards"
    __table_args__ = (
        # One reward per (purchase, beneficiary, rule): racing jobs produce one.
        UniqueConstraint("conversion_id", "customer_id", "rule"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("reversed_amount >= 0 AND reversed_amount <= amount",
                        name="reversed_within_amount"),
        CheckConstraint(in_list("status", REWARD_STATUSES), name="status"),
        Index("ix_rewards_due", "status", "available_at"),
        Index("ix_rewards_day", "program_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    conversion_id: Mapped[int] = mapped_column(ForeignKey("conversions.id"), index=True)
    friend_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    role: Mapped[str] = mapped_column(db.String(16))
    rule: Mapped[str] = mapped_column(db.String(64))
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    reversed_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(db.String(3))
    status: Mapped[str] = mapped_column(db.String(16))
    # Where an on_hold reward goes back to when the hold is lifted.
    held_from: Mapped[str | None] = mapped_column(db.String(16))
    explanation: Mapped[str] = mapped_column(db.String(400))
    occurred_at = mapped_column(UTCDateTime, nullable=False)  # the purchase's time
    available_at = mapped_column(UTCDateTime, nullable=False)
    paid_amount: Mapped[int | None] = mapped_column(BigInteger)
    paid_at = mapped_column(UTCDateTime)
    payout_id: Mapped[int | None] = mapped_column(BigId, index=True)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    policy_version = relationship("PolicyVersion")
    conversion = relationship("Conversion")
    customer = relationship("Customer", foreign_keys=[customer_id])
    friend = relationship("Customer", foreign_keys=[friend_id])

    @property
    def net_amount(self) -> int:
        return self.amount - self.reversed_amount


class Adjustment(db.Model):
    """A negative ledger line against a reward: a reversal before payment or a clawback after."""

    __tablename__ = "adjustments"
    __table_args__ = (
        CheckConstraint("amount < 0", name="amount_negative"),
        CheckConstraint(in_list("kind", ADJUSTMENT_KINDS), name="kind"),
        CheckConstraint(in_list("status", ADJUSTMENT_STATUSES), name="status"),
        # A refund is applied to a reward once.
        UniqueConstraint("reward_id", "refund_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reward_id: Mapped[int] = mapped_column(BigId, ForeignKey("rewards.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds.id"))
    kind: Mapped[str] = mapped_column(db.String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(db.String(3))
    # reversal: applied; clawback: owed until a payout nets it, then netted.
    status: Mapped[str] = mapped_column(db.String(16))
    explanation: Mapped[str] = mapped_column(db.String(400))
    payout_id: Mapped[int | None] = mapped_column(BigId)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    reward = relationship("Reward")


class Refund(db.Model):
    """A refund of a purchase, full or partial; `cumulative` is the total refunded so far."""

    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("conversion_id", "external_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversion_id: Mapped[int] = mapped_column(ForeignKey("conversions.id"), index=True)
    external_id: Mapped[str] = mapped_column(db.String(128))
    amount: Mapped[int] = mapped_column(BigInteger)
    cumulative: Mapped[int] = mapped_column(BigInteger)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Balance(db.Model):
    """A customer's totals in one currency, by status; `owed` is clawbacks not yet netted."""

    __tablename__ = "balances"
    __table_args__ = (UniqueConstraint("customer_id", "currency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(db.String(3))
    pending: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    on_hold: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    available: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    in_payout: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    paid: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    owed: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))

    def as_dict(self) -> dict:
        return {column: getattr(self, column) for column in (*BALANCE_COLUMNS, "owed")}
