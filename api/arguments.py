"""What a request asked for, as validated: the arguments parser every Blueprint uses.

Two rules live here. The JSON body is the document security/bodies.py already read and held
to I-JSON (a body-less request has none): webargs never reads the stream or runs a parser of
its own. And a view's validated query is remembered, so what we emit or key on is built from
it alone: links, ETags and cached bodies' keys never carry text the schema did not accept (an
unknown `junk=` parameter, a `Host` header), and two spellings of one query
(`page=1&infected=true`, `infected=true&page=1`) are one entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask import Request, g, request, url_for
from webargs import core
from webargs.flaskparser import FlaskParser

from api.problems import ProblemError
from api.schemas import Position, encode_cursor

QUERY = "validated_query"
BODY = "json_body"


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser, reading the body once-parsed and remembering the query."""

    def _raw_load_json(self, req: Request) -> Any:  # noqa: ARG002 - webargs' signature
        return g.get(BODY, core.missing)

    def parse(
        self, argmap: Any, req: Request | None = None, *, location: str | None = None, **kwargs: Any
    ) -> Any:
        if location == "query":
            refuse_repeated_parameters(argmap)
        parsed = super().parse(argmap, req, location=location, **kwargs)
        if location == "query":
            setattr(g, QUERY, parsed)
        return parsed


def refuse_repeated_parameters(schema: ma.Schema) -> None:
    """422 for a one-valued parameter given twice (`page=2&page=3`): webargs would take the
    first and drop the rest, a silent reinterpretation of what the client sent. (flask-smorest
    hands the parser a schema instance.)"""
    repeated = {
        field.data_key or name: ["Give this parameter once."]
        for name, field in schema.fields.items()
        if not isinstance(field, ma.fields.List) and len(request.args.getlist(field.data_key or name)) > 1
    }
    if repeated:
        raise ProblemError(422, "A query parameter was given more than once.", errors=repeated)


def remember_body(document: Any) -> None:
    """Keep the request's body as security/bodies.py read and checked it, for the parser."""
    setattr(g, BODY, document)


def validated_query() -> Mapping[str, Any]:
    """The current view's validated query arguments (defaults filled in), or {} when it has none."""
    return g.get(QUERY, {})


def wire(value: Any) -> str:
    """A validated query value written back the one way we write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Position):
        return encode_cursor(value.created_at, value.id)
    return str(value)


def canonical_query(omit: tuple[str, ...] = ()) -> dict[str, str]:
    """The validated query, in name order, each value in its one written form (minus `omit`)."""
    query = validated_query()
    return {name: wire(query[name]) for name in sorted(query) if name not in omit and query[name] is not None}


def canonical_url(omit: tuple[str, ...] = (), **params: Any) -> str:
    """This route, its path ids and its canonical query (minus `omit`, plus `params`), as the
    router writes it: a relative reference, never built from Host. Links and cache keys use it."""
    query = {**canonical_query(omit), **params}
    return url_for(request.endpoint, **(request.view_args or {}), **query)  # type: ignore[arg-type]
