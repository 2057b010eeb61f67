"""idempotency_keys.claimed_on: the database server process a claim was committed on

A claim made before a failover (or a restart) died with its server's transactions: a retry takes
it over at once instead of waiting out its lease (api/idempotency.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_on", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("claimed_on")
