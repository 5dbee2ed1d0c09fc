"""A referral program: its currency, attribution rules and the friend's landing page."""

from sqlalchemy import CheckConstraint, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow

ATTRIBUTION_MODELS = ("last", "first")


class Program(db.Model):
    __tablename__ = "programs"
    __table_args__ = (
        CheckConstraint("window_days BETWEEN 1 AND 365", name="window_days"),
        CheckConstraint("attribution IN ('last', 'first')", name="attribution"),
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
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    def __repr__(self) -> str:
        return f"<Program {self.slug}>"
