"""One JSON object a line on stdout: request lines and audit events, never a secret."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from flask import Response, g, has_request_context, request

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_SECRET_WORDS = ("password", "token", "authorization", "secret")


class JSONFormatter(logging.Formatter):
    """Render a record and its extra fields as one JSON line; drops anything that looks secret."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = g.get("request_id")
        for key, value in vars(record).items():
            if key not in _STANDARD and not any(word in key.lower() for word in _SECRET_WORDS):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(entry, default=str)


class StdoutHandler(logging.StreamHandler):
    """Write to whatever sys.stdout is at emit time (servers and test runners may swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        """Ignored: the stream is always the current sys.stdout."""


def configure_logging() -> None:
    """Send the app's loggers to stdout as JSON lines, flushed per line (idempotent)."""
    handler = StdoutHandler()
    handler.setFormatter(JSONFormatter())
    for name in ("resistance", "resistance.audit", "resistance.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler] if name == "resistance" else []
        logger.setLevel(logging.INFO)


access = logging.getLogger("resistance.access")


def start_timer() -> None:
    """before_request: the access line's duration counts from here."""
    g.started = time.perf_counter()


def log_request(response: Response) -> Response:
    """after_request: one access line per request, with the account its token proved."""
    from security.permissions import authenticated_account

    access.info(
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "route": request.url_rule.rule if request.url_rule else None,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
            "account_id": authenticated_account(),
        },
    )
    return response
