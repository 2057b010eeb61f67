"""First start: apply migrations and make sure an admin exists (run once, before workers fork)."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from api.accounts.models import Account, Role
from api.accounts.services import ensure_admin
from api.extensions import db
from api.problems import ProblemError
from security.passwords import password_problem

# Any fixed 64-bit number, the same in every replica: the key of the start-up advisory lock.
START_LOCK_KEY = 0x5E515AA7


@contextmanager
def start_lock(engine: Engine) -> Iterator[None]:
    """One starting process at a time migrates and seeds the database.

    Replicas started together would otherwise run the same migration at once (PostgreSQL:
    duplicate catalog rows; SQLite: 'database is locked') and all but one would exit. PostgreSQL
    gets a session advisory lock, a SQLite file an exclusive lock on a file beside it; an
    in-memory SQLite database belongs to one process and needs none.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": START_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": START_LOCK_KEY})
        return
    path = engine.url.database
    # In memory, or in a directory that does not exist (the connection will fail and say so):
    # there is nothing another process could be migrating at the same time.
    if not path or path == ":memory:" or not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        yield
        return
    with open(f"{path}.start-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


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
            with start_lock(db.engine):
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
