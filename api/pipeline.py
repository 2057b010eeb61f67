"""The request pipeline: every hook a request passes through, in the order it runs, in one place.

before_request, in order (any may answer on its own, and then the rest do not run):
 1. metrics.start_request: in flight from here, so even a request refused below is counted;
 2. headers.assign_request_id: every later answer and log line carries it;
 3. headers.require_host: an HTTP/1.1 request without Host is 400 (RFC 9112 §3.2);
 4. logs.start_timer: the access line's duration;
 5. jwt.normalise_authorization: the bearer scheme read case-insensitively (RFC 9110 §11.1);
 6. permissions.identify: the token the endpoint takes verified once (signature, claims, its
    session, its account); a failure is kept for step 8;
 7. the rate limits (flask-limiter's own check): 429, per account proved in 6, else per IP;
 8. permissions.require_authentication: the 401 of step 6, after the limit, before any body;
 9. headers.check_conditional_headers: If-Match / If-None-Match over 1 KiB or not printable
    ASCII, 400;
10. bodies.read_json_body: the body read once and held to I-JSON (415, 413, 400);
11. idempotency.begin: a POST's Idempotency-Key claimed, or its stored answer replayed (409,
    422); the request's writes then commit together with its answer.

after_request, in order (every response, errors included):
 1. idempotency.finish: the answer stored with the request's writes, committed together;
 2. metrics.remember_status;
 3. limiter.response_headers: RateLimit-* and a 429's Retry-After;
 4. CORS headers, for CORS_ORIGINS only (flask-cors);
 5. headers.apply: the security headers and Cache-Control defaults;
 6. logs.log_request: one access line, with the final status.

teardown_request: flask-limiter forgets the request's limits; metrics.finish_request counts it.
"""

from __future__ import annotations

from flask import Flask

from api import idempotency, logs, metrics
from security import bodies, cors, headers, jwt, limiter, permissions


def init_app(app: Flask) -> None:
    """Register every request hook of the list above, in that order.

    Flask runs before_request hooks in the order they are registered and after_request hooks in
    the reverse order; the rate limits and CORS register their own hooks where they are set up.
    """
    for hook in (
        metrics.start_request,
        headers.assign_request_id,
        headers.require_host,
        logs.start_timer,
        jwt.normalise_authorization,
        permissions.identify,
    ):
        app.before_request(hook)
    rate_limits = limiter.init_app(app)  # before 7, after 2 and teardown (flask-limiter's own)
    for check in (
        permissions.require_authentication,
        headers.check_conditional_headers,
        bodies.read_json_body,
        idempotency.begin,
    ):
        app.before_request(check)
    # after_request hooks, registered last to first.
    app.after_request(logs.log_request)
    app.after_request(headers.apply)
    cors.init_app(app)
    app.after_request(limiter.response_headers(rate_limits))
    app.after_request(metrics.remember_status)
    app.after_request(idempotency.finish)
    app.teardown_request(metrics.finish_request)
