"""survivors.version as BIGINT: a restore moves every version past the current time in µs

A restored database must never hand out an ETag a client saw before the restore for different
data (api/backup.py): every row and data-set version jumps past the current time in microseconds,
which a 32-bit column cannot hold. SQLite's INTEGER is 64-bit already.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("survivors", schema=None) as batch_op:
        batch_op.alter_column("version", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)


def downgrade():
    with op.batch_alter_table("survivors", schema=None) as batch_op:
        batch_op.alter_column("version", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
