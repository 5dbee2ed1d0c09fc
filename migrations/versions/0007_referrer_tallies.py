"""referrer tallies

The top-referrer rollup becomes one packed tally per program day and currency instead of
a row per referrer and day, so ranking referrers over a range reads a row per day. The
days the old table held are marked, so the next refresh (the worker, `sweep`, or the
dashboard's own read) fills the tallies from the raw purchases.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 01:50:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _mark_days_of(table: str) -> None:
    op.execute(f"INSERT INTO rollup_marks (program_id, day, created_at) "
               f"SELECT DISTINCT program_id, day, CURRENT_TIMESTAMP FROM {table}")


def upgrade():
    _mark_days_of("daily_referrers")
    op.drop_table("daily_referrers")
    op.create_table(
        "daily_referrer_tallies",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tally", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"],
                                name=op.f("fk_daily_referrer_tallies_program_id_programs")),
        sa.PrimaryKeyConstraint("day", "program_id", "currency",
                                name=op.f("pk_daily_referrer_tallies")),
    )


def downgrade():
    _mark_days_of("daily_referrer_tallies")
    op.drop_table("daily_referrer_tallies")
    op.create_table(
        "daily_referrers",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("referrer_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("purchases", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"],
                                name=op.f("fk_daily_referrers_program_id_programs")),
        sa.ForeignKeyConstraint(["referrer_id"], ["customers.id"],
                                name=op.f("fk_daily_referrers_referrer_id_customers")),
        sa.PrimaryKeyConstraint("day", "program_id", "referrer_id", "currency",
                                name=op.f("pk_daily_referrers")),
    )
