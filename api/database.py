"""Database plumbing: UUID keys, timestamps, write transactions that never surface 'database is locked'.

On PostgreSQL, reads run in autocommit: each statement is its own snapshot (as under READ
COMMITTED anyway), with no BEGIN before and no ROLLBACK after a request, two round trips saved on
every read. Every write goes through write_transaction, which opts in to a READ COMMITTED
transaction. Pooled connections are checked before use only when they sat idle (a database
restart is found there); a busy pool is not pinged on every request.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import DateTime, Engine, TypeDecorator, event, func, null
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Mapped, Session, mapped_column

from api import mirror
from api.caching import bump
from api.extensions import db

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A pooled connection unused for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0
WRITE_OPTIONS: dict[str, dict[str, Any]] = {
    "postgresql": {"write": True, "isolation_level": "READ COMMITTED"},
    "sqlite": {"write": True},
}


def utcnow() -> datetime:
    """Now, timezone-aware UTC (the one clock every model uses)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, _dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class UUIDPrimaryKey:
    """Random UUID ids: never sequential, never guessable."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    """created_at / updated_at kept by the database layer."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_begin) instead of the driver's implicit one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A write transaction takes the write lock when it starts: a deferred one that read first
    # could not upgrade while another writer holds the lock and would fail with 'database is
    # locked' at once; an immediate one waits its turn under busy_timeout instead.
    mode = "IMMEDIATE" if connection.get_execution_options().get("write") else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.pop("idle_since", None)
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
    except Exception as error:  # the pool drops this connection and hands out a new one
        raise DisconnectionError("a pooled connection did not answer its ping") from error


def engine_options(url: str) -> dict[str, Any]:
    """Engine options by database: PostgreSQL reads in autocommit (see the module docstring)."""
    return {"isolation_level": "AUTOCOMMIT"} if url.startswith("postgresql") else {}


def _demoted_primary(context: Any) -> None:
    """A statement refused because this node is read-only (SQLSTATE 25006: a failover demoted it)
    is handled as a lost connection: SQLAlchemy drops it and every pooled connection made before
    it, so the next checkouts connect again — to the new primary, when DATABASE_URL names every
    node with target_session_attrs=read-write (README, "Operate it"). The request is a 503."""
    if getattr(context.original_exception, "sqlstate", None) == "25006":
        context.is_disconnect = True


def configure_engine(engine: Engine) -> None:
    """Ping idle connections on checkout; drop connections to a demoted primary; SQLite's pragmas
    and begin modes."""
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "handle_error", _demoted_primary)
    if engine.dialect.name == "sqlite":
        # Before sqlite3 opens (and would create) the file: a start that fails earlier makes none.
        event.listen(engine, "do_connect", lambda *_args: create_private_sqlite_file(str(engine.url)))
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)


def create_private_sqlite_file(uri: str) -> None:
    """Create an SQLite database file readable by its owner alone (0600), like the instance secret:
    it holds password hashes and session ids, and sqlite3 would create it 0644. SQLite gives its
    -wal and -shm files the database file's mode. A file that exists is left as the operator made
    it; a directory that does not is left for SQLite to report."""
    url = make_url(uri)
    path = url.database
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except (FileExistsError, FileNotFoundError):
        pass


def init_app(app: Flask) -> None:
    """Bind the database to the app and configure its engine."""
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
        **engine_options(app.config["SQLALCHEMY_DATABASE_URI"]),
    }
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)


AFTER_COMMIT = "resistance.after_commit"
CHANGES = "resistance.changes"
STALE = "resistance.stale"
REQUEST = "resistance.request_transaction"


@contextmanager
def write_transaction(changes: str | None = None) -> Iterator[Session]:
    """Run the block as one write transaction, committed at the end, rolled back on any error;
    then what the block asked for with after_commit, in order.

    `changes` names the data set the block changes (caching.SURVIVORS, say); mark_changed adds
    one from inside the block when only some outcomes change anything. Each named set's version
    row is bumped here, after everything the block wrote and right before COMMIT, so every writer
    takes its locks in one order — its own rows, the survivor totals row, the version rows last —
    and no two can wait on each other in a cycle; no service has to remember that order. A
    transaction that rolls back bumps nothing, and one that names nothing leaves every version
    (and every cached body keyed by it) alone. The versions, and what mark_stale names, are
    mirrored in Redis when it is configured: the mirror is told right before COMMIT and right
    after it (api/mirror.py), and a Redis that cannot be told rolls the write back.

    Inside a request transaction (join_request_transaction: a POST with an Idempotency-Key) the
    block is a SAVEPOINT of it instead: what it writes and declares commits with the request's
    stored response, in finish_request_transaction, or not at all.
    """
    session = db.session()
    if REQUEST in session.info:
        with _savepoint(session, changes):
            yield session
        return
    _begin(session)
    session.info[CHANGES] = set() if changes is None else {changes}
    session.info[STALE] = set()
    with _committed(session):
        yield session


def _begin(session: Session) -> None:
    if session.in_transaction():
        session.commit()  # end the read snapshot so the write starts on fresh data
    session.connection(execution_options=WRITE_OPTIONS[dialect_name()])


@contextmanager
def _committed(session: Session) -> Iterator[None]:
    """Run the block in the open write transaction, then commit it; roll back if the block fails."""
    try:
        yield
    except BaseException:
        _rollback(session)
        raise
    _commit(session)


def _commit(session: Session) -> None:
    """Bump the declared versions, tell the mirror, COMMIT, then run the after-commit callbacks."""
    count_out = None
    try:
        changed = session.info.pop(CHANGES)
        if changed:
            session.flush()  # the block's own rows first, whatever it left pending in the ORM
            for name in sorted(changed):  # one order across data sets too
                bump(session, name)
        stale = sorted(session.info.pop(STALE) | {mirror.VERSION + name for name in changed})
        if stale:
            count_out = mirror.count_in(stale)
        session.commit()
    except BaseException:
        _rollback(session)
        if count_out is not None:
            count_out()
        raise
    if count_out is not None:
        count_out()
    for callback in session.info.pop(AFTER_COMMIT, []):
        callback()


def _rollback(session: Session) -> None:
    session.rollback()
    for key in (AFTER_COMMIT, CHANGES, STALE, REQUEST):
        session.info.pop(key, None)


def _begin_request_transaction(session: Session) -> None:
    """Begin the request transaction with its first write (session.info[REQUEST]: begun yet)."""
    if not session.info[REQUEST]:
        _begin(session)
        session.info[REQUEST] = True


@contextmanager
def _savepoint(session: Session, changes: str | None) -> Iterator[None]:
    """One write block of a request transaction: a SAVEPOINT, begun with the transaction itself
    on the first block. A block that fails takes back what it wrote and what it declared."""
    _begin_request_transaction(session)
    declared = (set(session.info[CHANGES]), set(session.info[STALE]), len(session.info.get(AFTER_COMMIT, [])))
    if changes is not None:
        session.info[CHANGES].add(changes)
    savepoint = session.begin_nested()
    try:
        yield
        session.flush()  # a unique key's conflict is the block's own error, raised inside it
    except BaseException:
        savepoint.rollback()
        session.info[CHANGES], session.info[STALE] = declared[0], declared[1]
        del session.info.get(AFTER_COMMIT, [])[declared[2] :]
        raise
    savepoint.commit()


def join_request_transaction() -> None:
    """From now on, this request's write blocks (write_transaction) are SAVEPOINTs of one
    transaction, begun with the first of them, that finish_request_transaction commits."""
    session = db.session()
    session.info.update({REQUEST: False, CHANGES: set(), STALE: set()})


@contextmanager
def finish_request_transaction() -> Iterator[Session]:
    """Run the block as the request transaction's last write, then commit it all (as
    write_transaction would); roll it all back if the block or the commit fails."""
    session = db.session()
    _begin_request_transaction(session)
    del session.info[REQUEST]
    with _committed(session):
        yield session


def abandon_request_transaction() -> None:
    """Roll the request transaction back (its response is a failure)."""
    _rollback(db.session())


def _declared(key: str) -> set[str]:
    declared = db.session().info.get(key)
    if declared is None:
        raise RuntimeError("only meaningful inside write_transaction")
    return declared


def mark_changed(name: str) -> None:
    """Declare that the current write_transaction changes data set `name`: its version is bumped
    once, just before the commit (never if the transaction rolls back). For a block that changes
    the data only on some paths (a repeat infection report counts nothing)."""
    _declared(CHANGES).add(name)


def mark_stale(name: str) -> None:
    """Declare that the current write_transaction changes the state mirrored as `name`
    (api/mirror.py; an account's role, say): no reader sees the old state once it has committed."""
    _declared(STALE).add(name)


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the current write_transaction has committed; never if it rolls back.

    For what must follow the durable record, not precede it: an audit line of what happened, or
    a copy in Redis that a reader may have missed while the transaction was open. An exception
    from it reaches the caller (the data is committed; a retry finds it done).
    """
    db.session().info.setdefault(AFTER_COMMIT, []).append(callback)


def dialect_name() -> str:
    """The name of the database dialect in use ('sqlite' or 'postgresql')."""
    return db.engine.dialect.name


def server_incarnation() -> Any:
    """A SQL expression naming the database server process a statement runs on: PostgreSQL's
    start time, which a restart or the promotion of a standby changes, as UTC text to the
    microsecond (`2026-11-30T17:04:25.123456Z`: the same whatever the session's TimeZone or
    DateStyle, which replicas may set apart); NULL on SQLite (one file, no failover). A
    transaction never outlives its server process, so work begun on another incarnation is gone
    (api/idempotency.py)."""
    if dialect_name() == "postgresql":
        started = func.timezone("UTC", func.pg_postmaster_start_time())
        return func.to_char(started, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    return null()


def insert_ignore(model: Any, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when a row was inserted. Races end in the database."""
    dialect: Any = postgresql if dialect_name() == "postgresql" else sqlite
    key = sa_inspect(model).primary_key[0]
    # RETURNING yields a row only when one was inserted. Not rowcount: SQLAlchemy keeps it only
    # for UPDATE/DELETE, and for an INSERT on psycopg it reads -1, which would count a repeat.
    statement = dialect.insert(model).values(**values).on_conflict_do_nothing().returning(key)
    return db.session.execute(statement).first() is not None
