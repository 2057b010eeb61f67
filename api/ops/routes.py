"""/healthz and /readyz for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api.extensions import db
from api.problems import problem_response
from security.permissions import public

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@public
def healthz() -> Response:
    """Liveness: the process answers; touches nothing else."""
    return jsonify(status="ok")


def _database_check() -> str:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any failure means 'not ready'; details stay in the logs
        db.session.rollback()
        return "failed"
    return "ok"


@bp.get("/readyz")
@public
def readyz() -> Response:
    """Readiness: the database (and Redis, when configured) answer."""
    checks: dict[str, Any] = {"database": _database_check(), "redis": "disabled"}
    if any(value == "failed" for value in checks.values()):
        return problem_response(503, "A dependency is not ready.", extra={"checks": checks})
    return jsonify(status="ok", checks=checks)
