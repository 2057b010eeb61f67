"""The Redis mirror of account state and data versions (api/mirror.py): read in the request's
existing round trips, never stale once a write's response is sent, rebuilt from the database
after Redis loses its data."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from api import mirror
from api.accounts.models import Account, Role
from api.database import mark_stale, write_transaction
from api.extensions import db
from tests.conftest import Factory, assert_problem, unique_name

ME = "/api/v1/auth/me"
SURVIVORS = "/api/v1/survivors"


@pytest.fixture
def replicas(make_app, redis_url: str) -> tuple[Any, Any]:
    """Two app instances on the same database and Redis, as two replicas are."""
    return make_app(REDIS_URL=redis_url), make_app(REDIS_URL=redis_url)


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def actor_key(account: dict[str, Any]) -> str:
    return mirror.VALUE_KEY + mirror.ACCOUNT + account["id"]


def test_a_role_change_through_one_replica_is_seen_at_once_by_another(replicas, make: Factory, admin, store):
    first, second = replicas
    account = make.account("survivor")
    assert second.test_client().get(ME, headers=account["headers"]).get_json()["role"] == "survivor"
    assert store.exists(actor_key(account)) == 1  # the second replica now answers from Redis
    changed = first.test_client().patch(
        f"/api/v1/accounts/{account['id']}", json={"role": "observer"}, headers=admin["headers"]
    )
    assert changed.status_code == 200
    assert second.test_client().get(ME, headers=account["headers"]).get_json()["role"] == "observer"
    refused = second.test_client().post(SURVIVORS, json=make.survivor_body(), headers=account["headers"])
    assert_problem(refused, 403)


def test_a_new_survivor_profile_is_on_the_actor_at_once(replicas, make: Factory, store):
    first, second = replicas
    account = make.account("survivor")
    assert second.test_client().get(ME, headers=account["headers"]).get_json()["survivor_id"] is None
    created = first.test_client().post(SURVIVORS, json=make.survivor_body(), headers=account["headers"])
    assert created.status_code == 201
    me = second.test_client().get(ME, headers=account["headers"]).get_json()
    assert me["survivor_id"] == created.get_json()["id"]
    again = second.test_client().post(SURVIVORS, json=make.survivor_body(), headers=account["headers"])
    assert_problem(again, 409)


def test_a_list_is_fresh_on_another_replica_right_after_a_write(replicas, make: Factory, observer, store):
    first, second = replicas
    before = second.test_client().get(SURVIVORS, headers=observer["headers"])
    assert before.status_code == 200 and before.get_json()["total"] == 0
    assert store.exists(mirror.VALUE_KEY + mirror.VERSION + "survivors") == 1
    owner = make.account("survivor")
    assert (
        first.test_client().post(SURVIVORS, json=make.survivor_body(), headers=owner["headers"]).status_code
        == 201
    )
    after = second.test_client().get(
        SURVIVORS, headers={**observer["headers"], "If-None-Match": before.headers["ETag"]}
    )
    assert after.status_code == 200 and after.get_json()["total"] == 1
    assert after.headers["ETag"] != before.headers["ETag"]


@pytest.fixture
def round_trips(monkeypatch) -> Iterator[dict[str, int]]:
    """Redis round trips (one packed send each: a command, or a whole pipeline) and SQL statements."""
    counts = {"redis": 0, "sql": 0}
    send = redis.connection.Connection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        counts["redis"] += 1
        send(self, command, check_health)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counted)
    yield counts


def test_a_cached_read_takes_three_redis_round_trips_and_no_database(replicas, observer, round_trips):
    """The session check (with the account's state), the rate limit, and the data version with
    the cached body: one round trip each, and nothing asked of the database."""
    _, second = replicas
    with second.app_context():
        engine = db.engine

    def statement(*_args: Any) -> None:
        round_trips["sql"] += 1

    client = second.test_client()
    for _ in range(2):  # fill the mirror and the cache, load the limiter's scripts
        assert client.get(SURVIVORS, headers=observer["headers"]).status_code == 200
    event.listen(engine, "before_cursor_execute", statement)
    try:
        round_trips.update(redis=0, sql=0)
        cached = client.get(SURVIVORS, headers=observer["headers"])
        assert cached.status_code == 200
        assert round_trips == {"redis": 3, "sql": 0}
        round_trips.update(redis=0, sql=0)
        revalidated = client.get(
            SURVIVORS, headers={**observer["headers"], "If-None-Match": cached.headers["ETag"]}
        )
        assert revalidated.status_code == 304
        assert round_trips == {"redis": 3, "sql": 0}
    finally:
        event.remove(engine, "before_cursor_execute", statement)


def test_the_mirror_is_rebuilt_from_the_database_after_redis_loses_its_data(replicas, make: Factory, store):
    _, second = replicas
    account = make.account("survivor")
    assert second.test_client().get(ME, headers=account["headers"]).status_code == 200
    with second.app_context():  # changed behind the API's back while Redis was down and empty
        with write_transaction() as session:
            session.get_one(Account, uuid.UUID(account["id"])).role = Role.OBSERVER
    store.flushdb()
    assert second.test_client().get(ME, headers=account["headers"]).get_json()["role"] == "observer"
    assert 0 < store.ttl(actor_key(account)) <= mirror.MIRROR_SECONDS


def test_an_account_disabled_behind_the_apis_back_is_refused_and_mirrored_as_such(
    replicas, make: Factory, store
):
    """Disabling through the API ends every session; one disabled by hand in SQL (sessions left
    live) is still refused by the account check, from the database and then from the mirror."""
    _, second = replicas
    account = make.account("survivor")
    with second.app_context(), write_transaction() as session:
        session.get_one(Account, uuid.UUID(account["id"])).disabled = True
    for _ in range(2):
        assert_problem(second.test_client().get(ME, headers=account["headers"]), 401)
    assert store.get(actor_key(account)) == b"null"


@pytest.mark.parametrize(
    "entry", [b"not json", b"[1, 2]", b"7", b'{"body": "[]"}', b'{"version": 1, "body": 5}', b"\xff\xfe"]
)
def test_a_cached_body_that_cannot_be_used_is_rendered_again_and_replaced(replicas, observer, store, entry):
    _, second = replicas
    client = second.test_client()
    assert client.get(SURVIVORS, headers=observer["headers"]).status_code == 200
    [key] = store.keys("resistance:view:*")
    store.set(key, entry)
    again = client.get(SURVIVORS, headers=observer["headers"])
    assert again.status_code == 200 and again.get_json()["total"] == 0
    assert store.get(key) != entry


def test_a_write_count_that_is_not_an_integer_is_replaced_by_the_next_write(
    replicas, make: Factory, store, caplog
):
    first, _ = replicas
    owner = make.account("survivor")
    store.set(mirror.WRITING_KEY + mirror.VERSION + "survivors", b"garbage")
    with caplog.at_level(logging.WARNING, logger="api.mirror"):
        created = first.test_client().post(SURVIVORS, json=make.survivor_body(), headers=owner["headers"])
    assert created.status_code == 201
    assert "not an integer" in caplog.text
    assert store.get(mirror.WRITING_KEY + mirror.VERSION + "survivors") == b"0"


# --- the protocol, one rule at a time ------------------------------------------------------------


@pytest.fixture
def mirrored(make_app, redis_url: str) -> Iterator[Any]:
    application = make_app(REDIS_URL=redis_url)
    with application.test_request_context():
        yield application


def test_a_value_read_before_a_write_began_is_not_stored_after_it(mirrored, store):
    """A reader fills only under WATCH: a write counting itself in during the read voids the fill."""
    counted_out = []

    def load() -> int:
        count_out = mirror.count_in(["sample"])  # a write reaches its COMMIT meanwhile
        assert count_out is not None
        counted_out.append(count_out)
        return 7

    assert mirror.read("sample", load, str, int) == 7
    assert store.get(mirror.VALUE_KEY + "sample") is None
    counted_out[0]()
    assert store.get(mirror.WRITING_KEY + "sample") == b"0"
    assert mirror.read("sample", lambda: 8, str, int) == 8
    assert store.get(mirror.VALUE_KEY + "sample") == b"8"
    assert mirror.read("sample", lambda: 9, str, int) == 8  # from Redis now


def test_a_write_that_began_between_the_readers_mget_and_its_watch_voids_the_fill(mirrored, store):
    store.set(mirror.WRITING_KEY + "sample", b"1")  # counted in after the caller's MGET saw none
    assert mirror.read("sample", lambda: 6, str, int, fetched=[None, None]) == 6
    assert store.get(mirror.VALUE_KEY + "sample") is None


@pytest.mark.parametrize(
    "value", [b"not json", b"[1, 2, 3]", b'{"role": "admin"}', b'["x", "emperor", null]', b"[]"]
)
def test_a_mirrored_actor_that_cannot_be_decoded_is_dropped_and_read_again(
    replicas, make: Factory, store, value
):
    """Whatever a mirror key holds (an older release's shape, a corrupt write), the account is
    read from the database instead, never a 500, and the bad value is replaced."""
    _, second = replicas
    account = make.account("survivor")
    store.set(actor_key(account), value)
    me = second.test_client().get(ME, headers=account["headers"])
    assert me.status_code == 200 and me.get_json()["role"] == "survivor"
    assert store.get(actor_key(account)) != value


@pytest.mark.parametrize("writing", [b"junk", b"1.5"])
def test_a_write_count_that_is_not_an_integer_sends_readers_to_the_database(mirrored, store, writing):
    store.set(mirror.VALUE_KEY + "sample", b"5")
    store.set(mirror.WRITING_KEY + "sample", writing)
    assert mirror.read("sample", lambda: 6, str, int) == 6


def test_readers_use_the_database_while_a_write_is_counted_in(mirrored, store):
    store.set(mirror.VALUE_KEY + "sample", b"5")
    store.set(mirror.WRITING_KEY + "sample", b"1")
    assert mirror.read("sample", lambda: 6, str, int) == 6
    assert store.get(mirror.VALUE_KEY + "sample") == b"5"  # nothing stored while a write is in


def test_a_write_deletes_the_value_before_commit_and_counts_itself_out_after(mirrored, store):
    store.set(mirror.VALUE_KEY + "sample", b"5")
    seen: list[Any] = []
    with write_transaction() as session:
        mark_stale("sample")

        @event.listens_for(session, "after_commit", once=True)
        def at_commit(_session: Any) -> None:
            seen.append((store.get(mirror.VALUE_KEY + "sample"), store.get(mirror.WRITING_KEY + "sample")))

    assert seen == [(None, b"1")]
    assert store.get(mirror.VALUE_KEY + "sample") is None
    assert store.get(mirror.WRITING_KEY + "sample") == b"0"
    assert 0 < store.ttl(mirror.WRITING_KEY + "sample") <= mirror.WRITING_SECONDS


def test_a_write_that_fails_at_commit_counts_itself_out(mirrored, store):
    taken = unique_name()
    with write_transaction() as session:
        session.add(Account(username=taken, username_key=taken, password_hash="x", role=Role.OBSERVER))
    with pytest.raises(IntegrityError), write_transaction() as session:
        mark_stale("sample")
        session.add(Account(username=taken, username_key=taken, password_hash="x", role=Role.OBSERVER))
    assert store.get(mirror.WRITING_KEY + "sample") == b"0"


def test_a_redis_that_cannot_count_a_write_in_rolls_it_back(make_app):
    application = make_app(REDIS_URL="redis://127.0.0.1:9/0")  # nothing listens on the discard port
    name = unique_name()
    with application.test_request_context():
        with pytest.raises(redis.RedisError), write_transaction() as session:
            mark_stale("sample")
            session.add(Account(username=name, username_key=name, password_hash="x", role=Role.OBSERVER))
        assert db.session.query(Account).filter_by(username_key=name).count() == 0


def test_a_failed_count_out_is_logged_and_keeps_readers_on_the_database(mirrored, store, monkeypatch, caplog):
    count_out = mirror.count_in(["sample"])
    assert count_out is not None

    def gone(*_args: Any, **_kwargs: Any) -> None:
        raise redis.ConnectionError("gone")

    monkeypatch.setattr(redis.client.Pipeline, "execute", gone)
    with caplog.at_level(logging.WARNING, logger="api.mirror"):
        count_out()
    monkeypatch.undo()
    assert "could not be counted out" in caplog.text
    assert store.get(mirror.WRITING_KEY + "sample") == b"1"
    assert mirror.read("sample", lambda: 3, str, int) == 3
    assert store.get(mirror.VALUE_KEY + "sample") is None


def test_mark_stale_outside_a_write_transaction_is_an_error(app):
    with app.app_context(), pytest.raises(RuntimeError, match="inside write_transaction"):
        mark_stale("sample")


def test_without_redis_every_read_asks_the_database(app):
    with app.test_request_context():
        assert mirror.read("sample", lambda: 4, str, int) == 4
        assert mirror.read("sample", lambda: 5, str, int) == 5
        assert mirror.count_in(["sample"]) is None
