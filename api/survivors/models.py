"""Survivors: who they are, where they were last seen, what they carry."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.database import Timestamps, UUIDPrimaryKey, utcnow
from api.extensions import db

ITEMS = ("water", "food", "medication", "ammunition")
POINTS = {"water": 4, "food": 3, "medication": 2, "ammunition": 1}


def points_of(counts: Mapping[str, int]) -> int:
    """What a set of items is worth: a survivor's inventory, or one side of a trade."""
    return sum(POINTS[item] * count for item, count in counts.items())


class Survivor(UUIDPrimaryKey, Timestamps, db.Model):  # type: ignore[name-defined,misc]
    """A survivor profile; version bumps on every change and is the ETag."""

    __tablename__ = "survivors"
    __table_args__ = (
        CheckConstraint(
            "water >= 0 AND food >= 0 AND medication >= 0 AND ammunition >= 0",
            name="ck_survivors_inventory_non_negative",
        ),
        CheckConstraint("infection_reports >= 0", name="ck_survivors_reports_non_negative"),
        Index("ix_survivors_infected_created", "infected", "created_at", "id"),
        Index("ix_survivors_created", "created_at", "id"),
    )

    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), unique=True, nullable=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    age: Mapped[int] = mapped_column(Integer, nullable=False)
    gender: Mapped[str] = mapped_column(String(16), nullable=False)
    latitude: Mapped[float] = mapped_column(Float, nullable=False)
    longitude: Mapped[float] = mapped_column(Float, nullable=False)
    infected: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    infection_reports: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    water: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    food: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    medication: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    ammunition: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    version: Mapped[int] = mapped_column(BigInteger, default=1, nullable=False)

    @property
    def location(self) -> dict[str, float]:
        """The last known position as the API shows it."""
        return {"latitude": self.latitude, "longitude": self.longitude}

    @property
    def etag(self) -> str:
        """A strong ETag from the stored version: no body hashing needed for a 304."""
        return f'"{self.id.hex}.{self.version}"'

    @property
    def inventory(self) -> dict[str, object]:
        """Item counts and their point value."""
        counts = {item: getattr(self, item) for item in ITEMS}
        return {
            "survivor_id": self.id,
            **counts,
            "points": points_of(counts),
        }


def revised() -> dict[str, Any]:
    """What every UPDATE of a survivor row sets besides its change: the row's next version (its
    ETag, which If-Match compares) and updated_at. Not the data-set version of lists and reports:
    write_transaction bumps that (api/database.py)."""
    return {"version": Survivor.version + 1, "updated_at": utcnow()}


TOTALS_ROW = 1


class SurvivorTotals(db.Model):  # type: ignore[name-defined,misc]
    """Running totals over every survivor, kept in the same transaction as each change.

    One row (id 1). Lists and reports read their totals here instead of counting a million rows:
    a registration adds one survivor and its items to the healthy sums; an infection moves the
    survivor's items out of them into points_lost. Trades need nothing: they only move items
    between two healthy survivors, so every sum is conserved. Survivors are never deleted.
    """

    __tablename__ = "survivor_totals"
    __table_args__ = (CheckConstraint("id = 1", name="ck_survivor_totals_one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    survivors: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    infected: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # Items held by non-infected survivors.
    water: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    food: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    medication: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    ammunition: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # Points held by infected survivors (their inventories are frozen from the moment of infection).
    points_lost: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
