"""Request ids, security headers on every response, no-store where bodies are private."""

from __future__ import annotations

import re
import uuid
from http import HTTPStatus

from flask import Response, current_app, g, request

from api.problems import PROBLEM_MIME, ProblemError, problem_body, problem_json
from api.schemas import ETAG_LIST_MAX, ETAG_LIST_PATTERN

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"
REQUEST_ID_RE = re.compile(REQUEST_ID_PATTERN)
_ETAG_LIST_RE = re.compile(ETAG_LIST_PATTERN)
CONDITIONAL_HEADERS = ("If-None-Match", "If-Match")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
NO_STORE_PREFIXES = ("/api/v1/auth/", "/api/v1/trades")


def assign_request_id() -> None:
    """Echo a well-formed X-Request-ID, else mint one; logs and problem bodies use it."""
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex


def require_host() -> None:
    """400 for an HTTP/1.1 request without a Host header (RFC 9112 §3.2).

    Nothing we emit is built from Host (links and Location are relative references), but a
    request that breaks the framing rules is refused rather than guessed at. An empty Host is
    allowed: RFC 9112 says a client sends one when the target has no authority.
    """
    if request.environ.get("SERVER_PROTOCOL") == "HTTP/1.1" and "HTTP_HOST" not in request.environ:
        raise ProblemError(400, "An HTTP/1.1 request must carry a Host header (RFC 9112 §3.2).")


def check_conditional_headers() -> None:
    """400 for an If-None-Match / If-Match over 1 KiB or not printable ASCII (after routing)."""
    if request.routing_exception is not None:
        return
    for name in CONDITIONAL_HEADERS:
        value = request.headers.get(name)
        if value is not None and (len(value) > ETAG_LIST_MAX or not _ETAG_LIST_RE.fullmatch(value)):
            raise ProblemError(
                400, f'{name} must be a list of entity tags such as "abc" (or *), at most 1 KiB.'
            )


def no_store(path: str) -> bool:
    """Whether responses under this path are private (`Cache-Control: no-store`); it also reads
    an OpenAPI path template (api/openapi.py declares the header from it)."""
    return path.startswith(NO_STORE_PREFIXES) or (
        path.startswith("/api/v1/survivors/") and path.endswith("/inventory")
    )


BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def apply(response: Response) -> Response:
    """after_request: the headers every response carries, whatever its status."""
    headers = response.headers
    headers["X-Request-ID"] = g.get("request_id") or uuid.uuid4().hex
    headers.update(BASE_HEADERS)
    is_docs = request.path == "/docs" or request.path.startswith("/docs/")
    headers["Content-Security-Policy"] = DOCS_CSP if is_docs else API_CSP
    if current_app.config.get("HSTS_ENABLED"):
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    if no_store(request.path):
        headers["Cache-Control"] = "no-store"
    if response.status_code == HTTPStatus.NO_CONTENT:
        # RFC 9110 §15.3.5: no content, so no Content-Type (flask-smorest types its empty
        # answers as JSON, and a replayed 204 kept it); werkzeug drops Content-Length itself.
        headers.pop("Content-Type", None)
        response.set_data(b"")
    return response


def raw_problem(status: int, reason: str) -> bytes:
    """A complete HTTP/1.1 problem+json answer for errors the server rejects before the app runs
    (gunicorn's 400/414/431 on an unparseable request): same envelope and headers, no echo of
    the request."""
    body = problem_json(problem_body(status, reason))
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Connection: close",
        f"Content-Type: {PROBLEM_MIME}",
        f"Content-Length: {len(body)}",
        f"X-Request-ID: {uuid.uuid4().hex}",
        f"Content-Security-Policy: {API_CSP}",
        *(f"{name}: {value}" for name, value in BASE_HEADERS.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
