"""The session mirror with REDIS_URL: shared by replicas, bounded by TTLs, never lost with Redis's data."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from api.database import utcnow
from api.extensions import db
from security.sessions import ENDED_KEY, LOADED_KEY, REFILL_KEY, AccountSession
from tests.conftest import SECRET, Factory, assert_problem

ME = "/api/v1/auth/me"
LOGOUT = "/api/v1/auth/logout"
REFRESH = "/api/v1/auth/refresh"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def replicas(make_app, redis_url: str) -> tuple[Any, Any]:
    """Two app instances on the same database and Redis, as two replicas are."""
    return make_app(REDIS_URL=redis_url), make_app(REDIS_URL=redis_url)


@pytest.fixture
def store(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@contextlib.contextmanager
def listening(target: Any, identifier: str, listener: Any) -> Iterator[None]:
    """SQLAlchemy `listener` on `target` for the block's duration."""
    event.listen(target, identifier, listener)
    try:
        yield
    finally:
        event.remove(target, identifier, listener)


def sid_of(token: str) -> str:
    return jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_aud": False})["sid"]


def test_logout_on_one_replica_is_refused_by_the_other(replicas, make: Factory, store):
    first, second = replicas
    account = make.account()
    assert second.test_client().get(ME, headers=account["headers"]).status_code == 200
    assert first.test_client().post(LOGOUT, headers=account["headers"]).status_code == 204
    assert_problem(second.test_client().get(ME, headers=account["headers"]), 401)
    assert_problem(first.test_client().get(ME, headers=account["headers"]), 401)


def test_an_ended_session_in_redis_lives_as_long_as_its_access_tokens(replicas, make: Factory, store):
    """One key per session, kept only while an access token of it could be alive (its refresh
    tokens are refused by the database row, or by its absence, after that)."""
    first, _ = replicas
    account = make.account()
    assert first.test_client().post(LOGOUT, headers=account["headers"]).status_code == 204
    ttl = store.ttl(ENDED_KEY + sid_of(account["access_token"]))
    assert 0 < ttl <= 900 + 1
    assert store.keys(ENDED_KEY + "*") == [(ENDED_KEY + sid_of(account["access_token"])).encode()]


def test_ended_sessions_survive_redis_losing_its_data(replicas, make: Factory, store):
    first, second = replicas
    account = make.account()
    other = make.account()
    assert first.test_client().post(LOGOUT, headers=account["headers"]).status_code == 204
    assert_problem(second.test_client().get(ME, headers=account["headers"]), 401)
    store.flushdb()  # a Redis restart without persistence
    assert_problem(second.test_client().get(ME, headers=account["headers"]), 401)
    # The first check after the loss refilled Redis from the database and marked it complete.
    assert store.get(LOADED_KEY) == b"1"
    assert store.exists(ENDED_KEY + sid_of(account["access_token"])) == 1
    assert_problem(first.test_client().get(ME, headers=account["headers"]), 401)
    assert second.test_client().get(ME, headers=other["headers"]).status_code == 200


def test_refill_skips_sessions_whose_tokens_are_all_expired_and_live_ones(replicas, make: Factory, store):
    first, _ = replicas
    owner = make.account()
    now = utcnow()
    rows = {
        "long-dead": (now - timedelta(seconds=5), now - timedelta(minutes=20)),
        "still-alive": (now + timedelta(minutes=5), now - timedelta(minutes=10)),
        "live": (now + timedelta(minutes=5), None),
    }
    ids = {}
    with first.app_context():
        for name, (expires_at, ended_at) in rows.items():
            row = AccountSession(
                account_id=uuid.UUID(owner["id"]),
                expires_at=expires_at,
                ended_at=ended_at,
                refresh_jti=name,
            )
            db.session.add(row)
            db.session.flush()
            ids[name] = str(row.id)
        db.session.commit()
    store.flushdb()
    assert first.test_client().get(ME, headers=owner["headers"]).status_code == 200
    assert store.exists(ENDED_KEY + ids["long-dead"]) == 0
    assert store.exists(ENDED_KEY + ids["live"]) == 0
    assert 0 < store.ttl(ENDED_KEY + ids["still-alive"]) <= 301
    assert store.get(LOADED_KEY) == b"1"


def test_refresh_token_rotates_once_with_redis(replicas, make: Factory):
    first, second = replicas
    account = make.account()
    refresh = {"Authorization": f"Bearer {account['refresh_token']}"}
    assert first.test_client().post(REFRESH, headers=refresh).status_code == 200
    assert_problem(second.test_client().post(REFRESH, headers=refresh), 401)


def test_reuse_detected_on_one_replica_ends_the_session_on_the_other(make_app, redis_url, make: Factory):
    first = make_app(REDIS_URL=redis_url, REFRESH_REUSE_GRACE="0")
    second = make_app(REDIS_URL=redis_url, REFRESH_REUSE_GRACE="0")
    account = make.account()
    stolen = {"Authorization": f"Bearer {account['refresh_token']}"}
    rotated = first.test_client().post(REFRESH, headers=stolen).get_json()
    assert second.test_client().get(ME, headers=bearer(rotated["access_token"])).status_code == 200
    assert_problem(first.test_client().post(REFRESH, headers=stolen), 401)
    assert_problem(second.test_client().get(ME, headers=bearer(rotated["access_token"])), 401)
    assert_problem(second.test_client().post(REFRESH, headers=bearer(rotated["refresh_token"])), 401)


def test_redis_down_is_503_for_an_authenticated_request_never_an_unchecked_token(make_app, make: Factory):
    down = make_app(REDIS_URL="redis://127.0.0.1:1/0", RATELIMIT_DEFAULT="100000/minute")
    account = make.account()
    response = down.test_client().get(ME, headers=account["headers"])
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "5"


def test_an_end_committed_after_a_refill_that_missed_it_still_reaches_redis(replicas, make: Factory, store):
    """Found from outside: Redis loses its data between an end's Redis write and its commit, and
    another replica refills Redis from the database before that commit, marking it complete
    without the end. The end writes its keys again once committed, so the session stays ended."""
    first, second = replicas
    account = make.account()
    bystander = make.account()
    assert second.test_client().get(ME, headers=bystander["headers"]).status_code == 200  # loaded
    fired = []

    def lose_redis_and_refill(_session: Any) -> None:
        if fired or not store.keys(ENDED_KEY + "*"):
            return
        fired.append(True)
        store.flushdb()
        # Another replica's request refills Redis now, before the end is committed.
        assert second.test_client().get(ME, headers=bystander["headers"]).status_code == 200
        assert store.get(LOADED_KEY) == b"1"

    with listening(Session, "before_commit", lose_redis_and_refill):
        assert first.test_client().post(LOGOUT, headers=account["headers"]).status_code == 204
    assert fired
    assert_problem(second.test_client().get(ME, headers=account["headers"]), 401)
    assert_problem(first.test_client().get(ME, headers=account["headers"]), 401)
    assert store.exists(ENDED_KEY + sid_of(account["access_token"])) == 1


def test_a_second_loss_of_redis_during_a_refill_leaves_it_unmarked(replicas, make: Factory, store):
    """Found from outside: Redis loses its data, a refill reads the database, a logout commits
    and writes its key, and Redis loses its data again before the refill writes: marked complete
    then, Redis would accept the logged-out token. The refill WATCHes its claim, so the second
    loss voids it, and the next check refills Redis with the end."""
    first, second = replicas
    account = make.account()
    bystander = make.account()
    with second.app_context():
        engine = db.engine
    store.flushdb()
    fired = []

    def logout_then_lose_redis(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if fired or "ended_at IS NOT NULL" not in statement:
            return
        fired.append(True)
        assert first.test_client().post(LOGOUT, headers=account["headers"]).status_code == 204
        store.flushdb()

    with listening(engine, "after_cursor_execute", logout_then_lose_redis):
        assert second.test_client().get(ME, headers=bystander["headers"]).status_code == 200
    assert fired
    assert store.get(LOADED_KEY) is None
    assert_problem(second.test_client().get(ME, headers=account["headers"]), 401)
    assert store.get(LOADED_KEY) == b"1"
    assert_problem(first.test_client().get(ME, headers=account["headers"]), 401)


def test_a_loss_between_a_refills_claim_and_its_watch_voids_it(replicas, make: Factory, store, monkeypatch):
    _, second = replicas
    account = make.account()
    store.flushdb()
    watch = redis.client.Pipeline.watch

    def lose_then_watch(self: Any, *names: Any) -> Any:
        store.flushdb()  # the claim just made is gone before the WATCH holds it
        return watch(self, *names)

    monkeypatch.setattr(redis.client.Pipeline, "watch", lose_then_watch)
    assert second.test_client().get(ME, headers=account["headers"]).status_code == 200
    monkeypatch.undo()
    assert store.get(LOADED_KEY) is None


def test_one_refill_at_a_time_the_others_answer_from_the_database(replicas, make: Factory, store):
    _, second = replicas
    account = make.account()
    store.flushdb()
    store.set(REFILL_KEY, b"someone-else", ex=30)
    assert second.test_client().get(ME, headers=account["headers"]).status_code == 200
    assert store.get(LOADED_KEY) is None
    store.delete(REFILL_KEY)
    assert second.test_client().get(ME, headers=account["headers"]).status_code == 200
    assert store.get(LOADED_KEY) == b"1" and store.get(REFILL_KEY) is None


def test_an_end_rolled_back_writes_nothing_after(app, make: Factory, monkeypatch):
    """after_commit callbacks of a transaction that rolls back never run."""
    from api.database import after_commit, write_transaction

    ran: list[str] = []
    with app.app_context():
        with pytest.raises(RuntimeError), write_transaction():
            after_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("the write failed")
        with write_transaction():
            after_commit(lambda: ran.append("committed"))
    assert ran == ["committed"]
