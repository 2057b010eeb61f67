"""Survivor schemas, bounded as the contract says."""

from __future__ import annotations

import numbers
from typing import Any

import marshmallow as ma
from marshmallow import validate

from api.schemas import (
    BaseSchema,
    CleanText,
    CursorPageQuerySchema,
    ResponseSchema,
    UTCDateTimeField,
    bounded_int,
    enum_field,
    page_schema,
    uuid_field,
)

GENDERS = ["female", "male", "non-binary", "unspecified"]
GENDER_SCHEMA = "Gender"
MAX_ITEM = 100_000
# Control characters (C0, DEL, C1) are refused anywhere in a name: PostgreSQL cannot store NUL,
# and newlines or escapes have no place in a name that ends up in logs and dashboards.
NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
NAME_META = {"minLength": 1, "maxLength": 100, "pattern": NAME_PATTERN}


class JSONNumber(ma.fields.Float):
    """A JSON number only: a string such as "45" is a type error, not a number to coerce."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if not isinstance(value, numbers.Real):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class LocationSchema(BaseSchema):
    """A point on Earth in degrees."""

    latitude = JSONNumber(
        required=True,
        allow_nan=False,
        validate=validate.Range(-90, 90),
        metadata={"format": "double"},
    )
    longitude = JSONNumber(
        required=True,
        allow_nan=False,
        validate=validate.Range(-180, 180),
        metadata={"format": "double"},
    )


class InventoryInSchema(BaseSchema):
    """Starting inventory; a missing item means 0.

    No item carries a `default` (the service counts a missing one as 0): some generators (such
    as openapi-typescript) make a property with a default required, and every item is optional.
    """

    water = bounded_int(0, MAX_ITEM)
    food = bounded_int(0, MAX_ITEM)
    medication = bounded_int(0, MAX_ITEM)
    ammunition = bounded_int(0, MAX_ITEM)


class SurvivorCreateSchema(BaseSchema):
    """What a client sends to register a survivor: no server fields."""

    name = CleanText(
        required=True,
        validate=validate.Length(1, 100, error="Must be 1-100 characters and not blank."),
        metadata=NAME_META,
    )
    age = bounded_int(0, 150, required=True)
    gender = enum_field(GENDER_SCHEMA, GENDERS, required=True)
    location = ma.fields.Nested(LocationSchema, required=True)
    inventory = ma.fields.Nested(InventoryInSchema, load_default=dict)


class SurvivorSchema(ResponseSchema):
    """A survivor as clients see it."""

    id = uuid_field()
    name = ma.fields.String(metadata=NAME_META)
    age = bounded_int(0, 150)
    gender = enum_field(GENDER_SCHEMA, GENDERS)
    location = ma.fields.Nested(LocationSchema)
    infected = ma.fields.Boolean()
    infection_reports = ma.fields.Integer(metadata={"format": "int32", "minimum": 0})
    account_id = uuid_field(allow_none=True)
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()


class InventorySchema(ResponseSchema):
    """A survivor's items and their total points."""

    survivor_id = uuid_field()
    water = bounded_int(0, 2**31 - 1)
    food = bounded_int(0, 2**31 - 1)
    medication = bounded_int(0, 2**31 - 1)
    ammunition = bounded_int(0, 2**31 - 1)
    points = ma.fields.Integer(metadata={"format": "int64", "minimum": 0})


class SurvivorQuerySchema(CursorPageQuerySchema):
    """?infected=true|false plus paging."""

    infected = ma.fields.Boolean(truthy={"true"}, falsy={"false"})


SurvivorPageSchema = page_schema(SurvivorSchema, "SurvivorPage")
