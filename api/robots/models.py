"""The last good copy of the Robot CPU list, shared by every worker and replica."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.database import UTCDateTime
from api.extensions import db

ROW_ID = 1


class RobotCache(db.Model):  # type: ignore[name-defined,misc]
    """One row: the normalised records as JSON text, when they were fetched, and the refresh lease."""

    __tablename__ = "robot_cache"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    records: Mapped[str | None] = mapped_column(Text, nullable=True)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set by the one reader refreshing a stale copy; others keep serving the stored copy.
    refresh_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
