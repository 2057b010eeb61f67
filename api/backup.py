"""Backups that restore: `flask --app wsgi backup create PATH` and `… backup restore PATH`.

A backup is the database's own consistent copy: pg_dump's custom format on PostgreSQL (one
snapshot, taken beside running servers), SQLite's online backup API on SQLite. The file holds
password hashes and session ids, so it is created readable by its owner alone (0600), and never
over an existing file. Connection settings go to pg_dump and pg_restore through libpq's
environment (PGHOST, PGPASSWORD…), never on their command line.

A restore goes into an empty database only (a fresh PostgreSQL database, or an SQLite file that
does not exist yet), with the servers stopped. It then makes the restored data safe to serve:

- every session in it ends (reason `restored`): a session that ended after the backup was taken
  (a logout, a stolen refresh token, a disable) would otherwise live again; everyone logs in anew;
- every version (each survivor's, each data set's) jumps past the current time in microseconds,
  past any version a write could have reached: an ETag a client kept from before the restore
  never matches a restored representation (no false 304, no If-Match on data it did not see);
- with REDIS_URL, Redis forgets what it mirrored and cached from the database it had before
  (api/mirror.py, cached bodies) and refills the ended sessions from the restored one.
"""

from __future__ import annotations

import os
import shutil
import sqlite3

# pg_dump and pg_restore, found by absolute path, run without a shell.
import subprocess  # nosec B404
import time
from pathlib import Path

from flask import current_app
from flask_migrate import upgrade
from sqlalchemy import Engine, inspect, update
from sqlalchemy.engine import URL

from api.caching import DataVersion
from api.database import create_private_sqlite_file, utcnow, write_transaction
from api.extensions import db
from api.redis_store import forget_copies, redis_client
from api.survivors.models import Survivor
from security.sessions import RESTORED, AccountSession, EndReason, live_conditions

TOOL_SECONDS = 3600


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


def _sqlite_path(url: URL) -> str | None:
    path = url.database
    return None if not path or path == ":memory:" or path.startswith("file:") else path


def _new_private_file(path: Path) -> None:
    """Create `path` empty, mode 0600; refuse one that exists (a backup never overwrites)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise BackupError(f"{path} exists: a backup never overwrites a file") from None
    except OSError as error:
        raise BackupError(f"cannot create {path}: {error.strerror}") from None


def _libpq_environ(url: URL) -> dict[str, str]:
    """The URL as libpq's environment variables, for pg_dump and pg_restore."""
    environ = dict(os.environ)
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value is not None:
            environ[name] = str(value)
    return environ


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed: install PostgreSQL's client programs")
    return found


def _run(arguments: list[str], url: URL) -> None:
    result = subprocess.run(  # nosec B603
        arguments, env=_libpq_environ(url), capture_output=True, text=True, timeout=TOOL_SECONDS, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{Path(arguments[0]).name} failed: {result.stderr.strip()}")


def create(path: Path) -> None:
    """Write a consistent backup of the configured database to `path` (new file, 0600)."""
    url = db.engine.url
    if url.get_backend_name() == "postgresql":
        _new_private_file(path)
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={path}"], url)
        return
    source_path = _sqlite_path(url)
    if source_path is None:
        raise BackupError("an in-memory database has nothing to back up")
    _new_private_file(path)
    _copy_sqlite(source_path, path)


def _copy_sqlite(source_path: str | Path, target_path: str | Path) -> None:
    """SQLite's online backup API: a consistent copy, even while others write to the source.
    On failure (the source is not an SQLite database, say) the target is removed."""
    try:
        with sqlite3.connect(source_path) as source, sqlite3.connect(target_path) as target:
            source.backup(target)
    except sqlite3.Error as error:
        os.remove(target_path)
        raise BackupError(f"the SQLite copy failed: {error}") from None


def _refuse_unless_empty(engine: Engine) -> None:
    tables = inspect(engine).get_table_names()
    if tables:
        raise BackupError(
            f"the database at DATABASE_URL already has tables ({', '.join(sorted(tables)[:3])}…): "
            "restore into a new, empty database"
        )


def restore(path: Path) -> None:
    """Restore backup `path` into the configured database, which must be empty; then migrate it
    to this release, end every session, move every version past now and clear Redis's copies
    (see the module docstring). Raises BackupError with the reason."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    url = db.engine.url
    if url.get_backend_name() == "postgresql":
        _refuse_unless_empty(db.engine)
        restore_options = ["--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges"]
        _run([_tool("pg_restore"), *restore_options, f"--dbname={url.database}", str(path)], url)
    else:
        target_path = _sqlite_path(url)
        if target_path is None:
            raise BackupError("restore into an SQLite file, not an in-memory database")
        if os.path.exists(target_path) and os.path.getsize(target_path):
            raise BackupError(f"{target_path} exists: restore into a new SQLite file")
        db.engine.dispose()
        create_private_sqlite_file(str(url))
        _copy_sqlite(path, target_path)
    # A backup of an older release is brought to this one's schema first, as a start would.
    upgrade(directory=current_app.extensions["migrate"].directory)
    _make_safe_to_serve()


def _make_safe_to_serve() -> None:
    jump = time.time_ns() // 1000
    now = utcnow()
    with write_transaction() as session:
        session.execute(
            update(AccountSession)
            .where(*live_conditions(now))
            .values(ended_at=now, end_reason=EndReason.RESTORED)
            .execution_options(synchronize_session=False)
        )
        # updated_at kept as it was: the restored records did not change (its onupdate would).
        session.execute(
            update(Survivor).values(version=Survivor.version + jump, updated_at=Survivor.updated_at)
        )
        session.execute(update(DataVersion).values(version=DataVersion.version + jump))
        # Tokens issued before now are refused even where Redis answers the session check: a
        # session started after the backup was taken is unknown here, and has no ended key there.
        session.merge(DataVersion(name=RESTORED, version=jump))
    client = redis_client()
    if client is not None:
        forget_copies(client)
