"""Work-in-progress policy documents: one saved draft per program, valid or not."""

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rewards.extensions import db
from rewards.models.types import UTCDateTime, utcnow


class PolicyDraft(db.Model):
    """The program's policy draft as last saved: raw text, which may not even be JSON.

    Publishing copies a valid draft into a new PolicyVersion; the draft itself stays.
    """

    __tablename__ = "policy_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), unique=True)
    document: Mapped[str] = mapped_column(db.Text)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)

    editor = relationship("Account")
