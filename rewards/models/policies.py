"""Reward policies: the published versions, immutable, and each program's draft."""

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rewards.extensions import db
from rewards.models.types import UTCDateTime, utcnow


class PolicyVersion(db.Model):
    """One immutable, numbered version of a program's reward policy document."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("program_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    version: Mapped[int]
    document: Mapped[str] = mapped_column(db.Text)  # canonical JSON
    digest: Mapped[str] = mapped_column(db.String(64))  # SHA-256 of document
    published_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    published_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    publisher = relationship("Account")


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
