"""Robot schemas: the API's own shape of the Robot CPU records, bounded for the OWASP rules."""

from __future__ import annotations

import marshmallow as ma

from api.openapi import RFC3339_UTC
from api.robots.client import CATEGORIES, MAX_MODEL, MAX_SERIAL
from api.schemas import BaseSchema, PageQuerySchema, ResponseSchema, UTCDateTimeField, enum_field, page_schema

SOURCES = ["upstream", "cache", "snapshot"]
CATEGORY_SCHEMA = "RobotCategory"
COUNT = {"format": "int64", "minimum": 0}
TEXT = r"^[^\u0000-\u001F\u007F]*$"


class RobotSchema(ResponseSchema):
    """One robot as the API shows it."""

    model = ma.fields.String(metadata={"minLength": 1, "maxLength": MAX_MODEL, "pattern": TEXT})
    serial_number = ma.fields.String(metadata={"minLength": 1, "maxLength": MAX_SERIAL, "pattern": TEXT})
    manufactured_date = ma.fields.String(
        metadata={"format": "date-time", "maxLength": 32, "pattern": RFC3339_UTC}
    )
    category = enum_field(CATEGORY_SCHEMA, CATEGORIES)


class RobotQuerySchema(PageQuerySchema):
    """?category=Flying|Land plus paging."""

    category = enum_field(CATEGORY_SCHEMA, CATEGORIES)


def _source() -> ma.fields.String:
    return enum_field(
        "RobotDataSource",
        SOURCES,
        required=True,
        metadata={
            "description": "upstream: fetched during this request; cache: the stored copy; "
            "snapshot: bundled real data, served while no good copy was ever fetched.",
        },
    )


def _fetched_at() -> UTCDateTimeField:
    return UTCDateTimeField(
        required=True,
        allow_none=True,
        metadata={"description": "When the stored copy was fetched; null for the snapshot."},
    )


class RobotPageSchema(page_schema(RobotSchema, "RobotPageBase")):  # type: ignore[misc]
    """A page of robots, with where the data came from and when it was fetched."""

    source = _source()
    fetched_at = _fetched_at()


class ByCategorySchema(BaseSchema):
    """How many robots of each category (both keys always present)."""

    Flying = ma.fields.Integer(required=True, metadata=COUNT)
    Land = ma.fields.Integer(required=True, metadata=COUNT)


class RobotRefreshSchema(BaseSchema):
    """What a successful refresh stored."""

    total = ma.fields.Integer(required=True, metadata=COUNT)
    by_category = ma.fields.Nested(ByCategorySchema, required=True)
    fetched_at = UTCDateTimeField(required=True)


class RobotsReportSchema(BaseSchema):
    """Robot counts per category, with the data's source and fetch time."""

    total = ma.fields.Integer(required=True, metadata=COUNT)
    by_category = ma.fields.Nested(ByCategorySchema, required=True)
    source = _source()
    fetched_at = _fetched_at()
