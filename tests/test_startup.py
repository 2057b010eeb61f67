"""The process start-up: first-start admin, refusals of bad settings, clean stop, `flask db upgrade`."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, inspect

from tests.server import (
    ADMIN_PASSWORD,
    GunicornServer,
    free_port,
    gunicorn_command,
    hermetic_environ,
    log_problems,
    run_to_exit,
    server_environ,
)

pytestmark = pytest.mark.gunicorn

GENERATED = re.compile(r"Created admin account 'admin' with password: (\S+)")
GOOD_SECRET = "startup-secret-" + "q7w8e9r0" * 5


def login(server: GunicornServer, username: str, password: str) -> int:
    with server.client() as client:
        response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
        if response.status_code != 200:
            return response.status_code
        me = client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
        )
    assert me.json()["role"] == "admin"
    return 200


def assert_one_line_refusal(result, variable: str) -> str:
    """The start failed with a non-zero exit and exactly one line naming `variable`, no traceback."""
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode != 0, result.stdout
    assert len(lines) == 1, result.stdout
    assert "Traceback" not in result.stdout
    assert re.search(rf"\b{variable}: ", lines[0]), lines[0]
    return lines[0]


SERVING = "Resistance API serving on "


def serving_line(base_url: str) -> str:
    """What gunicorn.conf.py's when_ready prints for a server listening at base_url."""
    return f"{SERVING}{base_url}/api/v1 (reference: {base_url}/docs, spec: {base_url}/api/v1/openapi.json)"


def serving_lines(server: GunicornServer) -> list[str]:
    return [line for line in server.output().splitlines() if line.startswith(SERVING)]


def test_the_server_says_once_where_the_api_its_reference_and_its_spec_answer(
    app: Flask, db_url: str, tmp_path: Path
):
    # `make run` logs at warning and the app writes its own access lines, so without this line a
    # newcomer would not know where to point a browser or `API=` (README: the curl walk-through).
    with GunicornServer(server_environ(db_url), tmp_path / "gunicorn.log") as server:
        lines = serving_lines(server)
        assert lines == [serving_line(server.base_url)], server.output()
        urls = re.findall(r"http://[^\s,)]+", lines[0])
        with server.client() as client:
            docs, spec = client.get(urls[1]), client.get(urls[2])
    assert urls[0] == f"{server.base_url}/api/v1"
    assert docs.status_code == 200 and "text/html" in docs.headers["Content-Type"]
    assert spec.status_code == 200 and spec.json()["info"]["title"] == "Resistance API"


def test_a_unix_socket_is_named_in_words(tmp_path: Path):
    # A Unix socket (gunicorn -b unix:PATH) has no URL to click: the line says where the paths are.
    code = "import runpy; print(runpy.run_path('gunicorn.conf.py')['serving_line']('unix:/run/api.sock'))"
    environ = hermetic_environ(JWT_SECRET_KEY=GOOD_SECRET, DATABASE_URL=f"sqlite:///{tmp_path}/u.db")

    result = run_to_exit([sys.executable, "-c", code], environ)

    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == (
        "Resistance API serving on unix:/run/api.sock "
        "(API under /api/v1, reference /docs, spec /api/v1/openapi.json)"
    )


def test_first_start_creates_admin_with_admin_password(app: Flask, db_url: str, tmp_path: Path):
    server = GunicornServer(server_environ(db_url), tmp_path / "gunicorn.log")
    with server:
        assert login(server, "admin", ADMIN_PASSWORD) == 200
        assert login(server, "admin", ADMIN_PASSWORD + "-wrong") == 401
        assert server.stop() == 0  # SIGTERM is a graceful, successful stop
    output = server.output()
    assert not GENERATED.search(output)
    assert ADMIN_PASSWORD not in output  # a chosen password is never echoed
    assert not re.search(r"^INFO  \[resistance", output, re.MULTILINE)  # app records are JSON, once
    assert not log_problems(output), output


def test_first_start_without_admin_password_prints_one_once(app: Flask, db_url: str, tmp_path: Path):
    environ = server_environ(db_url, ADMIN_PASSWORD="")
    first = GunicornServer(environ, tmp_path / "first.log")
    with first:
        generated = GENERATED.findall(first.output())
        assert len(generated) == 1, first.output()
        assert login(first, "admin", generated[0]) == 200
    assert first.output().count(generated[0]) == 1  # printed once; never logged by the requests

    second = GunicornServer(environ, tmp_path / "second.log")
    with second:
        assert login(second, "admin", generated[0]) == 200
    assert "password" not in second.output().lower()
    assert not log_problems(first.output() + second.output())


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "abc"),
        ("JWT_ACCESS_TTL", "-1"),
        ("WEB_CONCURRENCY", "0"),
        ("DATABASE_URL", "mysql://db.example/resistance"),
        ("RATELIMIT_AUTH", "lots"),
        ("ADMIN_USERNAME", "no spaces allowed"),
        ("JWT_SECRET_KEY", "short"),
        ("GUNICORN_THREADS", "abc"),
        ("GUNICORN_THREADS", "²"),  # a digit to str.isdigit, not to int(): once a traceback
        ("PORT", "٨١٠٣"),  # Arabic-Indic digits: int() reads 8103
        ("ADMIN_PASSWORD", "short"),
    ],
)
def test_start_with_bad_variable_stops_with_one_line(variable: str, value: str, tmp_path: Path):
    database = tmp_path / "untouched.db"
    settings = {
        "DATABASE_URL": f"sqlite:///{database}",
        "JWT_SECRET_KEY": GOOD_SECRET,
        "PORT": str(free_port()),
    }
    environ = hermetic_environ(**{**settings, variable: value})

    line = assert_one_line_refusal(run_to_exit(gunicorn_command(), environ), variable)

    assert line.startswith("configuration error: ")
    if variable.endswith(("PASSWORD", "SECRET_KEY")):
        assert value not in line  # a secret, even a bad one, is not echoed
    assert not database.exists()  # refused before anything was written


def test_start_with_several_bad_variables_names_each_on_one_line(tmp_path: Path):
    environ = hermetic_environ(
        DATABASE_URL=f"sqlite:///{tmp_path}/untouched.db",
        JWT_SECRET_KEY=GOOD_SECRET,
        PORT="abc",
        JWT_ACCESS_TTL="-1",
        GUNICORN_THREADS="0",
    )

    line = assert_one_line_refusal(run_to_exit(gunicorn_command(), environ), "PORT")

    assert "JWT_ACCESS_TTL: " in line
    assert "GUNICORN_THREADS: " in line


def test_start_with_unreachable_database_stops_with_one_line(tmp_path: Path):
    environ = hermetic_environ(
        DATABASE_URL=f"sqlite:///{tmp_path}/missing-directory/resistance.db",
        JWT_SECRET_KEY=GOOD_SECRET,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
    )

    line = assert_one_line_refusal(run_to_exit(gunicorn_command(), environ), "DATABASE_URL")

    assert "unable to open database file" in line


def test_production_without_jwt_secret_refuses(tmp_path: Path):
    environ = hermetic_environ(APP_ENV="production", DATABASE_URL=f"sqlite:///{tmp_path}/p.db")

    line = assert_one_line_refusal(run_to_exit(gunicorn_command(), environ), "JWT_SECRET_KEY")

    assert "production" in line


def test_production_with_workers_but_no_redis_refuses(tmp_path: Path):
    environ = hermetic_environ(
        APP_ENV="production",
        JWT_SECRET_KEY=GOOD_SECRET,
        WEB_CONCURRENCY="3",
        DATABASE_URL=f"sqlite:///{tmp_path}/p.db",
    )

    line = assert_one_line_refusal(run_to_exit(gunicorn_command(), environ), "WEB_CONCURRENCY")

    assert "REDIS_URL" in line


def test_production_with_one_worker_and_strong_secret_starts(tmp_path: Path):
    environ = hermetic_environ(
        APP_ENV="production",
        JWT_SECRET_KEY=GOOD_SECRET,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        DATABASE_URL=f"sqlite:///{tmp_path}/p.db",
    )
    with GunicornServer(environ, tmp_path / "gunicorn.log") as server:
        assert login(server, "admin", ADMIN_PASSWORD) == 200
        with server.client() as client:
            assert client.get("/readyz").json()["checks"]["database"] == "ok"
        assert serving_lines(server) == [serving_line(server.base_url)]  # where to go
        # The database holds password hashes and session ids: its owner alone reads it, like the
        # instance secret (sqlite3 would create it 0644); SQLite gives its WAL files that mode.
        files = [tmp_path / "p.db", *tmp_path.glob("p.db-*")]  # not the empty start lock beside it
        modes = {path.name: path.stat().st_mode & 0o777 for path in files}
        assert modes == {"p.db": 0o600, "p.db-wal": 0o600, "p.db-shm": 0o600}


def test_flask_db_upgrade_on_fresh_sqlite_file_creates_schema(tmp_path: Path):
    database = tmp_path / "fresh.db"
    environ = hermetic_environ(DATABASE_URL=f"sqlite:///{database}", JWT_SECRET_KEY=GOOD_SECRET)
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"]

    first = run_to_exit(command, environ)
    again = run_to_exit(command, environ)

    assert first.returncode == 0, first.stdout
    assert again.returncode == 0, again.stdout  # at head already: a no-op, not an error
    assert "Traceback" not in first.stdout + again.stdout
    engine = create_engine(f"sqlite:///{database}")
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "accounts", "survivors", "infection_reports", "sessions"} <= tables


def test_an_existing_or_unusual_sqlite_database_is_left_as_it_is(tmp_path: Path):
    from api.database import create_private_sqlite_file

    shared = tmp_path / "shared.db"
    shared.touch(mode=0o640)
    shared.chmod(0o640)
    create_private_sqlite_file(f"sqlite:///{shared}")
    assert shared.stat().st_mode & 0o777 == 0o640  # the operator's choice
    create_private_sqlite_file(f"sqlite:///{tmp_path}/missing/dir/x.db")  # SQLite reports that one
    assert not (tmp_path / "missing").exists()
    for uri in ("sqlite://", "sqlite:///:memory:", "postgresql+psycopg://127.0.0.1/test_x"):
        create_private_sqlite_file(uri)  # nothing on disk to make
    assert sorted(path.name for path in tmp_path.iterdir()) == ["shared.db"]
