"""HTTP caching: strong ETags from stored versions, 304 on If-None-Match, 412 on a stale If-Match."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from flask import Response, request

CACHE_CONTROL = "private, no-cache"


def _not_modified(etag: str) -> Response | None:
    """A 304 for a client whose copy is current (If-None-Match compares weakly), else None."""
    if request.if_none_match.contains_weak(etag.strip('"')):
        return Response(status=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
    return None


def with_etag(etag: str, body: Any) -> Any:
    """Answer 304 when the client's copy is current, else the body with its ETag."""
    not_modified = _not_modified(etag)
    if not_modified is not None:
        return not_modified
    return body, {"ETag": etag, "Cache-Control": CACHE_CONTROL}


def body_etag(view: Callable[..., Response]) -> Callable[..., Response]:
    """For a GET whose body has no stored version (a list, a report): a strong ETag hashed from
    the exact bytes served, so any change to the representation changes it and nothing is ever
    stale. Goes outside @blp.response, which hands it the finished 200 response."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        response = view(*args, **kwargs)
        etag = '"' + hashlib.sha256(response.get_data()).hexdigest()[:40] + '"'
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = CACHE_CONTROL
        not_modified = _not_modified(etag)
        return response if not_modified is None else not_modified

    return wrapper


def if_match_allows(etag: str) -> bool:
    """True when there is no If-Match, or it names this ETag (or *)."""
    if "If-Match" not in request.headers:
        return True
    return request.if_match.contains(etag.strip('"'))
