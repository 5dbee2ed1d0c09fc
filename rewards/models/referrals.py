"""The attribution chain: codes, clicks, signups, referrals and conversions (purchases)."""

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rewards.extensions import db
from rewards.models.types import BigId, UTCDateTime, utcnow

# How an attribution was made, in the order they are tried.
MATCHED_BY = ("code", "visitor", "signup")


class ReferralCode(db.Model):
    __tablename__ = "referral_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    code: Mapped[str] = mapped_column(db.String(32))
    # The code folded to lower case: codes are unique ignoring case, across programs.
    code_key: Mapped[str] = mapped_column(db.String(32), unique=True)
    is_vanity: Mapped[bool] = mapped_column(default=False)
    is_primary: Mapped[bool] = mapped_column(default=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    customer = relationship("Customer")
    program = relationship("Program")


class Click(db.Model):
    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_visitor", "program_id", "visitor_id", "created_at"),
        Index("ix_clicks_day", "program_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Made when the link is followed, so a click queued in Redis is inserted only once.
    uid: Mapped[str] = mapped_column(db.String(32), unique=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    code_id: Mapped[int] = mapped_column(ForeignKey("referral_codes.id"), index=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    visitor_id: Mapped[str] = mapped_column(db.String(32))
    ip_hash: Mapped[str | None] = mapped_column(db.String(32))
    user_agent: Mapped[str | None] = mapped_column(db.String(300))
    referrer_host: Mapped[str | None] = mapped_column(db.String(253))
    channel: Mapped[str | None] = mapped_column(db.String(16))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Referral(db.Model):
    """A friend tied to the customer who referred them. A friend is referred once."""

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint("referrer_id <> friend_id", name="not_self"),
        Index("ix_referrals_day", "program_id", "created_at"),
        # A code's signups within the hour: the velocity signal's count.
        Index("ix_referrals_code_time", "code_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    referrer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    friend_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    code_id: Mapped[int | None] = mapped_column(ForeignKey("referral_codes.id"))
    click_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("clicks.id"))
    matched_by: Mapped[str] = mapped_column(db.String(16))
    reason: Mapped[str] = mapped_column(db.String(300))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    referrer = relationship("Customer", foreign_keys=[referrer_id])
    friend = relationship("Customer", foreign_keys=[friend_id])


class Signup(db.Model):
    """A customer's signup as reported by the site or the API, attributed or not."""

    __tablename__ = "signups"
    __table_args__ = (Index("ix_signups_day", "program_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"))
    visitor_id: Mapped[str | None] = mapped_column(db.String(32))
    source: Mapped[str] = mapped_column(db.String(16))
    reason: Mapped[str] = mapped_column(db.String(300))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    customer = relationship("Customer")
    referral = relationship("Referral")


class Conversion(db.Model):
    """A purchase. One per (source, order id); amounts in minor units."""

    __tablename__ = "conversions"
    __table_args__ = (
        UniqueConstraint("source", "order_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount BETWEEN 0 AND amount", name="refund_within_amount"),
        Index("ix_conversions_day", "program_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    source: Mapped[str] = mapped_column(db.String(16))
    order_id: Mapped[str] = mapped_column(db.String(128))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"))
    referrer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(db.String(3))
    occurred_at = mapped_column(UTCDateTime, nullable=False)
    matched_by: Mapped[str | None] = mapped_column(db.String(16))
    # For a Stripe purchase, the link of its chain that matched (client_reference_id,
    # metadata, promotion_code, stripe_customer, email), or "staff" when set by hand.
    matched_via: Mapped[str | None] = mapped_column(db.String(32))
    reason: Mapped[str] = mapped_column(db.String(300))
    # SHA-256 of the request body, to tell a replay from a conflicting reuse of an order id.
    request_hash: Mapped[str] = mapped_column(db.String(64))
    # Set, with a compare-and-set, by the job that computes the purchase's rewards.
    processed_at = mapped_column(UTCDateTime)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The payment card's fingerprint when Stripe gives one: the same card as the referrer's
    # raises a fraud signal.
    card_fingerprint: Mapped[str | None] = mapped_column(db.String(64), index=True)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    customer = relationship("Customer", foreign_keys=[customer_id])
    referrer = relationship("Customer", foreign_keys=[referrer_id])
