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


def _failed(check: str, reason: str) -> str:
    # The reason goes to the logs (an exception's type only: messages can carry URLs and passwords).
    log.warning("readiness check failed", extra={"check": check, "error": reason})
    return "failed"


def _database_check() -> str:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means 'not ready'
        db.session.rollback()
        return _failed("database", type(exc).__name__)
    return "ok"


def _redis_check() -> str:
    """Redis answers, and never evicts: ended sessions, rate-limit windows and cached bodies
    all carry a TTL, and a `volatile-*` or `allkeys-*` policy would drop an ended session's key
    first and bring its tokens back to life (its marker key has no TTL and stays)."""
    client = redis_client()
    if client is None:
        return "disabled"
    try:
        memory: dict[str, Any] = client.info("memory")  # type: ignore[assignment]
    except Exception as exc:  # any failure means 'not ready'
        return _failed("redis", type(exc).__name__)
    if memory.get("maxmemory") and memory.get("maxmemory_policy") != "noeviction":
        return _failed("redis", "maxmemory-policy must be noeviction")
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
        """Readiness: the database (and Redis, when configured, set never to evict) answer.

        Public and not rate limited. Each probe waits at most a second for Redis; a failed
        check is reported as "failed" with no detail (the exception type is logged).
        """
        checks = {"database": _database_check(), "redis": _redis_check()}
        if "failed" in checks.values():
            return problem_response(503, "A dependency is not ready.", extra={"checks": checks})
        return {"status": "ok", "checks": checks}
