"""The one error envelope: RFC 9457 problem details for every error source."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Response, g, has_request_context, json, request

PROBLEM_MIME = "application/problem+json"
PROBLEM_BASE = "https://resistance.example/problems/"
# A 64 KiB body can name thousands of unknown fields: the answer lists at most this many.
MAX_ERROR_FIELDS = 50
MAX_MESSAGES = 50
# …and a field path is the client's own text (an unknown member name can be 60,000 characters).
MAX_FIELD_PATH = 200

# status -> (type slug, title); the titles are fixed so no exception text can leak through them.
_KINDS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("payload-too-large", "Payload too large"),
    414: ("uri-too-long", "URI too long"),
    415: ("unsupported-media-type", "Unsupported media type"),
    417: ("expectation-failed", "Expectation failed"),
    422: ("validation-error", "Validation failed"),
    429: ("rate-limited", "Too many requests"),
    431: ("headers-too-large", "Request headers too large"),
    500: ("internal-error", "Internal server error"),
    501: ("not-implemented", "Not implemented"),
    502: ("bad-gateway", "Upstream failed"),
    503: ("service-unavailable", "Service unavailable"),
}


class ProblemError(Exception):
    """An expected failure a service reports; turned into a problem response by the app."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers) if headers else {}


def problem_body(status: int, detail: str | None = None, errors: Any = None) -> dict[str, Any]:
    """Build the problem document for a status, with the request's path and id."""
    slug, title = _KINDS.get(status, ("error", HTTPStatus(status).phrase))
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    body["detail"] = detail or title
    if has_request_context():
        body["instance"] = request.path
        body["request_id"] = g.get("request_id")
    if errors:
        body["errors"] = {
            path[:MAX_FIELD_PATH]: list(messages)[:MAX_MESSAGES]
            for path, messages in list(errors.items())[:MAX_ERROR_FIELDS]
        }
    return body


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    errors: Any = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """A complete problem+json response; extra adds members (e.g. readiness checks)."""
    body = {**problem_body(status, detail, errors), **(extra or {})}
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIME)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Map marshmallow's nested messages to dotted field paths: {"location.latitude": [...]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = prefix if key == "_schema" and prefix else f"{prefix}.{key}" if prefix else str(key)
            for path, texts in flatten_errors(value, name).items():
                flat.setdefault(path, []).extend(texts)
    elif isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = [str(m) for m in messages]
    elif isinstance(messages, list | tuple):
        for index, value in enumerate(messages):
            flat.update(flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def webargs_errors(messages: Mapping[str, Any]) -> dict[str, list[str]]:
    """Flatten webargs' {location: messages} into one map of field paths."""
    flat: dict[str, list[str]] = {}
    for location_messages in messages.values():
        for path, texts in flatten_errors(location_messages).items():
            flat.setdefault(path, []).extend(texts)
    return flat
