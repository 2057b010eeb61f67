"""Security wiring: request ids, authentication, body rules and headers, in a fixed order.

Order of the before_request hooks (each may answer on its own):
1. request id (so every later answer and log line carries it), then an HTTP/1.1 request
   without Host (400);
2. the bearer scheme read case-insensitively (RFC 9110 §11.1), for every reader of the header;
3. rate limits (429), keyed per account from the token's signature, else per client IP;
4. authentication of the matched endpoint (401 wins over 413/415/422: no body read yet);
5. conditional headers that are not entity-tag lists (400), then the body, read once and held
   to I-JSON (415, 413, 400: security/bodies.py).
Security headers are added after every response, errors included; CORS only for
CORS_ORIGINS.
"""

from __future__ import annotations

from flask import Flask

from security import bodies, cors, headers, jwt, limiter
from security.jwt import AccountLoader
from security.permissions import authenticate


def init_app(app: Flask, load_account: AccountLoader) -> None:
    """Wire every security concern into the app."""
    jwt.init_app(app, load_account)
    headers.init_app(app)
    cors.init_app(app)
    limiter.init_app(app)
    app.before_request(authenticate)
    app.before_request(headers.check_conditional_headers)
    app.before_request(bodies.read_json_body)
