"""trades: proposals between two survivors with their items as bounded columns; the trade audit trail

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ITEMS = ("water", "food", "medication", "ammunition")
SIDES = ("offer", "request")


def upgrade():
    op.create_table(
        "trades",
        sa.Column("proposer_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "completed", "rejected", "cancelled", name="trade_status", native_enum=False, length=16),
            nullable=False,
        ),
        *(sa.Column(f"{side}_{item}", sa.Integer(), nullable=False) for side in SIDES for item in ITEMS),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'completed', 'rejected', 'cancelled')", name="ck_trades_status"),
        *(
            sa.CheckConstraint(f"{side}_{item} BETWEEN 0 AND 1000", name=f"ck_trades_{side}_{item}")
            for side in SIDES
            for item in ITEMS
        ),
        sa.CheckConstraint("proposer_id <> partner_id", name="ck_trades_two_parties"),
        sa.ForeignKeyConstraint(["partner_id"], ["survivors.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["proposer_id"], ["survivors.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_trades_created", "trades", ["created_at", "id"])
    op.create_index("ix_trades_partner_created", "trades", ["partner_id", "created_at", "id"])
    op.create_index("ix_trades_proposer_created", "trades", ["proposer_id", "created_at", "id"])
    op.create_table(
        "trade_events",
        sa.Column("trade_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("actor_account_id", sa.Uuid(), nullable=False),
        sa.Column("proposer_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("offer", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["trade_id"], ["trades.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_trade_events_trade", "trade_events", ["trade_id", "created_at"])


def downgrade():
    op.drop_table("trade_events")
    op.drop_table("trades")
