"""The staff audit log."""

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rewards.extensions import db
from rewards.models.types import BigId, UTCDateTime, utcnow


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
