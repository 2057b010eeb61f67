"""Resistance API: the application factory and its register_* steps."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response
from flask_smorest import Api
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from api import caching, database, logs
from api.config import STATIC_SETTINGS, load_settings
from api.extensions import migrate
from api.openapi import (
    API_EXTENSION,
    ProblemApi,
    ProblemResponsesPlugin,
    register_security_scheme,
    spec_options,
)
from api.problems import ProblemError, problem_response
from security.passwords import Passwords

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("resistance")


def create_app(environ: Mapping[str, str] | None = None, **overrides: Any) -> Flask:
    """Build an app from environment-style settings (validated) plus fixed config overrides."""
    app = Flask(__name__, static_folder=None, instance_path=str(ROOT / "instance"))
    app.config.update(STATIC_SETTINGS)
    app.config.update(load_settings(os.environ if environ is None else environ, app.instance_path))
    app.config["API_SPEC_OPTIONS"] = spec_options()
    app.config.update(overrides)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the schema's field order
    api = register_extensions(app)
    register_blueprints(app, api)
    register_errorhandlers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> Api:
    """Logging, database, migrations, the smorest Api, passwords and the security layer; the Api,
    which the blueprints and the metrics route are registered on."""
    import security
    from api import pipeline  # imports api.metrics: only once gunicorn set its multiprocess directory
    from api.accounts.services import load_active
    from api.extensions import db

    logs.configure_logging()
    database.init_app(app)
    caching.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    api = ProblemApi(app, spec_kwargs={"extra_plugins": [ProblemResponsesPlugin()]})
    app.extensions[API_EXTENSION] = api
    register_security_scheme(api)
    app.extensions["passwords"] = Passwords(app.config["PASSWORD_HASH_PROFILE"])
    security.init_app(app, load_active)
    pipeline.init_app(app)
    return api


def register_blueprints(app: Flask, api: Api) -> None:
    """Every resource, from one list, on the app's Api."""
    from api.accounts.routes import blp as accounts
    from api.auth.routes import blp as auth
    from api.docs.routes import bp as docs
    from api.infections.routes import blp as infections
    from api.ops.routes import blp as ops
    from api.reports.routes import blp as reports
    from api.robots.routes import blp as robots
    from api.survivors.routes import blp as survivors
    from api.trades.routes import blp as trades

    for blueprint in (auth, accounts, survivors, infections, trades, robots, reports, ops):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs)
    from api import metrics  # GET /metrics

    metrics.register(api)


# PostgreSQL error classes of an outage: 08 connection exception, 53 insufficient resources
# (too many connections), 57 operator intervention (shutdown, starting up). Connection failures
# have no SQLSTATE at all; SQLite names its outages only in the message.
OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57")
OUTAGE_MESSAGES = ("connection", "database is locked", "unable to open database file", "server closed")


def database_outage(error: OperationalError) -> bool:
    """True when the database is down or unreachable, False for an error in the query itself."""
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    message = str(error.orig).lower()
    return (
        bool(error.connection_invalidated)
        or sqlstate.startswith(OUTAGE_SQLSTATE_CLASSES)
        or any(text in message for text in OUTAGE_MESSAGES)
    )


def register_errorhandlers(app: Flask) -> None:
    """Expected failures from services, and anything unexpected, as problem+json."""

    @app.errorhandler(ProblemError)
    def _problem(error: ProblemError) -> Response:
        return problem_response(error.status, error.detail, errors=error.errors, headers=error.headers)

    @app.errorhandler(RedisError)
    def _redis_down(error: RedisError) -> Response:
        # Limits and the session check must never silently switch off: refuse until Redis is back.
        log.error("redis unavailable", extra={"error": type(error).__name__})
        return problem_response(
            503, "A shared service is unavailable; retry shortly.", headers={"Retry-After": "5"}
        )

    @app.errorhandler(OperationalError)
    def _database_error(error: OperationalError) -> Response:
        if not database_outage(error):  # SQLite reports bad SQL as "operational" too: a bug, 500
            return _unexpected(error)
        # Unreachable, restarting, refusing connections or busy: a transient outage the client
        # should retry, not a bug. The pool (pre-ping) reconnects by itself afterwards.
        log.error("database unavailable", extra={"error": type(error.orig).__name__})
        return problem_response(
            503, "The database is unavailable; retry shortly.", headers={"Retry-After": "5"}
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error", exc_info=error)
        return problem_response(500)


def register_commands(app: Flask) -> None:
    """`flask accounts create …`, `flask robots sync`, `flask sessions purge` (and `flask db …`
    from Flask-Migrate)."""
    from api.cli import accounts_cli, robots_cli, sessions_cli

    app.cli.add_command(accounts_cli)
    app.cli.add_command(robots_cli)
    app.cli.add_command(sessions_cli)
