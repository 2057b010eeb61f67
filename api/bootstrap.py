"""First start: apply migrations and make sure an admin exists (run once, before workers fork)."""

from __future__ import annotations

import sys

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from api.accounts.models import Account, Role
from api.accounts.services import ensure_admin
from api.extensions import db
from api.problems import ProblemError
from security.passwords import password_problem


def _admin_exists() -> bool:
    return db.session.scalar(select(Account.id).where(Account.role == Role.ADMIN).limit(1)) is not None


def _create_admin(username: str, password: str | None) -> str | None:
    try:
        return ensure_admin(username, password)
    except ProblemError as error:
        db.session.rollback()
        if error.status == 409 and _admin_exists():
            return None  # another replica starting at the same moment created it first
        if error.status == 409:
            raise SystemExit(
                f"configuration error: ADMIN_USERNAME: {username!r} names an account that is not an admin"
            ) from None
        reasons = " ".join(" ".join(v) for v in (error.errors or {}).values())
        raise SystemExit(f"configuration error: ADMIN_PASSWORD: {reasons or error.detail}") from None


def prepare(app: Flask) -> None:
    """Migrate to head and create the first admin; a generated password is printed once.

    Every failure ends the start with one line naming its cause (a SystemExit, so no traceback):
    a weak ADMIN_PASSWORD is refused before anything is written, an unreachable database names
    DATABASE_URL with the driver's own first line of explanation.
    """
    username = app.config["ADMIN_USERNAME"]
    password = app.config["ADMIN_PASSWORD"]
    problem = password_problem(password) if password is not None else None
    if problem:
        raise SystemExit(f"configuration error: ADMIN_PASSWORD: {problem}")
    with app.app_context():
        try:
            # migrations/alembic.ini puts no handler on the root logger: app records stay JSON only.
            upgrade(directory=app.extensions["migrate"].directory)
            generated = _create_admin(username, password)
        except DBAPIError as error:
            reason = (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]
            raise SystemExit(f"database error: DATABASE_URL: {reason}") from None
        finally:
            db.session.remove()
            db.engine.dispose()  # workers fork after this: no connection may be shared with them
    if generated:
        print(  # noqa: T201 - shown once, on purpose, to the operator's terminal
            f"Created admin account '{username}' with password: {generated}"
            " (shown once; set ADMIN_PASSWORD to choose it)",
            file=sys.stderr,
            flush=True,
        )
