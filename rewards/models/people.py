"""Who uses the platform: staff and customer accounts, customers, API keys."""

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rewards.extensions import db
from rewards.models.types import UTCDateTime, in_list, utcnow

ROLES = ("admin", "coordinator", "marketing", "customer")
STAFF_ROLES = ("admin", "coordinator", "marketing")


class Customer(db.Model):
    """A customer of the business in one program: a referrer, a referred friend, or both."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("program_id", "external_id"),
        UniqueConstraint("program_id", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    external_id: Mapped[str | None] = mapped_column(db.String(128))
    email: Mapped[str | None] = mapped_column(db.String(254))
    name: Mapped[str | None] = mapped_column(db.String(120))
    # How the customer is paid: connect, store_credit or manual (None: not chosen yet).
    payout_method: Mapped[str | None] = mapped_column(db.String(16))
    stripe_account_id: Mapped[str | None] = mapped_column(db.String(64), unique=True)
    stripe_account_ready: Mapped[bool] = mapped_column(default=False, server_default="0")
    stripe_customer_id: Mapped[str | None] = mapped_column(db.String(64), index=True)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    program = relationship("Program")

    @property
    def first_name(self) -> str:
        if self.name and self.name.strip():
            return self.name.strip().split()[0]
        return "A friend"

    def __repr__(self) -> str:
        return f"<Customer {self.id}>"


class Account(UserMixin, db.Model):
    """A login. Staff accounts have no customer; customer accounts have exactly one."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(in_list("role", ROLES), name="role"),
        CheckConstraint(
            "(role = 'customer') = (customer_id IS NOT NULL)", name="customer_matches_role"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(db.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(db.String(255))
    role: Mapped[str] = mapped_column(db.String(16))
    name: Mapped[str | None] = mapped_column(db.String(120))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), unique=True)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_login_at = mapped_column(UTCDateTime)

    customer = relationship("Customer")

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


class ApiKey(db.Model):
    """A server-to-server key. Only a SHA-256 digest of the key is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(db.String(120))
    prefix: Mapped[str] = mapped_column(db.String(16))
    key_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_used_at = mapped_column(UTCDateTime)
    revoked_at = mapped_column(UTCDateTime)
