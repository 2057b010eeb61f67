"""The one error envelope, RFC 9457 problem details, and every rule that turns an exception into one.

`init_app` registers each "exception -> status" rule the app has, so they read in one place:

- ProblemError: the status, detail and headers a service or a request hook chose;
- HTTPException: routing (404, 405), webargs' validation (422), flask-limiter's 429, abort();
- RedisError: 503, never a silently switched-off limit or session check;
- DBAPIError: 503 when the database is down, or the node is no longer the primary
  (`database_outage`), else a bug: 500;
- anything else: 500, logged, nothing internal disclosed.

A refused token is the one exception the app does not catch itself: flask-jwt-extended maps its
own exceptions onto loader callbacks it requires (security/jwt.py), and each of those answers
with `token_refused` below. Errors gunicorn rejects before the app runs are written by
security/headers.raw_problem from the same `problem_body`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, has_request_context, json, request
from flask_limiter import RateLimitExceeded
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

PROBLEM_MIME = "application/problem+json"
PROBLEM_BASE = "https://resistance.example/problems/"
# A 64 KiB body can name thousands of unknown fields: the answer lists at most this many.
MAX_ERROR_FIELDS = 50
MAX_MESSAGES = 50
# …and a field path is the client's own text (an unknown member name can be 60,000 characters).
MAX_FIELD_PATH = 200
# RFC 6750 challenges: without an error for a request that sent no credentials worth naming.
CHALLENGE = 'Bearer realm="resistance-api"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="resistance-api", error="invalid_token"'
# PostgreSQL error classes of an outage: 08 connection exception, 53 insufficient resources
# (too many connections), 57 operator intervention (shutdown, starting up). Connection failures
# have no SQLSTATE at all; SQLite names its outages only in the message.
OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57")
OUTAGE_MESSAGES = ("connection", "database is locked", "unable to open database file", "server closed")

# Our words for what Werkzeug would say in its stock sentences ("If you entered the URL manually…").
STOCK_DETAILS = {
    404: "There is nothing at this path; the API's paths are listed at /api/v1/openapi.json.",
    405: "This path does not take this method; the Allow header lists the ones it takes.",
}

log = logging.getLogger("resistance")

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


def problem_json(body: Mapping[str, Any]) -> bytes:
    """A problem document written as every other JSON answer is (Flask's compact JSON with a
    final newline), so error and success bodies look alike to a client or a terminal."""
    return (json.dumps(body, separators=(",", ":")) + "\n").encode()


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
    response = Response(problem_json(body), status=status, mimetype=PROBLEM_MIME)
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


def init_app(app: Flask) -> None:
    """Register every exception -> problem rule on the app (Flask picks the most specific class)."""
    app.register_error_handler(ProblemError, _expected)
    app.register_error_handler(HTTPException, http_problem)
    app.register_error_handler(RedisError, _redis_down)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(Exception, _unexpected)


def _expected(error: ProblemError) -> Response:
    return problem_response(error.status, error.detail, errors=error.errors, headers=error.headers)


def http_problem(error: HTTPException) -> Response:
    """Any HTTPException (Werkzeug, flask-smorest, webargs, flask-limiter) as a problem document:
    its headers kept, webargs' messages flattened into `errors`, a 5xx description never shown."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    errors = None
    detail = error.description
    if detail == type(error).description:  # Werkzeug's stock sentence: say it our way, if we have one
        detail = STOCK_DETAILS.get(status, detail)
    if isinstance(error, RateLimitExceeded):  # its description is the bare limit: "10 per 1 minute"
        detail = (
            f"Too many requests: the limit is {error.description}; "
            "retry after the number of seconds in the Retry-After header."
        )
    if status == 422 and "messages" in data:
        errors = webargs_errors(data["messages"])
        detail = "The request has invalid or unknown fields; see errors."
    if status >= 500:
        detail = None
    return problem_response(status, detail, errors=errors, headers=headers)


def token_refused(detail: str, challenge: str = INVALID_TOKEN_CHALLENGE) -> Response:
    """The 401 for a token flask-jwt-extended refused. The detail is ours, never the library's
    message: it must not help an attacker tune a forgery. A request that sent no bearer token
    at all gets the bare CHALLENGE: RFC 6750 §3.1 says to name no error then."""
    return problem_response(401, detail, headers={"WWW-Authenticate": challenge})


def _redis_down(error: RedisError) -> Response:
    # Limits and the session check must never silently switch off: refuse until Redis is back.
    log.error("redis unavailable", extra={"error": type(error).__name__})
    return problem_response(
        503, "A shared service is unavailable; retry shortly.", headers={"Retry-After": "5"}
    )


def database_outage(error: DBAPIError) -> bool:
    """True when the database is down or unreachable, or the connection was dropped (a node a
    failover demoted: api/database.py); False for an error in the query itself."""
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    message = str(error.orig).lower()
    return (
        bool(error.connection_invalidated)
        or sqlstate.startswith(OUTAGE_SQLSTATE_CLASSES)
        or any(text in message for text in OUTAGE_MESSAGES)
    )


def _database_error(error: DBAPIError) -> Response:
    if not database_outage(error):  # SQLite reports bad SQL as "operational" too: a bug, 500
        return _unexpected(error)
    # Unreachable, restarting, refusing connections or busy: a transient outage the client
    # should retry, not a bug. The pool (pre-ping) reconnects by itself afterwards.
    log.error("database unavailable", extra={"error": type(error.orig).__name__})
    return problem_response(503, "The database is unavailable; retry shortly.", headers={"Retry-After": "5"})


def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return problem_response(500)
