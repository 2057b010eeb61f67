"""CORS: off unless CORS_ORIGINS names origins; never credentials, never a wildcard."""

from __future__ import annotations

from flask import Flask
from flask_cors import CORS

# What a browser may send and read: every request header and every response header the OpenAPI
# document declares (tests/test_cors.py holds the two lists to it). Cache-Control and
# Content-Type are readable without being exposed (CORS-safelisted response headers).
ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "X-Request-ID",
]
EXPOSED_HEADERS = [
    "ETag",
    "Idempotent-Replayed",
    "Link",
    "Location",
    "Retry-After",
    "WWW-Authenticate",
    "X-Request-ID",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]


def init_app(app: Flask) -> None:
    """Allow the configured origins to call /api/v1 from a browser (bearer tokens, no cookies)."""
    origins = app.config["CORS_ORIGINS"]
    if not origins:
        return
    CORS(
        app,
        resources={r"/api/v1/*": {"origins": origins}},
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        supports_credentials=False,
        always_send=False,  # Access-Control-Allow-Origin only in answer to an allowed Origin
        max_age=600,
    )
