"""data versions: one counter per data set, bumped by writes, keying ETags and cached bodies

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "data_versions",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(table, [{"name": "survivors", "version": 1}])


def downgrade():
    op.drop_table("data_versions")
