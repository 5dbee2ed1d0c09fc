"""partial index on received stripe events

The batch claim (`process_received`) reads the received events oldest first; this index
holds only those, so the claim stays one short index read however many events are done.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 00:05:20.480741

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.create_index("ix_stripe_events_received", ["received_at", "id"], unique=False,
                              postgresql_where=sa.text("status = 'received'"),
                              sqlite_where=sa.text("status = 'received'"))


def downgrade():
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.drop_index("ix_stripe_events_received")
