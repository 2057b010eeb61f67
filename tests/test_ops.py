"""/healthz and /readyz (docs/api.md, Operations): liveness touches nothing, readiness reports
every dependency."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy.exc import OperationalError

from api.extensions import db
from tests import conftest
from tests.conftest import assert_problem

UNREACHABLE_POSTGRES = "postgresql+psycopg://127.0.0.1:1/x"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def _build(**environ: str) -> Flask:
    from api import create_app

    settings = {**conftest.test_environ(environ.pop("DATABASE_URL", "sqlite://")), **environ}
    return create_app(settings, TESTING=True, PASSWORD_HASH_PROFILE="fast-tests")


@pytest.fixture
def down_app() -> Iterator[Flask]:
    """An app whose database does not answer (nothing listens on port 1)."""
    application = _build(DATABASE_URL=UNREACHABLE_POSTGRES)
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def redis_app(app: Flask) -> Iterator[Any]:
    """Build apps on the suite's database with a given REDIS_URL (disposed afterwards)."""
    built: list[Flask] = []

    def make(url: str) -> Flask:
        application = _build(DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=url)
        built.append(application)
        return application

    yield make
    for application in built:
        with application.app_context():
            db.engine.dispose()


def test_healthz_is_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


def test_healthz_is_ok_while_the_database_is_down(down_app):
    response = down_app.test_client().get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_is_ok_with_database_and_no_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "redis": "disabled"}}


def test_readyz_with_database_down_is_503_problem_with_checks(down_app, capsys):
    capsys.readouterr()
    response = down_app.test_client().get("/readyz")
    body = assert_problem(response, 503, instance="/readyz")
    assert body["checks"] == {"database": "failed", "redis": "disabled"}
    for leak in ("127.0.0.1", "psycopg", "OperationalError", "refused"):
        assert leak not in response.get_data(as_text=True)
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (failure,) = [line for line in logged if line["message"] == "readiness check failed"]
    assert failure["check"] == "database"
    assert failure["error"] == "OperationalError"
    assert failure["level"] == "warning"
    assert failure["request_id"] == response.headers["X-Request-ID"]


def test_readyz_recovers_when_the_database_returns(app, client, monkeypatch):
    session = db.session

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("down"))

    with app.app_context():
        monkeypatch.setattr(type(session()), "execute", refuse)
        assert_problem(client.get("/readyz"), 503)
        monkeypatch.undo()
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["checks"]["database"] == "ok"


def test_readyz_with_redis_down_is_503(redis_app):
    response = redis_app(UNREACHABLE_REDIS).test_client().get("/readyz")
    body = assert_problem(response, 503)
    assert body["checks"] == {"database": "ok", "redis": "failed"}
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_readyz_with_redis_up_is_ok_and_reuses_one_client(redis_app, redis_url, monkeypatch):
    pings: list[Redis] = []

    def info(self: Redis, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        pings.append(self)
        return {"maxmemory": 0, "maxmemory_policy": "noeviction"}

    monkeypatch.setattr(Redis, "info", info)
    client = redis_app(redis_url).test_client()
    for _ in range(2):
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert len(pings) == 2 and pings[0] is pings[1]


def test_readyz_with_the_real_redis_reads_its_memory_policy(redis_app, redis_url):
    response = redis_app(redis_url).test_client().get("/readyz")
    assert response.get_json()["checks"]["redis"] == "ok"  # this machine's Redis: no maxmemory


@pytest.mark.parametrize(
    ("memory", "ready"),
    [
        ({"maxmemory": 209715200, "maxmemory_policy": "noeviction"}, True),
        ({"maxmemory": 0, "maxmemory_policy": "allkeys-lru"}, True),  # no cap: nothing is evicted
        ({"maxmemory": 209715200, "maxmemory_policy": "volatile-lru"}, False),
        ({"maxmemory": 209715200, "maxmemory_policy": "volatile-ttl"}, False),
        ({"maxmemory": 209715200, "maxmemory_policy": "allkeys-lru"}, False),
    ],
)
def test_readyz_refuses_a_redis_that_may_evict(redis_app, redis_url, monkeypatch, capsys, memory, ready):
    """An evicting Redis drops an ended session's key (it has a TTL) and keeps the marker: the
    session's tokens would come back to life. Such a replica is not ready."""
    monkeypatch.setattr(Redis, "info", lambda self, *_args, **_kwargs: memory)
    capsys.readouterr()
    response = redis_app(redis_url).test_client().get("/readyz")
    if ready:
        assert response.status_code == 200
        return
    assert assert_problem(response, 503)["checks"] == {"database": "ok", "redis": "failed"}
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (failure,) = [line for line in logged if line["message"] == "readiness check failed"]
    assert failure["error"] == "maxmemory-policy must be noeviction"


def test_readyz_redis_client_is_bounded_in_time(redis_app, redis_url, monkeypatch):
    monkeypatch.setattr(Redis, "info", lambda self, *_args, **_kwargs: {})
    application = redis_app(redis_url)
    application.test_client().get("/readyz")
    client = application.extensions["redis"]
    kwargs = client.connection_pool.connection_kwargs
    assert 0 < kwargs["socket_timeout"] <= 2
    assert 0 < kwargs["socket_connect_timeout"] <= 2


def test_ops_routes_need_no_token_and_carry_security_headers(client):
    for url in ("/healthz", "/readyz"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


# ---------------------------------------------------------------- the database plumbing readiness relies on


class _Dialect:
    def __init__(self, name: str) -> None:
        self.name = name


def test_utc_datetime_binds_utc_aware_on_postgresql_and_naive_utc_on_sqlite():
    from datetime import UTC, datetime, timedelta, timezone

    from api.database import UTCDateTime

    column = UTCDateTime()
    local = datetime(2026, 11, 23, 21, 37, 47, tzinfo=timezone(timedelta(hours=2)))
    assert column.process_bind_param(local, _Dialect("postgresql")) == datetime(
        2026, 11, 23, 19, 37, 47, tzinfo=UTC
    )
    assert column.process_bind_param(local, _Dialect("postgresql")).tzinfo is UTC
    assert column.process_bind_param(local, _Dialect("sqlite")) == datetime(2026, 11, 23, 19, 37, 47)
    assert column.process_bind_param(None, _Dialect("sqlite")) is None


def test_utc_datetime_reads_back_timezone_aware():
    from datetime import UTC, datetime, timedelta, timezone

    from api.database import UTCDateTime

    column = UTCDateTime()
    assert column.process_result_value(datetime(2026, 1, 1, 12), None) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    aware = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=-3)))
    assert column.process_result_value(aware, None) is aware
    assert column.process_result_value(None, None) is None


def test_write_transaction_rolls_back_everything_on_error(app):
    from sqlalchemy import func, select

    from api.accounts.models import Account, Role
    from api.database import write_transaction

    with app.app_context():
        with pytest.raises(RuntimeError, match="abort the write"):
            with write_transaction() as session:
                session.add(
                    Account(username="ghost", username_key="ghost", password_hash="x", role=Role.OBSERVER)
                )
                session.flush()
                raise RuntimeError("abort the write")
        assert db.session.scalar(select(func.count()).select_from(Account)) == 0
        db.session.remove()


def test_write_transaction_ends_an_open_read_first(app):
    from sqlalchemy import func, select

    from api.accounts.models import Account, Role
    from api.database import write_transaction

    with app.app_context():
        db.session.scalar(select(func.count()).select_from(Account))
        assert db.session().in_transaction()
        with write_transaction() as session:
            session.add(
                Account(username="fresh", username_key="fresh", password_hash="x", role=Role.OBSERVER)
            )
        assert db.session.scalar(select(func.count()).select_from(Account)) == 1
        db.session.remove()


def test_configure_engine_sets_sqlite_pragmas_and_begin_modes(tmp_path):
    from sqlalchemy import create_engine, event

    from api.database import SQLITE_BUSY_TIMEOUT_MS, configure_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    configure_engine(engine)
    begins: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("BEGIN"):
            begins.append(statement)

    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
            assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
            connection.rollback()
            with connection.execution_options(write=True).begin():
                pass
    finally:
        engine.dispose()
    assert begins == ["BEGIN DEFERRED", "BEGIN IMMEDIATE"]


def test_configure_engine_leaves_postgresql_alone():
    from sqlalchemy import create_engine, event

    from api.database import _sqlite_begin, _sqlite_connect, configure_engine

    engine = create_engine(UNREACHABLE_POSTGRES)
    configure_engine(engine)
    assert not event.contains(engine, "connect", _sqlite_connect)
    assert not event.contains(engine, "begin", _sqlite_begin)
    engine.dispose()


# ---------------------------------------------------------------- outages


def test_database_down_is_503_problem_with_retry_after(make_app, make):
    account = make.account()
    down = make_app("postgresql+psycopg://127.0.0.1:1/nothing").test_client()
    response = down.get("/api/v1/auth/me", headers=account["headers"])
    body = assert_problem(response, 503)
    assert response.headers["Retry-After"] == "5"
    assert "127.0.0.1" not in body["detail"] and "psycopg" not in response.get_data(as_text=True)
    ready = down.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"] == "failed"


@pytest.mark.parametrize(
    ("message", "sqlstate", "outage"),
    [
        ("connection failed: Connection refused", None, True),
        ("terminating connection due to administrator command", "57P01", True),
        ("sorry, too many clients already", "53300", True),
        ("database is locked", None, True),
        ("no such table: accounts", None, False),
        ('relation "accounts" does not exist', "42P01", False),
    ],
)
def test_database_outage_tells_an_outage_from_a_bad_query(message, sqlstate, outage):
    from sqlalchemy.exc import OperationalError

    from api.problems import database_outage

    cause = type("DriverError", (Exception,), {"sqlstate": sqlstate})(message)
    assert database_outage(OperationalError("SELECT 1", {}, cause)) is outage


# ---------------------------------------------------------------- connections and transactions


def _postgresql_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL behaviour: runs in the PostgreSQL pass")


def test_postgresql_reads_leave_no_transaction_and_writes_open_one(app, db_url):
    from psycopg.pq import TransactionStatus
    from sqlalchemy import select, text

    from api.database import write_transaction

    _postgresql_only(db_url)
    with app.app_context():
        assert db.session.scalar(select(1)) == 1
        reading = db.session.connection().connection.dbapi_connection
        # Autocommit: no BEGIN was sent before the read, so there is nothing to roll back after it.
        assert reading.autocommit and reading.info.transaction_status == TransactionStatus.IDLE
        with write_transaction() as session:
            writing = session.connection().connection.dbapi_connection
            assert session.scalar(text("SELECT current_setting('transaction_isolation')")) == "read committed"
            assert writing.info.transaction_status == TransactionStatus.INTRANS
        assert db.session.scalar(select(1)) == 1  # the next read is back in autocommit
        assert db.session.connection().connection.dbapi_connection.autocommit
        db.session.remove()


def _pooled_connection(app: Flask) -> Any:
    """The one connection in the app's pool, back in the pool: its DBAPI object."""
    with app.app_context():
        db.engine.dispose()
        connection = db.session.connection().connection.dbapi_connection
        db.session.remove()  # back to the pool, where it waits for the next request
    return connection


def _kill(app: Flask, connection: Any) -> None:
    """What a database restart does to a pooled connection: PostgreSQL ends its backend; a
    SQLite connection (in-process, nothing to restart) is closed under the pool's feet."""
    from sqlalchemy import text

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        connection.close()
        return
    with app.app_context():
        db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": connection.info.backend_pid})
        db.session.remove()


def _served_after_a_kill(
    make_app: Any, app: Flask, monkeypatch: Any, ping_after_idle: float
) -> tuple[Flask, Any]:
    """An app whose one pooled connection was killed while it waited, pinged after this idle time."""
    import api.database

    served = make_app()
    dead = _pooled_connection(served)
    _kill(app, dead)
    monkeypatch.setattr(api.database, "PING_AFTER_IDLE_SECONDS", ping_after_idle)
    return served, dead


def test_a_dead_pooled_connection_idle_long_enough_is_pinged_and_replaced(make_app, app, make, monkeypatch):
    """A connection killed while it sat in the pool is pinged before use (it has been idle) and
    replaced: the request never sees it."""
    account = make.account()
    served, dead = _served_after_a_kill(make_app, app, monkeypatch, ping_after_idle=0.0)
    client = served.test_client()
    assert client.get("/api/v1/auth/me", headers=account["headers"]).status_code == 200
    with served.app_context():
        assert db.session.connection().connection.dbapi_connection is not dead
        db.session.remove()


def test_a_connection_killed_in_a_busy_pool_costs_one_503_then_heals(
    make_app, app, db_url, make, monkeypatch
):
    """Not idle long enough to be pinged: the one request that meets the dead connection is a
    503 (a database outage, told apart from a bug), and the pool replaces it for the next."""
    _postgresql_only(db_url)
    account = make.account()
    served, _dead = _served_after_a_kill(make_app, app, monkeypatch, ping_after_idle=3600.0)
    client = served.test_client()
    assert_problem(client.get("/api/v1/auth/me", headers=account["headers"]), 503)
    assert client.get("/api/v1/auth/me", headers=account["headers"]).status_code == 200
