"""Slow clients (slowloris) cannot take the server down: a real gunicorn keeps answering.

Fifty raw sockets hold connections open the ways a slow or hostile client does — headers
trickled one line at a time, a body trickled one byte at a time after complete headers with a
Content-Length, and connections that send nothing at all — and a connection the server closes
is opened again at once, so the pressure lasts the whole test. Meanwhile an ordinary client must
get `GET /healthz` within a second, again and again, and a real authenticated walk (register,
log in, list survivors) must work. Both serving shapes of the README are covered: `make run`'s
(one worker, no Redis) on the suite's database, and production's (PostgreSQL, REDIS_URL, two
workers) in the PostgreSQL pass.

With gunicorn's gthread worker each of these connections held one of the worker's few threads
while it waited for the rest of the request, so fifty of them starved everyone else. The gevent
worker that replaced it (gunicorn.conf.py) serves every connection in a greenlet on one thread,
so what must never block that thread is tested here too: a query waiting on PostgreSQL, and a
password hash (Argon2, tens of milliseconds of CPU).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import gevent
import httpx
import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from security.passwords import Passwords
from tests.conftest import PASSWORD, unique_name
from tests.server import (
    GunicornServer,
    hermetic_environ,
    log_problems,
    run_to_exit,
    server_environ,
)

HEADER_TRICKLERS = 20
BODY_TRICKLERS = 20
SILENT = 10
TICK_SECONDS = 0.5  # one header line, or one body byte, per tick and connection
SETTLE_SECONDS = 1.5  # let every slow client get its connection in and trickle a few times
PROBES = 6
PROBE_GAP_SECONDS = 0.3
HEALTHZ_DEADLINE = 1.0
PROBE_TIMEOUT = 3.0  # a probe that hangs is a failure, told apart from a slow one, but bounded
WALK_TIMEOUT = 10.0

_PREAMBLE = {
    # An incomplete request head: one more header line follows every tick, the blank line never.
    "header": b"GET /api/v1/survivors HTTP/1.1\r\nHost: x\r\n",
    # A complete head promising a body that then arrives one byte per tick.
    "body": (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    ),
    "silent": b"",
}
_TICK = {"header": b"X-Slow: 1\r\n", "body": b" ", "silent": b""}


class SlowClients:
    """Raw sockets to 127.0.0.1:port that trickle a request, each re-opened when the server drops it.

    One thread drives them all, one tick every TICK_SECONDS, until `close()`; every socket is
    closed there. `opened` counts connections made (more than the number of clients when the
    server hangs up on slow ones, as the gevent worker does after `keepalive` seconds of headers).
    """

    def __init__(self, port: int, kinds: list[str]) -> None:
        self.port = port
        self.kinds = kinds
        self.sockets: list[socket.socket | None] = [None] * len(kinds)
        self.opened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def __enter__(self) -> SlowClients:
        for index in range(len(self.kinds)):
            self._open(index)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def held(self) -> int:
        """How many of the clients have a connection open right now."""
        return sum(sock is not None for sock in self.sockets)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for index, sock in enumerate(self.sockets):
            if sock is not None:
                sock.close()
            self.sockets[index] = None

    def _open(self, index: int) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=1.0)
        except OSError:
            return  # tried again on the next tick
        self.opened += 1
        sock.setblocking(False)  # a few bytes at a time never fill the buffer; peeks must not wait
        try:
            sock.sendall(_PREAMBLE[self.kinds[index]])
        except OSError:
            sock.close()
            return
        self.sockets[index] = sock

    def _tick(self, index: int) -> None:
        sock = self.sockets[index]
        if sock is None:
            self._open(index)
            return
        try:
            if _closed_by_server(sock):
                raise ConnectionResetError
            sock.sendall(_TICK[self.kinds[index]])
        except OSError:
            sock.close()
            self.sockets[index] = None
            self._open(index)

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            for index in range(len(self.kinds)):
                if self._stop.is_set():
                    return
                self._tick(index)


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server hung up (or answered, which for a slow client means it is done)."""
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False  # nothing to read: still open and waiting for us
    return True


def healthz_latencies(base_url: str) -> list[float]:
    """Seconds each of PROBES `GET /healthz` took, each on a new connection (PROBE_TIMEOUT: hung)."""
    latencies = []
    # No keep-alive: every probe connects anew, as a load balancer's health check does.
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=base_url, timeout=PROBE_TIMEOUT, limits=fresh) as http:
        for _ in range(PROBES):
            started = time.monotonic()
            try:
                response = http.get("/healthz")
            except httpx.TimeoutException:
                latencies.append(PROBE_TIMEOUT)
                break  # starved: no need to wait for more
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200, response.text
            time.sleep(PROBE_GAP_SECONDS)
    return latencies


def assert_healthz_prompt(base_url: str) -> None:
    latencies = healthz_latencies(base_url)
    assert max(latencies) < HEALTHZ_DEADLINE, [round(seconds, 3) for seconds in latencies]


def authenticated_walk(base_url: str) -> None:
    """Register, log in and list survivors, as a new client would; every step must succeed."""
    username = unique_name("patient")
    with httpx.Client(base_url=base_url, timeout=WALK_TIMEOUT) as http:
        register = http.post("/api/v1/auth/register", json={"username": username, "password": PASSWORD})
        assert register.status_code == 201, register.text
        login = http.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        listing = http.get("/api/v1/survivors", headers={"Authorization": f"Bearer {token}"})
        assert listing.status_code == 200, listing.text


@contextlib.contextmanager
def serving(environ: dict[str, str], log: Path) -> Iterator[GunicornServer]:
    """A gunicorn with gunicorn.conf.py's own GUNICORN_THREADS; after it, nothing went wrong in its log."""
    environ = {key: value for key, value in environ.items() if key != "GUNICORN_THREADS"}
    with GunicornServer(environ, log) as server:
        server.mark()
        yield server
        problems = log_problems(server.output_since_mark())
        assert not problems, "\n".join(problems)


def assert_served_under_slow_clients(server: GunicornServer) -> None:
    """Healthz within HEALTHZ_DEADLINE before and after an authenticated walk, all under 50 slow clients."""
    kinds = ["header"] * HEADER_TRICKLERS + ["body"] * BODY_TRICKLERS + ["silent"] * SILENT
    with SlowClients(server.port, kinds) as slow:
        time.sleep(SETTLE_SECONDS)
        assert slow.held() == len(kinds), f"only {slow.held()} of {len(kinds)} slow clients are connected"
        assert_healthz_prompt(server.base_url)
        authenticated_walk(server.base_url)
        assert_healthz_prompt(server.base_url)
        assert slow.held() >= len(kinds) - 2  # the pressure lasted (a client may be reconnecting)


@pytest.fixture
def postgresql_url(db_url: str) -> str:
    """The suite's database when it is PostgreSQL (the second pass of `make test`); else skip."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: this test runs in the PostgreSQL pass")
    return db_url


@pytest.mark.gunicorn
def test_healthz_answers_within_a_second_while_50_slow_clients_hold_the_make_run_shape(
    app: Flask,  # migrates the suite's database, and empties it after the test
    db_url: str,
    tmp_path: Path,
):
    # make run's shape: one worker, no Redis (SQLite in the first pass, PostgreSQL in the second).
    with serving(server_environ(db_url, WEB_CONCURRENCY="1"), tmp_path / "gunicorn.log") as server:
        assert_served_under_slow_clients(server)


@pytest.mark.gunicorn
def test_healthz_answers_within_a_second_while_50_slow_clients_hold_the_production_shape(
    app: Flask,  # migrates the suite's database, and empties it after the test
    postgresql_url: str,
    redis_url: str,
    tmp_path: Path,
):
    environ = server_environ(postgresql_url, REDIS_URL=redis_url, WEB_CONCURRENCY="2")
    with serving(environ, tmp_path / "gunicorn.log") as server:
        assert_served_under_slow_clients(server)


@pytest.mark.gunicorn
def test_healthz_answers_within_a_second_while_a_request_waits_on_a_postgresql_lock(
    app: Flask,  # migrates the suite's database, and empties it after the test
    postgresql_url: str,
    tmp_path: Path,
):
    """psycopg's wait must yield to the worker's other connections (gunicorn.conf.py's
    post_worker_init): with the wait it chose in the unpatched master, one login waiting on a
    lock froze the only worker, /healthz with it."""
    waiting: dict[str, int] = {}

    def log_in() -> None:
        body = {"username": unique_name("waiter"), "password": PASSWORD}
        response = httpx.post(f"{server.base_url}/api/v1/auth/login", json=body, timeout=WALK_TIMEOUT)
        waiting["status"] = response.status_code

    engine = create_engine(postgresql_url)
    with serving(server_environ(postgresql_url, WEB_CONCURRENCY="1"), tmp_path / "gunicorn.log") as server:
        login = threading.Thread(target=log_in)
        try:
            with engine.connect() as holder:
                holder.execute(text("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE"))
                login.start()
                time.sleep(0.5)  # the login is now waiting for the lock, inside the worker
                assert "status" not in waiting
                assert_healthz_prompt(server.base_url)
                holder.rollback()  # releases the lock
        finally:
            login.join(timeout=WALK_TIMEOUT)
            engine.dispose()
        assert waiting == {"status": 401}  # it went on once the lock was gone


def _serving_setting(name: str, **settings: str) -> str:
    """A setting as gunicorn.conf.py computes it under `settings` (in a process of its own)."""
    code = f"import runpy; print(runpy.run_path('gunicorn.conf.py')[{name!r}])"
    environ = hermetic_environ(JWT_SECRET_KEY="slow-clients-" + "k7m2p9q4" * 5, **settings)
    result = run_to_exit([sys.executable, "-c", code], environ)
    assert result.returncode == 0, result.stdout
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("settings", "worker_class"),
    [
        ({"DATABASE_URL": "sqlite:////tmp/resistance-unused.db"}, "gevent"),
        ({"DATABASE_URL": "postgresql+psycopg://db.internal/resistance"}, "gevent"),
        (
            {
                "DATABASE_URL": "postgresql+psycopg://db.internal/resistance",
                "REDIS_URL": "redis://cache.internal:6379/0",
            },
            "gevent",
        ),
        (
            {
                "DATABASE_URL": "sqlite:////tmp/resistance-unused.db",
                "REDIS_URL": "redis://cache.internal:6379/0",
            },
            "gthread",
        ),
    ],
    ids=["sqlite", "postgresql", "postgresql-redis", "sqlite-redis"],
)
def test_worker_class_is_gevent_except_for_sqlite_with_redis(settings: dict[str, str], worker_class: str):
    # SQLite with REDIS_URL keeps gthread: a revocation writes Redis inside its SQLite write
    # transaction, and under gevent a second write in that worker would wait in C for a lock
    # whose holder can never run again (see gunicorn.conf.py).
    assert _serving_setting("worker_class", **settings) == worker_class


def test_hash_in_a_greenlet_runs_off_the_event_loop_in_native_threads():
    passwords = Passwords()  # the real cost profile: long enough for the loop to notice
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        while True:
            gevent.sleep(0.001)
            ticks += 1

    ticker = gevent.spawn(tick)
    try:
        stored = gevent.spawn(passwords.hash, PASSWORD).get(timeout=10)
        hashed_while = ticks
        checks = [gevent.spawn(passwords.verify, stored, guess) for guess in (PASSWORD, PASSWORD + "x")]
        results = [check.get(timeout=10) for check in checks]
    finally:
        ticker.kill()
    assert hashed_while >= 3  # the hub kept running other greenlets while the hash was computed
    assert results == [(True, None), (False, None)]


def test_hash_outside_a_greenlet_is_a_plain_call(monkeypatch: pytest.MonkeyPatch):
    passwords = Passwords("fast-tests")

    def no_hub() -> None:
        raise AssertionError("a plain call touched gevent's hub")

    monkeypatch.setattr("security.passwords.get_hub", no_hub)

    stored = passwords.hash(PASSWORD)

    assert passwords.verify(stored, PASSWORD) == (True, None)
