"""A referral program: its currency, attribution rules and the friend's landing page."""

from sqlalchemy import BigInteger, CheckConstraint, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from rewards.extensions import db
from rewards.models.types import UTCDateTime, in_list, utcnow

ATTRIBUTION_MODELS = ("last", "first")
PAYOUT_SCHEDULES = ("on_demand", "weekly", "monthly")


class Program(db.Model):
    __tablename__ = "programs"
    __table_args__ = (
        CheckConstraint("window_days BETWEEN 1 AND 365", name="window_days"),
        CheckConstraint(in_list("attribution", ATTRIBUTION_MODELS), name="attribution"),
        CheckConstraint(in_list("payout_schedule", PAYOUT_SCHEDULES), name="payout_schedule"),
        CheckConstraint("payout_minimum >= 0", name="payout_minimum"),
        # At most one default program.
        Index(
            "uq_programs_one_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(db.String(64), unique=True)
    name: Mapped[str] = mapped_column(db.String(120))
    currency: Mapped[str] = mapped_column(db.String(3))
    window_days: Mapped[int] = mapped_column(default=30)
    attribution: Mapped[str] = mapped_column(db.String(8), default="last")
    landing_headline: Mapped[str] = mapped_column(db.String(200), default="")
    landing_offer: Mapped[str] = mapped_column(db.Text, default="")
    destination_url: Mapped[str | None] = mapped_column(db.String(500))
    allowed_domain: Mapped[str | None] = mapped_column(db.String(253))
    is_default: Mapped[bool] = mapped_column(default=False)
    payout_schedule: Mapped[str] = mapped_column(db.String(16), default="on_demand",
                                                 server_default="on_demand")
    payout_minimum: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Payouts above this amount need a second, different coordinator (maker-checker).
    second_approval_above: Mapped[int | None] = mapped_column(BigInteger)
    # More signups than this on one code within an hour raise a velocity signal.
    velocity_limit: Mapped[int] = mapped_column(default=10, server_default="10")
    last_proposed_at = mapped_column(UTCDateTime)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    def __repr__(self) -> str:
        return f"<Program {self.slug}>"
