"""HTTP caching: strong ETags from stored versions, 304 on If-None-Match, 412 on a stale If-Match."""

from __future__ import annotations

from typing import Any

from flask import Response, request

CACHE_CONTROL = "private, no-cache"


def with_etag(etag: str, body: Any) -> Any:
    """Answer 304 when the client's copy is current, else the body with its ETag."""
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if request.if_none_match.contains_weak(etag.strip('"')):
        return Response(status=304, headers=headers)
    return body, headers


def if_match_allows(etag: str) -> bool:
    """True when there is no If-Match, or it names this ETag (or *)."""
    if "If-Match" not in request.headers:
        return True
    return request.if_match.contains(etag.strip('"'))
