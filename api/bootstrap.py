"""First start: apply migrations and make sure an admin exists (run once, before workers fork)."""

from __future__ import annotations

import sys

from flask import Flask
from flask_migrate import upgrade

from api.accounts.services import ensure_admin
from api.problems import ProblemError


def prepare(app: Flask) -> None:
    """Migrate to head and create the first admin; a generated password is printed once."""
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        username = app.config["ADMIN_USERNAME"]
        try:
            generated = ensure_admin(username, app.config["ADMIN_PASSWORD"])
        except ProblemError as error:
            reasons = " ".join(" ".join(v) for v in (error.errors or {}).values())
            raise SystemExit(f"ADMIN_PASSWORD: {reasons or error.detail}") from None
        if generated:
            print(  # noqa: T201 - shown once, on purpose, to the operator's terminal
                f"Created admin account '{username}' with password: {generated}"
                " (shown once; set ADMIN_PASSWORD to choose it)",
                file=sys.stderr,
                flush=True,
            )
        from api.extensions import db

        db.session.remove()
        db.engine.dispose()
