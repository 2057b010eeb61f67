"""Resistance API: the application factory and its register_* steps."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask_smorest import Api

from api import caching, database, logs, problems, redis_store
from api.config import STATIC_SETTINGS, load_settings
from api.extensions import migrate
from api.openapi import (
    API_EXTENSION,
    ProblemApi,
    ProblemResponsesPlugin,
    register_security_scheme,
    spec_options,
)
from security.passwords import Passwords

ROOT = Path(__file__).resolve().parent.parent


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
    problems.init_app(app)  # every exception -> problem+json rule
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
    redis_store.init_app(app)  # before the cache and the limiter, which share its client
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


def register_commands(app: Flask) -> None:
    """`flask accounts create …`, `flask robots sync`, `flask sessions purge` (and `flask db …`
    from Flask-Migrate)."""
    from api.cli import accounts_cli, backup_cli, idempotency_cli, robots_cli, sessions_cli, spec_cli

    app.cli.add_command(accounts_cli)
    app.cli.add_command(robots_cli)
    app.cli.add_command(sessions_cli)
    app.cli.add_command(backup_cli)
    app.cli.add_command(idempotency_cli)
    app.cli.add_command(spec_cli)
