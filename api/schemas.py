"""Shared schemas: strict base schema, pagination query and envelope, RFC 3339 timestamps."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
from flask import request
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


class UTCDateTimeField(ma.fields.DateTime):
    """RFC 3339 UTC with a Z, to the second: 2026-11-23T19:37:47Z."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"format": "date-time", "maxLength": 32, **kwargs.pop("metadata", {})}
        super().__init__(format="%Y-%m-%dT%H:%M:%SZ", metadata=metadata, **kwargs)


def uuid_field(**kwargs: Any) -> ma.fields.UUID:
    """A UUID field documented with its bounds (the OWASP ruleset wants them)."""
    metadata = {**UUID_META, **kwargs.pop("metadata", {})}
    return ma.fields.UUID(metadata=metadata, **kwargs)


def bounded_int(low: int, high: int, **kwargs: Any) -> ma.fields.Integer:
    """An integer with inclusive bounds, documented as int32."""
    metadata = {"format": "int32", **kwargs.pop("metadata", {})}
    return ma.fields.Integer(strict=True, validate=validate.Range(low, high), metadata=metadata, **kwargs)


class PageQuerySchema(BaseSchema):
    """?page=&page_size= with the contract's bounds."""

    page = ma.fields.Integer(
        load_default=1, validate=validate.Range(1, MAX_PAGE), metadata={"format": "int32"}
    )
    page_size = ma.fields.Integer(
        load_default=20, validate=validate.Range(1, MAX_PAGE_SIZE), metadata={"format": "int32"}
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


def link_header(page: int, page_size: int, total: int) -> str | None:
    """RFC 8288 Link with rel="next"/"prev" where those pages exist (other query kept)."""
    args = request.args.to_dict(flat=True)
    links = []
    last_page = max(1, -(-total // page_size))
    for rel, target in (("prev", page - 1), ("next", page + 1)):
        if 1 <= target <= last_page:
            query = urlencode({**args, "page": target, "page_size": page_size})
            links.append(f'<{request.base_url}?{query}>; rel="{rel}"')
    return ", ".join(links) or None
