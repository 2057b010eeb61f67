"""A trade and its audit trail: items as columns, so the database itself bounds every quantity."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Enum, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from api.database import Timestamps, UTCDateTime, UUIDPrimaryKey, utcnow
from api.extensions import db
from api.survivors.models import ITEMS

MAX_QUANTITY = 1000


class Status(enum.StrEnum):
    """Where a trade stands; only a pending trade can change."""

    PENDING = "pending"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


def _quantity_checks(side: str) -> list[CheckConstraint]:
    return [
        CheckConstraint(f"{side}_{item} BETWEEN 0 AND {MAX_QUANTITY}", name=f"ck_trades_{side}_{item}")
        for item in ITEMS
    ]


class Trade(UUIDPrimaryKey, Timestamps, db.Model):  # type: ignore[name-defined,misc]
    """A proposal from one survivor to another: offer (proposer's items) for request (partner's)."""

    __tablename__ = "trades"
    __table_args__ = (
        *_quantity_checks("offer"),
        *_quantity_checks("request"),
        CheckConstraint("proposer_id <> partner_id", name="ck_trades_two_parties"),
        CheckConstraint(
            "status IN ('pending', 'completed', 'rejected', 'cancelled')", name="ck_trades_status"
        ),
        Index("ix_trades_created", "created_at", "id"),
        Index("ix_trades_proposer_created", "proposer_id", "created_at", "id"),
        Index("ix_trades_partner_created", "partner_id", "created_at", "id"),
    )

    proposer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("survivors.id", ondelete="CASCADE"), nullable=False
    )
    partner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("survivors.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[Status] = mapped_column(
        Enum(
            Status,
            name="trade_status",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=Status.PENDING,
        nullable=False,
    )
    offer_water: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    offer_food: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    offer_medication: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    offer_ammunition: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    request_water: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    request_food: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    request_medication: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    request_ammunition: Mapped[int] = mapped_column(Integer, default=0, nullable=False)

    def side(self, name: str) -> dict[str, int]:
        """The items of one side ("offer" or "request") that are part of the trade."""
        counts = {item: getattr(self, f"{name}_{item}") for item in ITEMS}
        return {item: count for item, count in counts.items() if count}

    @property
    def offer(self) -> dict[str, int]:
        """What the proposer gives."""
        return self.side("offer")

    @property
    def request(self) -> dict[str, int]:
        """What the partner gives."""
        return self.side("request")

    @staticmethod
    def columns(offer: dict[str, int], request: dict[str, int]) -> dict[str, Any]:
        """Column values for both sides, 0 for every item not named."""
        return {
            **{f"offer_{item}": offer.get(item, 0) for item in ITEMS},
            **{f"request_{item}": request.get(item, 0) for item in ITEMS},
        }


class TradeEvent(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """The audit trail: who did what to which trade and when, with the items as they stood.

    Written in the same transaction as the change it records, so the trail cannot miss a
    completed trade nor record one that rolled back. Ids are copied, not foreign keys to
    accounts, so the trail outlives any later change to the accounts.
    """

    __tablename__ = "trade_events"
    __table_args__ = (Index("ix_trade_events_trade", "trade_id", "created_at"),)

    trade_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("trades.id", ondelete="CASCADE"), nullable=False)
    event: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    proposer_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    offer: Mapped[dict[str, int]] = mapped_column(JSON, nullable=False)
    request: Mapped[dict[str, int]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
