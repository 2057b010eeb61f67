"""Trade schemas: each side names 1–4 items, each quantity 1–1000."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from api.schemas import (
    BaseSchema,
    CursorPageQuerySchema,
    ResponseSchema,
    UTCDateTimeField,
    bounded_int,
    enum_field,
    page_schema,
    uuid_field,
)
from api.survivors.models import ITEMS
from api.trades.models import MAX_QUANTITY, Status

STATUSES = [status.value for status in Status]
STATUS_SCHEMA = "TradeStatus"
SIDE_META = {"minProperties": 1, "maxProperties": len(ITEMS)}


class TradeItemsSchema(BaseSchema):
    """One side of a trade: the items named and how many of each (an item left out is none)."""

    water = bounded_int(1, MAX_QUANTITY)
    food = bounded_int(1, MAX_QUANTITY)
    medication = bounded_int(1, MAX_QUANTITY)
    ammunition = bounded_int(1, MAX_QUANTITY)

    @ma.validates_schema
    def _not_empty(self, data: dict[str, int], **_kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError("Name at least one item.", "_schema")


class TradeCreateSchema(BaseSchema):
    """A proposal: the partner, what the proposer offers and what it asks for in return."""

    partner_id = uuid_field(required=True)
    offer = ma.fields.Nested(TradeItemsSchema, required=True, metadata=SIDE_META)
    request = ma.fields.Nested(TradeItemsSchema, required=True, metadata=SIDE_META)


class TradeSchema(ResponseSchema):
    """A trade as its parties see it."""

    id = uuid_field()
    proposer_id = uuid_field()
    partner_id = uuid_field()
    offer = ma.fields.Nested(TradeItemsSchema, metadata=SIDE_META)
    request = ma.fields.Nested(TradeItemsSchema, metadata=SIDE_META)
    status = enum_field(STATUS_SCHEMA, STATUSES)
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()


class TradeQuerySchema(CursorPageQuerySchema):
    """?status= plus paging."""

    status = enum_field(STATUS_SCHEMA, STATUSES)


TradePageSchema = page_schema(TradeSchema, "TradePage")
