"""Backups that restore (`flask backup create` / `flask backup restore`, api/backup.py), on SQLite
and PostgreSQL alike in every pass: a restored database serves the same survivors, inventories,
trades and reports, and nothing from before the restore (a session, an ETag, a Redis copy) is
taken for what it restored."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask_migrate import upgrade

from api import mirror
from tests.conftest import PASSWORD, Factory, assert_problem, build_app, dispose, scratch_databases

READS = [
    "/api/v1/survivors?page_size=100",
    "/api/v1/trades?page_size=100",
    "/api/v1/reports/infection",
    "/api/v1/reports/infected-survivors",
    "/api/v1/reports/resources",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(source URL, empty target URL) of one kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'source.db'}", f"sqlite:///{tmp_path / 'target.db'}"
        return
    with scratch_databases("backup_source", "backup_target") as (_server, (source, target)):
        yield source, target


@pytest.fixture
def source(databases: tuple[str, str]) -> Iterator[Any]:
    application = build_app(databases[0])
    with application.app_context():
        upgrade(directory=application.extensions["migrate"].directory)
    yield application
    dispose(application)


def _records(make: Factory) -> dict[str, Any]:
    """Survivors with inventories, an accepted trade, an infection: through HTTP, as clients do."""
    ada, bob = make.survivor(name="Ada"), make.survivor(name="Bob")
    trade = make.trade(ada, bob)
    accepted = make.client.post(f"/api/v1/trades/{trade['id']}/accept", headers=bob["owner"]["headers"])
    assert accepted.status_code == 200
    make.infect(make.survivor(name="Cleo"))
    return {"ada": ada, "observer": make.account("observer")}


def _read(client: Any, headers: dict[str, str], ids: list[str]) -> dict[str, Any]:
    paths = (
        READS + [f"/api/v1/survivors/{i}" for i in ids] + [f"/api/v1/survivors/{i}/inventory" for i in ids]
    )
    bodies = {}
    for path in paths:
        response = client.get(path, headers=headers)  # an infected survivor's inventory is 403
        body = response.get_json()
        body.pop("request_id", None)
        bodies[path] = (response.status_code, body)
    return bodies


def test_a_restored_backup_serves_the_same_records_and_nothing_from_before(databases, source, tmp_path):
    make = Factory(source, source.test_client())
    records = _records(make)
    observer = records["observer"]
    ids = [item["id"] for item in make.client.get(READS[0], headers=observer["headers"]).get_json()["items"]]
    before = _read(make.client, observer["headers"], ids)
    ada_etag = make.client.get(
        f"/api/v1/survivors/{records['ada']['id']}", headers=observer["headers"]
    ).headers["ETag"]
    list_etag = make.client.get(READS[0], headers=observer["headers"]).headers["ETag"]

    path = tmp_path / "resistance.backup"
    created = source.test_cli_runner().invoke(args=["backup", "create", str(path)])
    assert created.exit_code == 0, created.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    restored = build_app(databases[1])
    try:
        result = restored.test_cli_runner().invoke(args=["backup", "restore", str(path)])
        assert result.exit_code == 0, result.output
        client = restored.test_client()
        # Every session ended with the restore: the old token is refused, a new login works.
        assert_problem(client.get(READS[0], headers=observer["headers"]), 401)
        login = client.post(
            "/api/v1/auth/login", json={"username": observer["username"], "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
        assert _read(client, headers, ids) == before  # updated_at included: nothing was touched
        # An ETag from before the restore names nothing restored: 200, never a false 304.
        for url, etag in ((f"/api/v1/survivors/{records['ada']['id']}", ada_etag), (READS[0], list_etag)):
            assert client.get(url, headers={**headers, "If-None-Match": etag}).status_code == 200
    finally:
        dispose(restored)


def test_a_backup_never_overwrites_and_a_restore_goes_into_an_empty_database_only(
    databases, source, tmp_path
):
    existing = tmp_path / "taken"
    existing.write_text("keep me")
    refused = source.test_cli_runner().invoke(args=["backup", "create", str(existing)])
    assert refused.exit_code != 0 and "never overwrites" in refused.output
    assert existing.read_text() == "keep me"
    path = tmp_path / "resistance.backup"
    assert source.test_cli_runner().invoke(args=["backup", "create", str(path)]).exit_code == 0
    into_live = source.test_cli_runner().invoke(args=["backup", "restore", str(path)])
    assert into_live.exit_code != 0 and "restore into a new" in into_live.output
    missing = source.test_cli_runner().invoke(args=["backup", "restore", str(tmp_path / "absent")])
    assert missing.exit_code != 0 and "is not a file" in missing.output


def test_a_restore_clears_what_redis_copied_from_the_database_before(databases, source, tmp_path, redis_url):
    make = Factory(source, source.test_client())
    observer = make.account("observer")
    path = tmp_path / "resistance.backup"
    assert source.test_cli_runner().invoke(args=["backup", "create", str(path)]).exit_code == 0
    # The same account logs in again: a session the backup does not hold, of an account it does.
    tokens = make.login(observer["username"])
    after_the_backup = {"headers": {"Authorization": f"Bearer {tokens['access_token']}"}}
    replica = build_app(databases[0], REDIS_URL=redis_url)
    try:
        assert replica.test_client().get(READS[0], headers=observer["headers"]).status_code == 200
    finally:
        dispose(replica)
    store = redis.Redis.from_url(redis_url)
    try:
        assert store.keys(mirror.VALUE_KEY + "*") and store.keys("resistance:view:*")
        restored = build_app(databases[1], REDIS_URL=redis_url)
        try:
            assert restored.test_cli_runner().invoke(args=["backup", "restore", str(path)]).exit_code == 0
            assert store.keys(mirror.VALUE_KEY + "*") == [] and store.keys("resistance:view:*") == []
            assert store.get("resistance:sessions-loaded") is None
            # Found from outside: Redis answers the session check by ended keys, and a session
            # started after the backup has none; every token issued before the restore is refused.
            client = restored.test_client()
            for account in (
                observer,
                after_the_backup,
                observer,
                after_the_backup,
            ):  # refilled, then mirrored
                assert_problem(client.get("/api/v1/auth/me", headers=account["headers"]), 401)
        finally:
            dispose(restored)
    finally:
        store.close()


def test_what_cannot_be_backed_up_or_restored_is_refused_with_the_reason(databases, source, tmp_path):
    runner = source.test_cli_runner()
    nowhere = runner.invoke(args=["backup", "create", str(tmp_path / "no-such-dir" / "backup")])
    assert nowhere.exit_code != 0 and "cannot create" in nowhere.output
    garbage = tmp_path / "garbage.backup"
    garbage.write_bytes(b"not a backup at all\n" * 100)
    target = build_app(databases[1])
    try:
        refused = target.test_cli_runner().invoke(args=["backup", "restore", str(garbage)])
        assert refused.exit_code != 0 and "failed" in refused.output
        with target.app_context():  # nothing was restored: the target is still empty
            from sqlalchemy import inspect

            from api.extensions import db

            assert inspect(db.engine).get_table_names() == []
    finally:
        dispose(target)


def test_an_in_memory_database_has_no_backup_and_takes_no_restore(tmp_path):
    memory = build_app("sqlite://")
    try:
        runner = memory.test_cli_runner()
        created = runner.invoke(args=["backup", "create", str(tmp_path / "backup")])
        assert created.exit_code != 0 and "in-memory" in created.output
        (tmp_path / "backup").write_bytes(b"x")
        restored = runner.invoke(args=["backup", "restore", str(tmp_path / "backup")])
        assert restored.exit_code != 0 and "in-memory" in restored.output
    finally:
        dispose(memory)


def test_without_postgresqls_client_programs_a_backup_says_what_to_install(tmp_path, monkeypatch):
    from api import backup

    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no pg_dump on it
    with pytest.raises(backup.BackupError, match="pg_dump is not installed"):
        backup._tool("pg_dump")  # noqa: SLF001 - the one place both commands find their tools
