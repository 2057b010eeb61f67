"""/healthz and /readyz for load balancers and orchestrators."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify
from redis import Redis
from sqlalchemy import text

from api.extensions import db
from api.problems import problem_response
from security.permissions import public

bp = Blueprint("ops", __name__)
log = logging.getLogger("resistance.ops")

# A readiness probe must answer quickly even when Redis hangs.
REDIS_TIMEOUT_SECONDS = 1.0


@bp.get("/healthz")
@public
def healthz() -> Response:
    """Liveness: the process answers; touches nothing else."""
    return jsonify(status="ok")


def _failed(check: str, exc: Exception) -> str:
    # The reason goes to the logs (exception type only: messages can carry URLs and passwords).
    log.warning("readiness check failed", extra={"check": check, "error": type(exc).__name__})
    return "failed"


def _database_check() -> str:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means 'not ready'
        db.session.rollback()
        return _failed("database", exc)
    return "ok"


def _redis_client(url: str) -> Redis:
    # One client (and its connection pool) per app, made on the first probe.
    client = current_app.extensions.get("ops.redis")
    if client is None:
        client = Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        current_app.extensions["ops.redis"] = client
    return client


def _redis_check() -> str:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return "disabled"
    try:
        _redis_client(url).ping()
    except Exception as exc:  # any failure means 'not ready'
        return _failed("redis", exc)
    return "ok"


@bp.get("/readyz")
@public
def readyz() -> Response:
    """Readiness: the database (and Redis, when configured) answer."""
    checks = {"database": _database_check(), "redis": _redis_check()}
    if "failed" in checks.values():
        return problem_response(503, "A dependency is not ready.", extra={"checks": checks})
    return jsonify(status="ok", checks=checks)
