"""Shared schemas: strict base schema, pagination query, cursors and envelope, RFC 3339 timestamps."""

from __future__ import annotations

import base64
import re
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma
from marshmallow import validate

MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000
# If-None-Match / If-Match: printable ASCII up to 1 KiB (security/headers.py answers 400
# otherwise, and the spec documents the same). A value that names no current entity tag simply
# matches nothing: no 304, or 412 for If-Match.
ETAG_LIST_PATTERN = r"^[\x20-\x7e]*$"
ETAG_LIST_MAX = 1024
UUID_META = {"format": "uuid", "maxLength": 36, "minLength": 36}


CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class CleanText(ma.fields.String):
    """A string without control characters (C0, DEL, C1), trimmed of surrounding space."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if CONTROL_CHARACTERS.search(text):
            raise ma.ValidationError("Must not contain control characters.")
        return text.strip()


class BaseSchema(ma.Schema):
    """Unknown fields are an error, never silently dropped."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class NoBodySchema(BaseSchema):
    """What a POST or DELETE that takes no body accepts: nothing, or an empty JSON object. Any
    field sent is unknown (422), never silently dropped; a body that is not JSON is 415/400."""


class ResponseSchema(BaseSchema):
    """What the server sends: every field is in every body it answers, so the OpenAPI document
    lists them all as `required` and a generated client types them as present. A value that can
    be missing is sent as null (`allow_none`, documented as a `"null"` type), never left out."""

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:  # noqa: ARG002
        field_obj.required = True


# Field metadata naming the OpenAPI schema an enum field refers to (api/openapi.py writes the
# values once under that name and a $ref wherever the field appears).
ENUM_SCHEMA = "enum_schema"


def enum_field(schema_name: str, values: Sequence[str], **kwargs: Any) -> ma.fields.String:
    """A string from a fixed set, documented once as the named schema `schema_name` and referenced
    wherever it is used: a generated client then has one type per set (a survivor's gender read
    back can be sent again), not one per field. Any other value is a validation error (422)."""
    metadata = {ENUM_SCHEMA: schema_name, **kwargs.pop("metadata", {})}
    return ma.fields.String(validate=validate.OneOf(list(values)), metadata=metadata, **kwargs)


def rfc3339_utc(moment: datetime) -> str:
    """RFC 3339 UTC with a Z, to the second: 2026-11-23T19:37:47Z (a naive time is taken as UTC).

    Not strftime("%Y…"): on Linux it writes the year 999 as "999", which is no RFC 3339 date.
    Raises OverflowError when the UTC time falls outside the years 1-9999.
    """
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


class UTCDateTimeField(ma.fields.DateTime):
    """RFC 3339 UTC with a Z, to the second: 2026-11-23T19:37:47Z."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"format": "date-time", "maxLength": 32, **kwargs.pop("metadata", {})}
        super().__init__(format="%Y-%m-%dT%H:%M:%SZ", metadata=metadata, **kwargs)

    def _serialize(self, value: Any, *_args: Any, **_kwargs: Any) -> str | None:
        return None if value is None else rfc3339_utc(value)


def uuid_field(**kwargs: Any) -> ma.fields.UUID:
    """A UUID field documented with its bounds (the OWASP ruleset wants them)."""
    metadata = {**UUID_META, **kwargs.pop("metadata", {})}
    return ma.fields.UUID(metadata=metadata, **kwargs)


def bounded_int(low: int, high: int, **kwargs: Any) -> ma.fields.Integer:
    """An integer with inclusive bounds, documented as int32."""
    metadata = {"format": "int32", **kwargs.pop("metadata", {})}
    return ma.fields.Integer(strict=True, validate=validate.Range(low, high), metadata=metadata, **kwargs)


ASCII_DIGITS = re.compile(r"[0-9]{1,10}")


class QueryInteger(ma.fields.Integer):
    """A whole number in a query string, written in ASCII digits only.

    int() also reads " 1", "1_000", "+1" and other scripts' digits ("٣", "１"): each would be
    a second spelling of one value, so they are invalid (422) rather than quietly read.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not (isinstance(value, str) and ASCII_DIGITS.fullmatch(value)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)  # type: ignore[no-any-return]


class PageQuerySchema(BaseSchema):
    """?page=&page_size= with the contract's bounds."""

    page = QueryInteger(load_default=1, validate=validate.Range(1, MAX_PAGE), metadata={"format": "int32"})
    page_size = QueryInteger(
        load_default=20, validate=validate.Range(1, MAX_PAGE_SIZE), metadata={"format": "int32"}
    )


# A keyset cursor: a row's place in the (created_at, id) order every list uses, as 24 bytes
# (microseconds since the epoch, signed; the id's 16 bytes) in unpadded base64url: 32 characters.
CURSOR = struct.Struct(">q16s")
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{32}$"
CURSOR_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
EARLIEST = (datetime(1, 1, 1, tzinfo=UTC) - CURSOR_EPOCH) // MICROSECOND
LATEST = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - CURSOR_EPOCH) // MICROSECOND


@dataclass(frozen=True)
class Position:
    """Where a row stands in a list's order: its (created_at, id)."""

    created_at: datetime
    id: uuid.UUID


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    """The opaque cursor naming a row's position."""
    raw = CURSOR.pack((created_at - CURSOR_EPOCH) // MICROSECOND, row_id.bytes)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> Position:
    """The position a cursor names; ValueError when it is not shaped like one.

    Any 32 characters of the alphabet are a position: a time outside the years 1-9999 stands for
    the first or last possible instant (no row is older or newer), so every value the documented
    pattern allows is answered, never refused.
    """
    if not re.fullmatch(CURSOR_PATTERN, text):
        raise ValueError("not a cursor")
    micros, key = CURSOR.unpack(base64.urlsafe_b64decode(text))  # 32 characters: 24 bytes
    micros = min(max(micros, EARLIEST), LATEST)
    return Position(CURSOR_EPOCH + micros * MICROSECOND, uuid.UUID(bytes=key))


class CursorField(ma.fields.String):
    """A cursor from a Link header, loaded as the Position it names."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {
            "pattern": CURSOR_PATTERN,
            "minLength": 32,
            "maxLength": 32,
            **kwargs.pop("metadata", {}),
        }
        super().__init__(metadata=metadata, **kwargs)

    # A string on the wire (so the spec documents one), a Position once loaded.
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> Position:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return decode_cursor(text)
        except ValueError:
            raise ma.ValidationError("Not a valid cursor: use one from a Link header.") from None


class CursorPageQuerySchema(PageQuerySchema):
    """Paging plus the keyset cursors the Link header carries."""

    after = CursorField(
        metadata={
            "description": 'Opaque cursor from a rel="next" link: the page starts right after the '
            "item it names (keyset paging: as fast at any depth, nothing skipped or repeated while "
            "the list changes). page is then only the number shown in the body."
        }
    )
    before = CursorField(
        metadata={
            "description": 'Opaque cursor from a rel="prev" link: the page ends right before the '
            "item it names. With after as well: the items between the two, from after on."
        }
    )


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """The envelope {"items","page","page_size","total"} around a given item schema."""
    fields: dict[str, Any] = {
        "items": ma.fields.List(
            ma.fields.Nested(item_schema), required=True, metadata={"maxItems": MAX_PAGE_SIZE}
        ),
        "page": ma.fields.Integer(required=True, metadata={"format": "int32", "minimum": 1}),
        "page_size": ma.fields.Integer(
            required=True, metadata={"format": "int32", "minimum": 1, "maximum": MAX_PAGE_SIZE}
        ),
        "total": ma.fields.Integer(required=True, metadata={"format": "int64", "minimum": 0}),
    }
    return type(name, (ma.Schema,), fields)
