"""survivor totals: one row of running counts and sums, so list totals and reports count nothing

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ITEMS = ("water", "food", "medication", "ammunition")
POINTS = {"water": 4, "food": 3, "medication": 2, "ammunition": 1}


def upgrade():
    op.create_table(
        "survivor_totals",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("survivors", sa.BigInteger(), nullable=False),
        sa.Column("infected", sa.BigInteger(), nullable=False),
        *(sa.Column(item, sa.BigInteger(), nullable=False) for item in ITEMS),
        sa.Column("points_lost", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_survivor_totals_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    # Start from the rows already there; from here on every write keeps the row current.
    healthy = ", ".join(
        f"COALESCE(SUM(CASE WHEN infected THEN 0 ELSE CAST({item} AS BIGINT) END), 0)" for item in ITEMS
    )
    points = " + ".join(f"{POINTS[item]} * CAST({item} AS BIGINT)" for item in ITEMS)
    op.execute(
        "INSERT INTO survivor_totals (id, survivors, infected, water, food, medication, ammunition, points_lost) "
        "SELECT 1, COUNT(*), COALESCE(SUM(CASE WHEN infected THEN 1 ELSE 0 END), 0), "
        f"{healthy}, COALESCE(SUM(CASE WHEN infected THEN {points} ELSE 0 END), 0) FROM survivors"
    )


def downgrade():
    op.drop_table("survivor_totals")
