"""referrals by code and time

The velocity signal counts a code's referrals within the hour on every referred signup;
this index makes that count one short range read however many referrals the program has.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 02:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index("ix_referrals_code_time", ["code_id", "created_at"], unique=False)


def downgrade():
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_code_time")
