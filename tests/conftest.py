"""Fixtures: an app on a real database (SQLite, or PostgreSQL via TEST_DATABASE_URL), clients, factories.

The suite runs twice under `make test`: once on a SQLite file, once on PostgreSQL. Without a
reachable PostgreSQL the second pass is skipped with a clear message, unless REQUIRE_SERVICES=1
(CI), where that is a failure.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, make_url, text

from api import create_app
from api.extensions import db
from api.redis_store import HISTORY_KEY
from tests.contract import ContractClient
from tests.databases import refusal_to_empty

SECRET = "test-secret-" + "x1y2z3w4" * 6
PASSWORD = "correct-battery-horse-42"
_counter = itertools.count(1)


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:  # noqa: ARG001 - pytest's hook signature
    """SIGTERM (a cancelled CI job, `timeout`, `kill`) unwinds like Ctrl-C, so every fixture's
    teardown runs and stops what it started: the servers the tests start run in process groups
    of their own, which a plain SIGTERM to pytest would leave running."""
    signal.signal(signal.SIGTERM, _interrupted)


def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database this pass runs on."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.db")


def postgres_problem(url: str) -> str | None:
    """Why PostgreSQL at `url` cannot be used, or None (the test passes and the benchmark ask)."""
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # report, not raise: the caller decides skip or fail
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return None


DEFAULT_POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/test"


def sqlite_pass_only(what: str) -> None:
    """Skip in the PostgreSQL pass a test that does not depend on the database under test: it
    already ran, the same, in the SQLite pass."""
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip(f"{what} runs in the SQLite pass only: it does not depend on the database under test")


def missing_service(message: str) -> NoReturn:
    """Skip the test for a service this machine lacks, or fail it under REQUIRE_SERVICES=1 (CI)."""
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and REQUIRE_SERVICES=1")
    pytest.skip(message)


def postgres_server() -> str:
    """The URL of the suite's PostgreSQL server (TEST_DATABASE_URL's in the PostgreSQL pass,
    else the default), for tests that need PostgreSQL in every pass; missing_service if it does
    not answer."""
    server = os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL
    if not server.startswith("postgresql"):
        server = DEFAULT_POSTGRES_URL
    problem = postgres_problem(server)
    if problem:
        missing_service(f"PostgreSQL at {server} is not reachable ({problem})")
    return server


def admin_sql(server: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE DATABASE, ALTER DATABASE…) on `server`."""
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


@contextlib.contextmanager
def scratch_databases(*suffixes: str) -> Iterator[tuple[str, list[str]]]:
    """Empty PostgreSQL databases of a test's own, dropped after it: (the server's URL, their
    URLs). Named after the suite's database plus each suffix, so two runs on one server (each
    with its own test database) never share them."""
    server = postgres_server()
    base = make_url(server)
    names = [f"{base.database}_{suffix}" for suffix in suffixes]
    drops = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names]
    admin_sql(server, *drops, *(f'CREATE DATABASE "{name}"' for name in names))
    try:
        yield server, [base.set(database=name).render_as_string(False) for name in names]
    finally:
        admin_sql(server, *drops)


def reset_postgres(url: str) -> None:
    """Drop everything in the public schema of the dedicated test database (refused for any other)."""
    refusal = refusal_to_empty(url)
    if refusal:
        raise RuntimeError(refusal)
    drop_public_schema(url)


def drop_public_schema(url: str) -> None:
    """Empty a PostgreSQL database: its public schema dropped and made again. The caller has
    decided it may (the suite: a test database; the benchmark: anything but one)."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = database_url(tmp_path_factory)
    if url.startswith("postgresql"):
        refusal = refusal_to_empty(url)
        if refusal:
            pytest.exit(refusal, returncode=4)
        problem = postgres_problem(url)
        if problem:
            message = f"PostgreSQL at {url} is not reachable ({problem})"
            if os.environ.get("REQUIRE_SERVICES") == "1":
                pytest.exit(message + " and REQUIRE_SERVICES=1", returncode=1)
            pytest.skip(message + ": skipping the PostgreSQL pass")
        reset_postgres(url)
    return url


def test_environ(db_url: str, **extra: str) -> dict[str, str]:
    """Environment-style settings for an app under test."""
    return {
        "DATABASE_URL": db_url,
        "JWT_SECRET_KEY": SECRET,
        "APP_ENV": "development",
        # Every test client is 127.0.0.1: limits get their own tests with their own low values.
        "RATELIMIT_DEFAULT": "100000/minute",
        "RATELIMIT_AUTH": "100000/minute",
        # Never the public Robot CPU: a closed loopback port (tests that need one start a stub).
        "ROBOT_CPU_URL": "http://127.0.0.1:9/robotcpu",
        **extra,
    }


@pytest.fixture(scope="session")
def app(db_url: str) -> Iterator[Flask]:
    from flask_migrate import upgrade

    application = build_app(db_url)
    with application.app_context():
        upgrade(directory=application.extensions["migrate"].directory)
    yield application
    dispose(application)


TABLES = [
    "idempotency_keys",
    "trade_events",
    "trades",
    "infection_reports",
    "survivors",
    "sessions",
    "accounts",
    "robot_cache",
]


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts from empty tables (the schema stays)."""
    yield
    if "app" not in request.fixturenames:
        return
    application: Flask = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            if db.engine.dialect.name == "postgresql":
                connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
            else:
                for table in TABLES:
                    connection.execute(text(f"DELETE FROM {table}"))
            connection.execute(
                text(
                    "UPDATE survivor_totals SET survivors = 0, infected = 0, water = 0, food = 0, "
                    "medication = 0, ammunition = 0, points_lost = 0"
                )
            )
            # Rows vanished without a write: move every cached representation out of reach.
            connection.execute(text("UPDATE data_versions SET version = version + 1"))


def build_app(url: str, **environ: str) -> Flask:
    """An app under test on `url` with extra environment-style settings."""
    return create_app(test_environ(url, **environ), TESTING=True, PASSWORD_HASH_PROFILE="fast-tests")


def dispose(application: Flask) -> None:
    """Close an extra app's database connections."""
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def make_app(app: Flask, db_url: str) -> Iterator[Any]:
    """Build more apps on the suite's database with other settings (`app` empties the tables after)."""
    built: list[Flask] = []

    def build(url: str = db_url, **environ: str) -> Flask:
        application = build_app(url, **environ)
        built.append(application)
        return application

    yield build
    for application in built:
        dispose(application)


TEST_REDIS_DB = 15
# The suite's mark in the Redis database it empties: a database holding keys but not this mark
# is someone else's, and is refused.
REDIS_MARK = "resistance-api:test-suite"


_claimed_redis: set[str] = set()


def claim_test_redis(client: Any, url: str, claimed: set[str] = _claimed_redis) -> None:
    """Empty the suite's Redis database, or stop the run if, when first used in this run, it holds
    data the suite did not write (the mark is set again after every emptying, for the next run)."""
    if url not in claimed and client.dbsize() and not client.exists(REDIS_MARK):
        pytest.exit(
            f"refusing to empty Redis database {url}: it holds keys the test suite did not write "
            f"(no {REDIS_MARK!r} key). The suite empties database {TEST_REDIS_DB} of REDIS_URL's "
            "server before each test that uses Redis: free it, or point REDIS_URL at another server.",
            returncode=4,
        )
    client.flushdb()
    client.set(REDIS_MARK, "1")
    # The emptied database is one the app already knows (api/redis_store.py), as a running
    # Redis is: what a test puts there before the app's first connection stays. The tests of a
    # data set new to the app change or delete this key themselves.
    client.set(HISTORY_KEY, client.info("replication")["master_replid"])
    claimed.add(url)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """An empty Redis database for this test (db 15 of REDIS_URL's server); skip or fail without one.

    After the test the suite's mark is set again: a test may empty the database itself (a Redis
    restart without persistence), and the next pass must still know the database as ours.
    """
    import redis

    base = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    url = base.rsplit("/", 1)[0] + f"/{TEST_REDIS_DB}" if base.count("/") > 2 else f"{base}/{TEST_REDIS_DB}"
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        claim_test_redis(client, url)
    except redis.RedisError as exc:
        client.close()
        missing_service(f"Redis at {url} is not reachable ({type(exc).__name__})")
    try:
        yield url
    finally:
        with contextlib.suppress(redis.RedisError):  # a test may have stopped this server on purpose
            client.set(REDIS_MARK, "1")
        client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The test client, holding every answer's headers to openapi.yaml (tests/contract.py)."""
    app.test_client_class = ContractClient
    return app.test_client()


def unique_name(prefix: str = "user") -> str:
    """A fresh valid username."""
    return f"{prefix}{next(_counter)}"


class Factory:
    """Make accounts, tokens and survivors through the HTTP interface, as clients do."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app = app
        self.client = client

    def account(
        self, role: str = "survivor", username: str | None = None, password: str = PASSWORD
    ) -> dict[str, Any]:
        """Create an account directly (any role) and log it in; returns ids, tokens and headers."""
        from api.accounts.services import create_account

        username = username or unique_name(role)
        with self.app.app_context():
            account = create_account(username, password, role)
            account_id = str(account.id)
        tokens = self.login(username, password)
        return {
            "id": account_id,
            "username": username,
            "password": password,
            "role": role,
            **tokens,
            "headers": {"Authorization": f"Bearer {tokens['access_token']}"},
        }

    def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        response = self.client.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def survivor_body(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": "Ada",
            "age": 34,
            "gender": "female",
            "location": {"latitude": -33.92, "longitude": 18.42},
            "inventory": {"water": 3, "food": 2, "medication": 1, "ammunition": 10},
        }
        body.update(overrides)
        return body

    def survivor(self, owner: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
        """A survivor profile: owned by `owner` (a survivor account), else a new survivor account."""
        owner = owner or self.account("survivor")
        response = self.client.post(
            "/api/v1/survivors", json=self.survivor_body(**overrides), headers=owner["headers"]
        )
        assert response.status_code == 201, response.get_json()
        return {**response.get_json(), "owner": owner}

    def infect(self, target: dict[str, Any], reporters: int = 3) -> list[dict[str, Any]]:
        """Have `reporters` fresh survivors report target (3 reaches the default threshold)."""
        made = []
        for _ in range(reporters):
            reporter = self.survivor()
            assert self.report(reporter, target["id"]).status_code == 201
            made.append(reporter)
        return made

    def report(self, reporter: dict[str, Any], survivor_id: str) -> Any:
        """reporter (a survivor dict from .survivor()) reports survivor_id."""
        return self.client.post(
            f"/api/v1/survivors/{survivor_id}/infection-reports", headers=reporter["owner"]["headers"]
        )

    def propose(
        self,
        proposer: dict[str, Any],
        partner: dict[str, Any],
        offer: dict[str, int],
        request: dict[str, int],
    ) -> Any:
        """proposer's owner proposes a trade to partner (both survivor dicts from .survivor())."""
        body = {"partner_id": partner["id"], "offer": offer, "request": request}
        return self.client.post("/api/v1/trades", json=body, headers=proposer["owner"]["headers"])

    def trade(
        self,
        proposer: dict[str, Any],
        partner: dict[str, Any],
        offer: dict[str, int] | None = None,
        request: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """A pending trade (default: 1 water for 4 ammunition)."""
        response = self.propose(proposer, partner, offer or {"water": 1}, request or {"ammunition": 4})
        assert response.status_code == 201, response.get_json()
        return response.get_json()


@pytest.fixture
def make(app: Flask, client: FlaskClient) -> Factory:
    return Factory(app, client)


@pytest.fixture
def admin(make: Factory) -> dict[str, Any]:
    return make.account("admin")


@pytest.fixture
def observer(make: Factory) -> dict[str, Any]:
    return make.account("observer")


def assert_problem(response: Any, status: int, **fields: Any) -> dict[str, Any]:
    """The response is an RFC 9457 problem of this status (and these members)."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["type"].startswith("https://resistance.example/problems/")
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    for key, value in fields.items():
        assert body[key] == value, (key, body)
    return body


def random_uuid() -> str:
    return str(uuid.uuid4())


def named(cursor: str) -> str:
    """The id of the item a Link cursor names."""
    from api.schemas import decode_cursor

    return str(decode_cursor(cursor).id)


def cursors_of(links: dict[str, dict[str, str]]) -> dict[str, tuple[str, str]]:
    """Take the cursors out of parsed links ({rel: query}): {rel: (parameter, id it names)}."""
    found = {}
    for rel, query in links.items():
        for name in ("after", "before"):
            if name in query:
                found[rel] = (name, named(query.pop(name)))
    return found


def assert_totals_match(app: Flask) -> None:
    """The survivor totals the writes keep equal a full recount of the survivor rows."""
    from api.survivors import totals

    with app.app_context():
        kept = dict(zip(totals.FIELDS, totals.current(), strict=True))
        counted = totals.recount(db.session)
        db.session.remove()
    assert kept == counted
