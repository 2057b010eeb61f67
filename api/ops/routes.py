"""/healthz and /readyz for load balancers and orchestrators."""

from __future__ import annotations

import logging
from typing import Any

from flask.views import MethodView
from sqlalchemy import text

from api.extensions import db
from api.openapi import Blueprint
from api.ops.schemas import HealthSchema, NotReadyProblemSchema, ReadySchema
from api.problems import PROBLEM_MIME, problem_response
from api.redis_store import redis_client
from security.permissions import public

blp = Blueprint("ops", __name__, description="Probes for load balancers and orchestrators.")
log = logging.getLogger("resistance.ops")


@blp.route("/healthz")
class Liveness(MethodView):
    @public
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self) -> Any:
        """Liveness: the process answers; touches nothing else.

        Public and not rate limited, so a load balancer is never refused; never reads the
        database or Redis, so a dependency outage does not restart healthy workers.
        """
        return {"status": "ok"}


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


def _redis_check() -> str:
    client = redis_client()
    if client is None:
        return "disabled"
    try:
        client.ping()
    except Exception as exc:  # any failure means 'not ready'
        return _failed("redis", exc)
    return "ok"


@blp.route("/readyz")
class Readiness(MethodView):
    @public
    @blp.doc(security=[])
    @blp.response(200, ReadySchema)
    @blp.alt_response(
        503,
        schema=NotReadyProblemSchema,
        content_type=PROBLEM_MIME,
        description="A dependency is not ready; checks says which (the reason goes to the logs).",
    )
    def get(self) -> Any:
        """Readiness: the database (and Redis, when configured) answer.

        Public and not rate limited. Each probe waits at most a second for Redis; a failed
        check is reported as "failed" with no detail (the exception type is logged).
        """
        checks = {"database": _database_check(), "redis": _redis_check()}
        if "failed" in checks.values():
            return problem_response(503, "A dependency is not ready.", extra={"checks": checks})
        return {"status": "ok", "checks": checks}
