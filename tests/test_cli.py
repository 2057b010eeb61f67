"""Shell administration and first start: `flask accounts create` and api.bootstrap.prepare
(README: Administration)."""

from __future__ import annotations

import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text

import api.bootstrap as bootstrap
from api.accounts.models import Account, Role
from api.extensions import db
from api.problems import ProblemError
from tests.conftest import PASSWORD, SECRET, assert_problem
from tests.contract import SPEC_FILE
from tests.server import hermetic_environ, run_to_exit

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


def run_create(app: Flask, *args: str, stdin: str | None = PASSWORD + "\n") -> Any:
    return app.test_cli_runner().invoke(args=["accounts", "create", *args], input=stdin)


def login(client, username: str, password: str = PASSWORD) -> Any:
    return client.post(LOGIN, json={"username": username, "password": password})


def role_of(client, username: str, password: str = PASSWORD) -> str:
    tokens = login(client, username, password).get_json()
    return client.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"}).get_json()["role"]


def count_accounts(app: Flask, role: Role | None = None) -> int:
    with app.app_context():
        query = select(func.count()).select_from(Account)
        if role is not None:
            query = query.where(Account.role == role)
        return db.session.scalar(query)


# --- flask accounts create ------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "survivor", "observer"])
def test_accounts_create_with_password_on_stdin_creates_the_account(app, client, role):
    result = run_create(app, "Operator", "--role", role, "--password-stdin")
    assert result.exit_code == 0, result.output
    # the app's JSON log lines go to the same stdout: find the command's own line among them
    assert any(line.startswith(f"created {role} account Operator (") for line in result.output.splitlines())
    assert PASSWORD not in result.output
    assert role_of(client, "operator") == role


def test_accounts_create_default_role_is_survivor(app, client):
    result = run_create(app, "plainuser", "--password-stdin")
    assert result.exit_code == 0, result.output
    assert role_of(client, "plainuser") == "survivor"


def test_accounts_create_reads_only_the_first_line_without_its_line_ending(app, client):
    result = run_create(app, "crlfuser", "--password-stdin", stdin=PASSWORD + "\r\nsecond line\n")
    assert result.exit_code == 0, result.output
    assert login(client, "crlfuser").status_code == 200
    assert_problem(login(client, "crlfuser", PASSWORD + "\r"), 401)


@pytest.mark.parametrize("password", ["short", "administrator", "", "abcdefghijklmnop"])
def test_accounts_create_weak_password_fails_and_creates_nothing(app, password):
    result = run_create(app, "weakling", "--role", "admin", "--password-stdin", stdin=password + "\n")
    assert result.exit_code == 1
    assert "Error: The password is not acceptable. password:" in result.output
    assert count_accounts(app) == 0


def test_accounts_create_without_password_stdin_is_a_usage_error(app):
    result = run_create(app, "nostdin", "--role", "admin")
    assert result.exit_code == 2
    assert "--password-stdin" in result.output
    assert count_accounts(app) == 0


def test_accounts_create_refuses_a_password_option(app):
    result = run_create(app, "argvuser", "--password", PASSWORD)
    assert result.exit_code == 2
    assert count_accounts(app) == 0


def test_accounts_create_duplicate_username_fails(app, make):
    make.account("survivor", username="Existing")
    result = run_create(app, "EXISTING", "--role", "admin", "--password-stdin")
    assert result.exit_code == 1
    assert "Error: That username is taken. username: Already taken." in result.output
    assert count_accounts(app, Role.ADMIN) == 0


@pytest.mark.parametrize("username", ["ab", "bad name", "x" * 33, "ada\n"])
def test_accounts_create_malformed_username_fails(app, username):
    result = run_create(app, username, "--password-stdin")
    assert result.exit_code == 1
    assert "Error: The username is not acceptable. username:" in result.output
    assert count_accounts(app) == 0


def test_accounts_create_unknown_role_is_a_usage_error(app):
    result = run_create(app, "rooted", "--role", "root", "--password-stdin")
    assert result.exit_code == 2
    assert count_accounts(app) == 0


# --- bootstrap.prepare ----------------------------------------------------------------------


@pytest.fixture
def build(make_app):
    """Apps on the test database with extra settings."""
    return make_app


def test_prepare_creates_the_admin_with_admin_password(app, client, build, capsys):
    bootstrap.prepare(build(ADMIN_USERNAME="chief", ADMIN_PASSWORD=PASSWORD))
    assert role_of(client, "chief") == "admin"
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err
    assert "Created admin account" not in captured.err


def test_prepare_without_admin_password_prints_a_generated_one_once(app, client, build, capsys):
    bootstrap.prepare(build())
    err = capsys.readouterr().err
    prefix = "Created admin account 'admin' with password: "
    (line,) = [line for line in err.splitlines() if line.startswith(prefix)]
    generated = line[len(prefix) :].split(" ")[0]
    assert len(generated) >= 20
    assert role_of(client, "admin", generated) == "admin"

    bootstrap.prepare(build())
    assert prefix not in capsys.readouterr().err
    assert count_accounts(app, Role.ADMIN) == 1
    assert login(client, "admin", generated).status_code == 200


def test_prepare_second_call_creates_nothing(app, build):
    bootstrap.prepare(build(ADMIN_PASSWORD=PASSWORD))
    bootstrap.prepare(build(ADMIN_USERNAME="another", ADMIN_PASSWORD=PASSWORD))
    assert count_accounts(app) == 1


def test_prepare_keeps_an_existing_admin_of_another_name(app, client, make, build, capsys):
    make.account("admin", username="already")
    bootstrap.prepare(build())
    assert count_accounts(app, Role.ADMIN) == 1
    assert "Created admin account" not in capsys.readouterr().err
    assert_problem(login(client, "admin"), 401)


@pytest.mark.parametrize("weak", ["short", "administrator", "aaaaaaaaaaaaaaaa"])
def test_prepare_weak_admin_password_exits_naming_it(app, build, weak):
    with pytest.raises(SystemExit) as exited:
        bootstrap.prepare(build(ADMIN_PASSWORD=weak))
    message = str(exited.value.code)
    assert message.startswith("configuration error: ADMIN_PASSWORD: ")
    assert weak not in message
    assert count_accounts(app) == 0


def test_prepare_admin_username_of_a_non_admin_exits_naming_it(app, make, build):
    make.account("survivor", username="admin")
    with pytest.raises(SystemExit) as exited:
        bootstrap.prepare(build(ADMIN_PASSWORD=PASSWORD))
    assert str(exited.value.code).startswith("configuration error: ADMIN_USERNAME: 'admin'")
    assert count_accounts(app, Role.ADMIN) == 0


def test_prepare_admin_created_concurrently_by_another_replica_is_fine(app, build, monkeypatch, capsys):
    from api.accounts.services import create_account

    def other_replica_won(username: str, password: str | None) -> str | None:
        create_account(username, PASSWORD, Role.ADMIN)  # the other replica's insert lands first
        raise ProblemError(409, "That username is taken.", errors={"username": ["Already taken."]})

    monkeypatch.setattr(bootstrap, "ensure_admin", other_replica_won)
    bootstrap.prepare(build())
    assert count_accounts(app, Role.ADMIN) == 1
    assert "Created admin account" not in capsys.readouterr().err


def test_prepare_other_account_refusal_exits_naming_admin_password(app, build, monkeypatch):
    def refused(username: str, password: str | None) -> str | None:
        raise ProblemError(422, "The password is not acceptable.", errors={"password": ["Too common."]})

    monkeypatch.setattr(bootstrap, "ensure_admin", refused)
    with pytest.raises(SystemExit) as exited:
        bootstrap.prepare(build(ADMIN_PASSWORD=PASSWORD))
    assert exited.value.code == "configuration error: ADMIN_PASSWORD: Too common."


def test_prepare_unreachable_database_exits_naming_database_url(app, build, tmp_path: Path):
    url = "sqlite:///" + str(tmp_path / "missing-directory" / "resistance.db")
    with pytest.raises(SystemExit) as exited:
        bootstrap.prepare(build(url, ADMIN_PASSWORD=PASSWORD))
    message = str(exited.value.code)
    assert message.startswith("database error: DATABASE_URL: ")
    assert "\n" not in message
    assert "Traceback" not in message


def test_prepare_on_an_in_memory_database_needs_no_start_lock(app, build, capsys):
    bootstrap.prepare(build("sqlite://", ADMIN_PASSWORD=PASSWORD))
    assert "password" not in capsys.readouterr().err


PREPARE = "from api import create_app; from api.bootstrap import prepare; prepare(create_app())"


@pytest.fixture
def fresh_url(db_url: str, tmp_path: Path):
    """An empty database of the run's kind: a new SQLite file, or a new PostgreSQL database."""
    if not db_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    from sqlalchemy.engine import make_url

    name = f"fresh_{uuid.uuid4().hex[:12]}"
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(db_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def test_replicas_starting_together_on_an_empty_database_all_start(fresh_url: str):
    # Three processes migrate and seed at once, as replicas do when a cluster starts: the start
    # lock lets one migrate while the others wait, then they find nothing left to do.
    environ = hermetic_environ(DATABASE_URL=fresh_url, JWT_SECRET_KEY=SECRET, ADMIN_PASSWORD=PASSWORD)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(
            pool.map(lambda _: run_to_exit([sys.executable, "-c", PREPARE], environ, 60), range(3))
        )
    for result in results:
        assert result.returncode == 0, result.stdout
    engine = create_engine(fresh_url)
    try:
        with engine.connect() as connection:
            admins = connection.execute(text("SELECT count(*) FROM accounts WHERE role = 'admin'")).scalar()
            heads = connection.execute(text("SELECT count(*) FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert (admins, heads) == (1, 1)


class _RecordingConnection:
    """Stands in for a PostgreSQL connection: records the statements start_lock sends."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def execution_options(self, **options: Any) -> _RecordingConnection:
        self.log.append(f"options {options}")
        return self

    def execute(self, statement: Any, parameters: dict[str, Any]) -> None:
        self.log.append(f"{statement} {parameters['key']}")

    def __enter__(self) -> _RecordingConnection:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.log.append("closed")


def test_start_lock_on_postgresql_holds_an_advisory_lock_around_the_block():
    # The real lock is proven by test_replicas_starting_together_on_an_empty_database_all_start
    # on PostgreSQL; this pins the statements, in order, on machines without one.
    log: list[str] = []
    engine: Any = type("Engine", (), {})()
    engine.dialect = type("Dialect", (), {"name": "postgresql"})()
    engine.connect = lambda: _RecordingConnection(log)
    with bootstrap.start_lock(engine):
        log.append("migrate")
    key = bootstrap.START_LOCK_KEY
    assert log == [
        "options {'isolation_level': 'AUTOCOMMIT'}",
        f"SELECT pg_advisory_lock(:key) {key}",
        "migrate",
        f"SELECT pg_advisory_unlock(:key) {key}",
        "closed",
    ]


def test_start_lock_on_a_sqlite_file_holds_a_file_lock_around_the_block(tmp_path: Path):
    # The real race is test_replicas_starting_together_on_an_empty_database_all_start, in
    # processes on SQLite; this one holds in every pass, in this process.
    import fcntl

    engine = create_engine(f"sqlite:///{tmp_path / 'resistance.db'}")

    def locked_elsewhere() -> bool:
        with open(tmp_path / "resistance.db.start-lock", "a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False

    try:
        with bootstrap.start_lock(engine):
            assert locked_elsewhere()
        assert not locked_elsewhere()
    finally:
        engine.dispose()


def test_spec_write_writes_the_openapi_document_make_openapi_commits(app, tmp_path):
    """`flask spec write PATH` (make openapi): the committed openapi.yaml, byte for byte."""
    target = tmp_path / "openapi.yaml"
    result = app.test_cli_runner().invoke(args=["spec", "write", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == SPEC_FILE.read_text(encoding="utf-8")
