"""robot cache: the last good Robot CPU list, its fetch time and the refresh lease; a robots data version

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "robot_cache",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("records", sa.Text(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    versions = sa.table("data_versions", sa.column("name", sa.String), sa.column("version", sa.BigInteger))
    op.bulk_insert(versions, [{"name": "robots", "version": 1}])


def downgrade():
    op.execute("DELETE FROM data_versions WHERE name = 'robots'")
    op.drop_table("robot_cache")
