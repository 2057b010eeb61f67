"""The test suite never empties a database it was not made for (issue: `make test` on `mydb`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.conftest import REDIS_MARK, claim_test_redis, postgres_server
from tests.databases import refusal_to_empty
from tests.server import ROOT, hermetic_environ


@pytest.mark.parametrize("name", ["test", "test_slow", "resistance_test", "test_2"])
def test_test_database_names_may_be_emptied(name):
    assert refusal_to_empty(f"postgresql+psycopg://127.0.0.1:5432/{name}") is None


@pytest.mark.parametrize("name", ["mydb", "resistance", "testing", "latest", "contest", "test-db", ""])
def test_other_database_names_are_refused_with_a_clear_message(name):
    message = refusal_to_empty(f"postgresql+psycopg://127.0.0.1:5432/{name}")
    assert message is not None
    assert f"database {name!r}" in message and "TEST_DATABASE_URL" in message


@pytest.fixture
def users_database() -> Any:
    """A PostgreSQL database `resistance_userdata` holding one row of someone's data."""
    server = postgres_server()
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS resistance_userdata"))
        connection.execute(text("CREATE DATABASE resistance_userdata"))
    url = make_url(server).set(database="resistance_userdata").render_as_string(hide_password=False)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE precious (note text)"))
        connection.execute(text("INSERT INTO precious VALUES ('keep me')"))
    yield url, engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS resistance_userdata"))
    admin.dispose()


def test_suite_on_a_users_database_refuses_and_leaves_it_untouched(users_database):
    url, engine = users_database
    environ = hermetic_environ(TEST_DATABASE_URL=url)
    result = subprocess.run(  # noqa: S603 - this interpreter, running pytest on one test
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_ops.py",
            "-k",
            "healthz",
        ],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert (
        "refusing to run the PostgreSQL pass on database 'resistance_userdata'"
        in result.stdout + result.stderr
    )
    with engine.connect() as connection:
        assert connection.execute(text("SELECT note FROM precious")).scalar_one() == "keep me"


def test_redis_database_with_foreign_keys_is_refused(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(REDIS_MARK)
        client.set("someone:else", "precious")
        with pytest.raises(pytest.exit.Exception, match="holds keys the test suite did not write"):
            claim_test_redis(client, redis_url, claimed=set())
        assert client.get("someone:else") == b"precious"
        client.set(REDIS_MARK, "1")  # the suite's own database again: emptied and marked
        claim_test_redis(client, redis_url, claimed=set())
        assert client.get("someone:else") is None and client.exists(REDIS_MARK)
    finally:
        client.close()


def test_make_test_refuses_a_users_database_before_running_anything():
    result = subprocess.run(  # noqa: S603 - make, in this repository, with a database named by the user
        ["make", "-n", "test"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": "postgresql+psycopg://127.0.0.1:5432/mydb"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    first = [line for line in result.stdout.splitlines() if "tests.databases" in line or "pytest" in line][0]
    assert "tests.databases postgresql+psycopg://127.0.0.1:5432/mydb" in first  # the check comes first
    check = subprocess.run(  # noqa: S603 - this interpreter, the check make runs
        [sys.executable, "-m", "tests.databases", "postgresql+psycopg://127.0.0.1:5432/mydb"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 4 and "database 'mydb'" in check.stderr


def children(pid: int, command: bytes = b"") -> list[int]:
    """Process ids whose parent is `pid` and whose command line holds `command` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) != pid:
                        continue
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if command in cmdline.read():
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
    return found


def test_sigterm_to_the_suite_stops_the_servers_it_started():
    """A cancelled run (CI, `timeout`, `kill`) must not leave gunicorn, nginx or databases behind."""
    process = subprocess.Popen(  # noqa: S603 - this interpreter, running pytest on one module
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_wire_faults.py"],
        cwd=ROOT,
        env=hermetic_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        servers: list[int] = []
        while not servers and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
            # The gunicorn master (in a process group of its own), not any short-lived helper
            # pytest's start-up may spawn before conftest's SIGTERM handler is installed.
            servers = children(process.pid, b"gunicorn")
        assert servers, "the module's gunicorn never started"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "KeyboardInterrupt: signal 15" in output, output
    for pid in servers:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower(), (
            pid
        )
