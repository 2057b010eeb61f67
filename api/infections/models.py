"""One row per (reporter, reported): the unique key makes repeats and races count once."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.database import UTCDateTime, UUIDPrimaryKey, utcnow
from api.extensions import db


class InfectionReport(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A survivor's report that another survivor is infected."""

    __tablename__ = "infection_reports"
    __table_args__ = (UniqueConstraint("reporter_id", "reported_id", name="uq_infection_reports_pair"),)

    reporter_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("survivors.id", ondelete="CASCADE"), nullable=False
    )
    reported_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("survivors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
