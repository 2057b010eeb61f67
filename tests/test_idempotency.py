"""Idempotency-Key on POSTs (docs/api.md, Idempotency-Key; api/idempotency.py), through HTTP as
clients send it: a retry gets the first answer and nothing is done twice, on SQLite and PostgreSQL
alike."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask_migrate import upgrade
from sqlalchemy import select

from api import idempotency
from api.database import server_incarnation, utcnow, write_transaction
from api.idempotency import IdempotencyKey
from api.survivors import services as survivor_services
from tests.conftest import Factory, assert_problem, build_app, dispose

SURVIVORS = "/api/v1/survivors"
REGISTER = "/api/v1/auth/register"


def keyed(account: dict[str, Any], key: str = "retry-1") -> dict[str, str]:
    return {**account["headers"], "Idempotency-Key": key}


def total(client: Any, reader: dict[str, Any]) -> int:
    return client.get(SURVIVORS, headers=reader["headers"]).get_json()["total"]


def test_a_retry_gets_the_first_answer_and_nothing_is_done_twice(client, make: Factory, observer):
    owner = make.account("survivor")
    first = client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner))
    again = client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner))
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data()
    assert (
        again.headers["Location"] == first.headers["Location"]
        and again.headers["ETag"] == first.headers["ETag"]
    )
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]  # the hooks still ran
    assert total(client, observer) == 1


def test_the_same_key_with_another_body_is_422_and_changes_nothing(client, make: Factory, observer):
    owner = make.account("survivor")
    assert client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner)).status_code == 201
    other = client.post(SURVIVORS, json=make.survivor_body(name="Eve"), headers=keyed(owner))
    assert_problem(other, 422)
    assert "Idempotency-Key" in other.get_json()["errors"]
    assert total(client, observer) == 1


def test_keys_are_per_account(client, make: Factory, observer):
    first, second = make.account("survivor"), make.account("survivor")
    for owner in (first, second):
        assert client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner)).status_code == 201
    assert total(client, observer) == 2


def test_anonymous_keys_are_per_client_ip(client):
    body = {"username": "idem_user", "password": "correct-battery-horse-42"}
    first = client.post(REGISTER, json=body, headers={"Idempotency-Key": "register-1"})
    again = client.post(REGISTER, json=body, headers={"Idempotency-Key": "register-1"})
    assert first.status_code == again.status_code == 201 and again.get_json() == first.get_json()
    elsewhere = client.post(
        REGISTER,
        json=body,
        headers={"Idempotency-Key": "register-1"},
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
    )
    assert_problem(elsewhere, 409)  # another client's key: the work is done again, and the name is taken


def test_a_refused_request_is_answered_the_same_on_a_retry(client, make: Factory):
    owner = make.account("survivor")
    make.survivor(owner)
    refused = client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner))
    assert_problem(refused, 409)  # a second profile: the savepoint rolled back, the answer is kept
    again = client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner))
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["", "k" * 256, "caf\u00e9", "tab\there"])
def test_a_malformed_key_is_400(client, make: Factory, key):
    owner = make.account("survivor")
    response = client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner, key))
    assert_problem(response, 400)
    assert "Idempotency-Key" in response.get_json()["errors"]


def test_a_key_of_255_printable_characters_is_taken(client, make: Factory):
    owner = make.account("survivor")
    key = "".join(chr(32 + i % 95) for i in range(255))
    assert client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner, key)).status_code == 201


def _claim_row(
    app: Any, owner: dict[str, Any], *, lease: timedelta, fingerprint: str = "f" * 64, **fields: Any
) -> None:
    with app.app_context(), write_transaction() as session:
        now = utcnow()
        fields.setdefault("claimed_on", session.scalar(select(server_incarnation())))  # made here
        session.add(
            IdempotencyKey(
                owner="account:" + owner["id"],
                key="retry-1",
                fingerprint=fingerprint,
                claim="someone-else",
                lease_until=now + lease,
                expires_at=now + timedelta(hours=24),
                **fields,
            )
        )


def _fingerprint(app: Any, body: dict[str, Any]) -> str:
    with app.test_request_context(SURVIVORS, method="POST", json=body):
        import hashlib

        from flask import request

        return hashlib.sha256(f"POST {SURVIVORS}\n".encode() + request.get_data()).hexdigest()


def test_a_key_still_being_processed_is_409_with_retry_after(app, client, make: Factory, observer):
    owner = make.account("survivor")
    body = make.survivor_body()
    _claim_row(app, owner, lease=timedelta(seconds=30), fingerprint=_fingerprint(app, body))
    response = client.post(SURVIVORS, json=body, headers=keyed(owner))
    assert_problem(response, 409)
    assert response.headers["Retry-After"] == "1"
    assert total(client, observer) == 0


def test_a_claim_whose_request_died_is_taken_over_by_a_retry(app, client, make: Factory, observer):
    owner = make.account("survivor")
    body = make.survivor_body()
    _claim_row(app, owner, lease=timedelta(seconds=-1), fingerprint=_fingerprint(app, body))
    assert client.post(SURVIVORS, json=body, headers=keyed(owner)).status_code == 201
    assert total(client, observer) == 1


def test_an_expired_key_is_a_new_key(app, client, make: Factory, observer):
    owner = make.account("survivor")
    _claim_row(app, owner, lease=timedelta(seconds=-1), status=201, body="{}", headers="{}")
    with app.app_context(), write_transaction() as session:
        session.get_one(IdempotencyKey, ("account:" + owner["id"], "retry-1")).expires_at = utcnow()
    assert client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner)).status_code == 201
    assert total(client, observer) == 1


def test_a_request_whose_claim_was_taken_over_commits_nothing(
    app, client, make: Factory, observer, monkeypatch
):
    owner = make.account("survivor")
    create = survivor_services.create_survivor

    def taken_over_first(*args: Any, **kwargs: Any) -> Any:
        with app.app_context(), write_transaction() as session:  # a retry took the claim over
            session.get_one(IdempotencyKey, ("account:" + owner["id"], "retry-1")).claim = "the-retry"
        return create(*args, **kwargs)

    monkeypatch.setattr(survivor_services, "create_survivor", taken_over_first)
    response = client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner))
    assert_problem(response, 409)
    assert total(client, observer) == 0


def test_a_server_error_is_not_stored_and_a_retry_does_the_work(client, make: Factory, observer, monkeypatch):
    owner = make.account("survivor")
    create = survivor_services.create_survivor

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(survivor_services, "create_survivor", create)
        raise RuntimeError("a bug")

    monkeypatch.setattr(survivor_services, "create_survivor", fails_once)
    assert_problem(client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner)), 500)
    retried = client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner))
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert total(client, observer) == 1


def test_a_commit_that_fails_releases_the_key_and_a_retry_does_the_work(
    make_app, redis_url, make: Factory, observer, monkeypatch
):
    """Found from outside: Redis refused the mirror's count-in at the request's COMMIT (503); the
    claim stayed, and every retry was a false 409 until its lease ran out."""
    from redis import Redis

    replica = make_app(REDIS_URL=redis_url)
    client = replica.test_client()
    owner = make.account("survivor")
    original = idempotency.finish_request_transaction
    failures: list[int] = []

    def redis_refuses_once() -> Any:
        if not failures:
            failures.append(1)
            monkeypatch.setattr(Redis, "pipeline", _refusing_pipeline(Redis.pipeline))
        return original()

    monkeypatch.setattr(idempotency, "finish_request_transaction", redis_refuses_once)
    assert_problem(client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner)), 503)
    monkeypatch.undo()
    retried = client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner))
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert total(client, observer) == 1


def _refusing_pipeline(pipeline: Any) -> Any:
    from redis import ConnectionError as RedisConnectionError

    def refusing(self: Any, transaction: bool = True, **kwargs: Any) -> Any:
        made = pipeline(self, transaction=transaction, **kwargs)
        if transaction:  # the mirror's count-in is a MULTI

            def refuse(*_args: Any, **_kwargs: Any) -> None:
                raise RedisConnectionError("refused")

            made.execute = refuse
        return made

    return refusing


def test_login_ignores_the_key_its_tokens_are_never_stored(client, make: Factory):
    account = make.account("survivor")
    credentials = {"username": account["username"], "password": account["password"]}
    headers = {"Idempotency-Key": "login-1"}
    first = client.post("/api/v1/auth/login", json=credentials, headers=headers)
    second = client.post("/api/v1/auth/login", json=credentials, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.get_json()["access_token"] != second.get_json()["access_token"]


def test_expired_keys_are_purged(app, client, make: Factory):
    owner = make.account("survivor")
    assert client.post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner)).status_code == 201
    with app.app_context():
        assert idempotency.purge_expired() == 0
        with write_transaction() as session:
            session.get_one(IdempotencyKey, ("account:" + owner["id"], "retry-1")).expires_at = utcnow()
    result = app.test_cli_runner().invoke(args=["idempotency-keys", "purge"])
    assert result.exit_code == 0 and "purged 1 expired" in result.output


def test_a_keyed_write_reaches_every_replica_at_once(make_app, redis_url, make: Factory):
    first, second = make_app(REDIS_URL=redis_url), make_app(REDIS_URL=redis_url)
    reader = make.account("observer")
    owner = make.account("survivor")
    assert second.test_client().get(SURVIVORS, headers=reader["headers"]).get_json()["total"] == 0
    created = first.test_client().post(SURVIVORS, json=make.survivor_body(), headers=keyed(owner))
    assert created.status_code == 201
    assert second.test_client().get(SURVIVORS, headers=reader["headers"]).get_json()["total"] == 1
    me = second.test_client().get("/api/v1/auth/me", headers=owner["headers"]).get_json()
    assert me["survivor_id"] == created.get_json()["id"]


# --- the request transaction, rule by rule ------------------------------------------------------


def test_a_request_transaction_commits_its_blocks_together_and_a_failed_block_alone_is_undone(app, make):
    from api.accounts.models import Account, Role
    from api.caching import SURVIVORS
    from api.database import (
        after_commit,
        finish_request_transaction,
        join_request_transaction,
        mark_changed,
    )
    from api.extensions import db

    ran: list[str] = []
    with app.test_request_context():
        join_request_transaction()
        with write_transaction() as session:
            session.add(
                Account(username="kept1", username_key="kept1", password_hash="x", role=Role.OBSERVER)
            )
            after_commit(lambda: ran.append("first"))
        with pytest.raises(RuntimeError), write_transaction() as session:
            session.add(
                Account(username="undone", username_key="undone", password_hash="x", role=Role.OBSERVER)
            )
            mark_changed(SURVIVORS)
            after_commit(lambda: ran.append("undone"))
            raise RuntimeError("this block fails")
        with write_transaction() as session:  # the transaction is begun: a SAVEPOINT of it
            session.add(
                Account(username="kept2", username_key="kept2", password_hash="x", role=Role.OBSERVER)
            )
        assert ran == []  # nothing runs before the request transaction commits
        with finish_request_transaction():
            pass
        assert ran == ["first"]
        names = set(db.session.scalars(db.select(Account.username_key)))
    assert {"kept1", "kept2"} <= names and "undone" not in names


def test_a_key_that_cannot_be_released_is_logged_and_left_to_its_lease(app, caplog, monkeypatch):
    from contextlib import contextmanager

    @contextmanager
    def database_down() -> Any:
        raise RuntimeError("the database is down")
        yield  # never reached: the failure comes first

    monkeypatch.setattr(idempotency, "write_transaction", database_down)
    with app.app_context(), caplog.at_level("WARNING", logger="resistance"):
        idempotency._release("account:x", "k", "token")  # noqa: SLF001 - the failure path itself
    assert "idempotency key not released" in caplog.text


def test_a_claim_on_sqlite_names_no_server_process_and_only_its_lease_ends_it(tmp_path):
    """SQLite is one file with no failover: a claim there is ended by its lease alone (on
    PostgreSQL, also by a failover: tests/test_failover.py). Runs in every pass."""
    app = build_app(f"sqlite:///{tmp_path / 'resistance.db'}")
    try:
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
        body = {"username": "sqlite-claim", "password": "correct-battery-horse-42"}
        created = app.test_client().post(REGISTER, json=body, headers={"Idempotency-Key": "k-1"})
        assert created.status_code == 201
        with app.app_context():
            row = IdempotencyKey.query.one()
            assert (row.key, row.claimed_on) == ("k-1", None)
    finally:
        dispose(app)
