"""Prometheus metrics: request counts, durations and in-flight requests, business events, GET /metrics.

The metric objects are created once per process, here at import, in prometheus_client's default
registry; every app built in the same process (the test suite builds many) shares them and only
adds its own hooks and route, so nothing is registered twice.

Across gunicorn workers: gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at a fresh directory
in the master before anything imports prometheus_client (which picks its storage at import).
Each process then keeps its samples in its own files there, and a scrape, answered by whichever
worker, merges every file into a fresh registry: the numbers are the server's, not one worker's.
Without that variable (tests in-process, `flask run`) the in-memory default registry is served.

Labels stay bounded whatever clients send: `route` is the matched URL rule
(`/api/v1/survivors/<uuid:survivor_id>`), never the path, and every path that matched no rule
(404, 405) shares UNMATCHED; a method outside the standard ones is "OTHER"; a status is three
digits; outcomes come from fixed lists.

Access: with METRICS_TOKEN unset the route answers 404 like a path that does not exist. With it
set, `Authorization: Bearer <METRICS_TOKEN>` is required (compared in constant time), else 401.
The JWT gate does not run here (the view is @public for it): a scraper is not an account and the
metrics token is not a JWT. Not rate limited: /metrics is outside /api/v1, like the probes, so
the per-account bucket (keyed by a JWT this route never takes) has nothing to count, and a
refused scrape would leave a gap in every series; online guessing of a long random token is
hopeless anyway.
"""

from __future__ import annotations

import hmac
import os
import time
from typing import Any

from flask import Response, abort, current_app, g, request
from flask.views import MethodView
from flask_smorest import Api
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from api.openapi import Blueprint, ProblemSchema
from api.problems import PROBLEM_MIME, problem_response
from security.jwt import bearer_token
from security.permissions import public

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The text format 0.0.4 every Prometheus understands (prometheus_client 0.26 calls 1.0.0 "latest";
# for our legacy-safe names both formats are the same bytes).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
UNMATCHED = "<unmatched>"
OTHER_METHOD = "OTHER"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
TRADE_OUTCOMES = ("proposed", "completed", "rejected", "cancelled")
# api/robots/client.py: one success, and the failure kinds an operator acts on differently.
ROBOT_OUTCOMES = (
    "success",
    "timeout",  # no answer, or a body still trickling, at the deadline
    "connection_error",  # refused, reset, DNS, TLS
    "redirect",  # not followed (SSRF rule)
    "http_error",  # any status but 200
    "too_large",  # declared or streamed body over 1 MiB
    "invalid_response",  # not JSON, not an array, or no valid record in it
)
SECURITY_SCHEME = "metricsToken"

# `*_created` series would double the text and exist only in single-process mode: off, so one
# process and many workers expose the same shape.
disable_created_metrics()

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, URL rule and status.",
    ("method", "route", "status"),
)
DURATION = Histogram(
    "http_request_duration_seconds",
    "Seconds from the first request hook to the end of the request, by method and URL rule.",
    ("method", "route"),
)
IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "Requests being served now (live worker processes only).",
    multiprocess_mode="livesum",
)
INFECTIONS = Counter("infections_total", "Survivors who became infected.")
REFRESH_TOKEN_REUSE = Counter(
    "refresh_token_reuse_total",
    "Rotated-out refresh tokens presented again (RFC 9700 section 4.14.2); each ended its session as stolen.",
)
TRADES = Counter("trades_total", "Trade changes committed, by outcome.", ("outcome",))
ROBOT_CPU_CALLS = Counter(
    "robot_cpu_calls_total", "Calls to the Robot CPU upstream, by outcome.", ("outcome",)
)
# Every known outcome is exported from the start (at 0), so a rate() sees the first event.
for _outcome in TRADE_OUTCOMES:
    TRADES.labels(_outcome)
for _outcome in ROBOT_OUTCOMES:
    ROBOT_CPU_CALLS.labels(_outcome)


def start_request() -> None:
    """before_request (first of all): the request is in flight from here, so even one refused
    early (400, 429, 401) is timed and counted."""
    g.metrics_started = time.perf_counter()
    IN_FLIGHT.inc()


def remember_status(response: Response) -> Response:
    """after_request: the status sent; a second finalisation (a hook failed: 500) overwrites it."""
    g.metrics_status = response.status_code
    return response


def finish_request(_error: BaseException | None) -> None:
    """teardown_request, which always runs: count the request and take it out of flight."""
    started = g.pop("metrics_started", None)
    if started is None:  # a request context our before_request never saw (test_request_context)
        return
    IN_FLIGHT.dec()
    method = request.method if request.method in METHODS else OTHER_METHOD
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    # No status recorded means no after_request ran: what the client got was the 500 fallback.
    status = g.pop("metrics_status", 500)
    REQUESTS.labels(method, route, str(status)).inc()
    DURATION.labels(method, route).observe(time.perf_counter() - started)


def _registry() -> Any:
    """Every worker's samples when gunicorn set a multiprocess directory, else this process's."""
    if not os.environ.get(MULTIPROC_DIR_ENV):
        return REGISTRY
    registry = CollectorRegistry()  # fresh per scrape: the files are read anew each time
    MultiProcessCollector(registry)
    return registry


def _token_matches(token: str) -> bool:
    credentials = bearer_token()
    return credentials is not None and hmac.compare_digest(credentials.encode(), token.encode())


blp = Blueprint("metrics", __name__, description="Prometheus metrics for the monitoring system.")

_TEXT = {
    "type": "string",
    "description": "Prometheus text exposition format 0.0.4: printable ASCII lines.",
    "maxLength": 16 * 1024 * 1024,
    "pattern": r"^[\t\n\x20-\x7e]*$",
}

_NO_STORE_HEADER = {
    "description": "Never stored by a cache: the numbers are for the scraper only, and change.",
    "schema": {"type": "string", "enum": ["no-store"]},
}


@blp.route("/metrics")
class Metrics(MethodView):
    @public  # for the JWT gate only: the view checks the metrics token itself
    @blp.doc(security=[{SECURITY_SCHEME: []}])
    @blp.response(
        200,
        _TEXT,
        content_type=CONTENT_TYPE,
        description="Metrics of every worker process.",
        headers={"Cache-Control": _NO_STORE_HEADER},
    )
    @blp.alt_response(
        404,
        schema=ProblemSchema,
        content_type=PROBLEM_MIME,
        description="METRICS_TOKEN is unset: the endpoint is off and answers like an unknown path.",
    )
    def get(self) -> Response:
        """Metrics for Prometheus: requests, durations, infections, trades, Robot CPU calls.

        Needs `Authorization: Bearer $METRICS_TOKEN` (the metrics token, not a JWT); answers 404
        while METRICS_TOKEN is unset. Counts are summed over every gunicorn worker. Not rate
        limited, so a scrape is never refused. Labels are bounded: route is the URL rule, and
        every unknown path is "<unmatched>".
        """
        token = current_app.config.get("METRICS_TOKEN")
        if not token:
            abort(404)
        no_store = {"Cache-Control": "no-store"}
        if not _token_matches(token):
            return problem_response(
                401,
                "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.",
                headers={**no_store, "WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return Response(generate_latest(_registry()), headers=no_store, content_type=CONTENT_TYPE)


def register(api: Api) -> None:
    """Serve GET /metrics on `api` (documented with its own scheme); api/pipeline.py registers
    the hooks that time and count every request."""
    api.spec.components.security_scheme(
        SECURITY_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "The operator's METRICS_TOKEN (an opaque secret, not a JWT), sent by the Prometheus "
                "scraper as 'Authorization: Bearer <METRICS_TOKEN>'; only GET /metrics takes it."
            ),
        },
    )
    api.register_blueprint(blp)
