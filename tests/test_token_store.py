"""The revocation store with REDIS_URL: shared by replicas, bounded by TTLs, never lost with Redis's data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
import redis

from api.database import utcnow
from api.extensions import db
from security.tokens import LOADED_KEY, REVOKED_KEY, RevokedToken
from tests.conftest import SECRET, Factory, assert_problem

ME = "/api/v1/auth/me"
LOGOUT = "/api/v1/auth/logout"
REFRESH = "/api/v1/auth/refresh"


@pytest.fixture
def replicas(make_app, redis_url: str) -> tuple[Any, Any]:
    """Two app instances on the same database and Redis, as two replicas are."""
    return make_app(REDIS_URL=redis_url), make_app(REDIS_URL=redis_url)


@pytest.fixture
def store(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def jti_of(token: str) -> str:
    return jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_aud": False})["jti"]


def test_logout_on_one_replica_is_refused_by_the_other(replicas, make: Factory, store):
    first, second = replicas
    account = make.account()
    assert second.test_client().get(ME, headers=account["headers"]).status_code == 200
    assert first.test_client().post(LOGOUT, headers=account["headers"]).status_code == 204
    assert_problem(second.test_client().get(ME, headers=account["headers"]), 401)
    assert_problem(first.test_client().get(ME, headers=account["headers"]), 401)


def test_revocation_in_redis_lives_as_long_as_the_token(replicas, make: Factory, store):
    first, _ = replicas
    account = make.account()
    first.test_client().post(
        LOGOUT, json={"refresh_token": account["refresh_token"]}, headers=account["headers"]
    )
    for token, lifetime in ((account["access_token"], 900), (account["refresh_token"], 7 * 86400)):
        ttl = store.ttl(REVOKED_KEY + jti_of(token))
        assert 0 < ttl <= lifetime + 1, (token, ttl)


def test_revocations_survive_redis_losing_its_data(replicas, make: Factory, store):
    first, second = replicas
    account = make.account()
    other = make.account()
    assert first.test_client().post(LOGOUT, headers=account["headers"]).status_code == 204
    assert_problem(second.test_client().get(ME, headers=account["headers"]), 401)
    store.flushdb()  # a Redis restart without persistence
    assert_problem(second.test_client().get(ME, headers=account["headers"]), 401)
    # The first check after the loss refilled Redis from the database and marked it complete.
    assert store.get(LOADED_KEY) == b"1"
    assert store.exists(REVOKED_KEY + jti_of(account["access_token"])) == 1
    assert_problem(first.test_client().get(ME, headers=account["headers"]), 401)
    assert second.test_client().get(ME, headers=other["headers"]).status_code == 200


def test_reload_skips_revocations_of_tokens_already_expired(replicas, make: Factory, store):
    first, _ = replicas
    with first.app_context():
        db.session.add(RevokedToken(jti="long-dead", expires_at=utcnow() - timedelta(seconds=5)))
        db.session.add(RevokedToken(jti="still-alive", expires_at=utcnow() + timedelta(minutes=5)))
        db.session.commit()
    store.flushdb()
    assert first.test_client().get(ME, headers=make.account()["headers"]).status_code == 200
    assert store.exists(REVOKED_KEY + "long-dead") == 0
    assert 0 < store.ttl(REVOKED_KEY + "still-alive") <= 301
    assert store.get(LOADED_KEY) == b"1"


def test_refresh_token_rotates_once_with_redis(replicas, make: Factory):
    first, second = replicas
    account = make.account()
    refresh = {"Authorization": f"Bearer {account['refresh_token']}"}
    assert first.test_client().post(REFRESH, headers=refresh).status_code == 200
    assert_problem(second.test_client().post(REFRESH, headers=refresh), 401)


def test_redis_down_is_503_for_an_authenticated_request_never_an_unchecked_token(make_app, make: Factory):
    down = make_app(REDIS_URL="redis://127.0.0.1:1/0", RATELIMIT_DEFAULT="100000/minute")
    account = make.account()
    response = down.test_client().get(ME, headers=account["headers"])
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "5"
