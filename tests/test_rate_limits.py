"""Rate limits (contract §1): per account, per IP when anonymous, a strict shared auth bucket."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.conftest import PASSWORD, Factory, assert_problem, unique_name
from tests.server import GunicornServer, server_environ

ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
REFRESH = "/api/v1/auth/refresh"


def _login(client: Any, username: str, **kwargs: Any) -> Any:
    return client.post(LOGIN, json={"username": username, "password": PASSWORD}, **kwargs)


@pytest.fixture
def tight(make_app) -> Flask:
    """Three requests a minute per account, three auth attempts a minute per IP."""
    return make_app(RATELIMIT_DEFAULT="3/minute", RATELIMIT_AUTH="3/minute")


def _tokens(app: Flask, role: str = "survivor") -> dict[str, Any]:
    """An account made in-process and logged in on the suite's unlimited app."""
    from api.accounts.services import create_account

    username = unique_name(role)
    with app.app_context():
        create_account(username, PASSWORD, role)
    return {"username": username}


def test_limited_route_carries_ratelimit_headers(client, make):
    account = make.account()
    response = client.get(ME, headers=account["headers"])
    assert response.status_code == 200
    assert response.headers["RateLimit-Limit"] == "100000"
    assert int(response.headers["RateLimit-Remaining"]) < 100000
    assert 0 <= int(response.headers["RateLimit-Reset"]) <= 60


def test_health_probes_are_not_limited(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "RateLimit-Limit" not in response.headers


def test_default_limit_is_per_account(tight, app, make: Factory):
    alice, bob = make.account(), make.account()
    client = tight.test_client()
    statuses = [client.get(ME, headers=alice["headers"]).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert client.get(ME, headers=bob["headers"]).status_code == 200


def test_refused_request_is_429_problem_with_retry_after(tight, make: Factory):
    alice = make.account()
    client = tight.test_client()
    for _ in range(3):
        client.get(ME, headers=alice["headers"])
    response = client.get(ME, headers=alice["headers"])
    body = assert_problem(response, 429)
    assert body["type"].endswith("/rate-limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["RateLimit-Remaining"] == "0"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_anonymous_requests_are_limited_per_ip_before_authentication(tight):
    client = tight.test_client()
    statuses = [client.get(ME, headers={"Authorization": "Bearer forged"}).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_auth_routes_share_one_bucket_per_ip(tight, app, make: Factory):
    account = make.account()
    client = tight.test_client()
    first = _login(client, account["username"])
    second = client.post(REGISTER, json={"username": unique_name(), "password": PASSWORD})
    third = client.post(REFRESH, headers={"Authorization": f"Bearer {account['refresh_token']}"})
    fourth = _login(client, account["username"])
    assert [first.status_code, second.status_code, third.status_code] == [200, 201, 200]
    assert_problem(fourth, 429)
    assert fourth.headers["RateLimit-Limit"] == "3"


def test_spoofed_forwarded_for_gets_no_extra_tries(tight, make: Factory):
    account = make.account()
    client = tight.test_client()
    statuses = [
        _login(client, account["username"], headers={"X-Forwarded-For": f"10.0.0.{n}"}).status_code
        for n in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def test_trusted_proxy_hop_count_separates_clients(make_app, make: Factory):
    proxied = make_app(RATELIMIT_AUTH="1/minute", TRUSTED_PROXIES="1")
    account = make.account()
    client = proxied.test_client()
    first = _login(client, account["username"], headers={"X-Forwarded-For": "198.51.100.1"})
    other = _login(client, account["username"], headers={"X-Forwarded-For": "198.51.100.2"})
    again = _login(client, account["username"], headers={"X-Forwarded-For": "198.51.100.1"})
    assert [first.status_code, other.status_code] == [200, 200]
    assert_problem(again, 429)


def test_redis_storage_is_shared_between_app_instances(make_app, redis_url, make: Factory):
    first = make_app(REDIS_URL=redis_url, RATELIMIT_AUTH="2/minute")
    second = make_app(REDIS_URL=redis_url, RATELIMIT_AUTH="2/minute")
    account = make.account()
    statuses = [
        _login(app.test_client(), account["username"]).status_code for app in (first, second, first, second)
    ]
    assert statuses == [200, 200, 429, 429]


def test_redis_down_is_503_not_unlimited(make_app, make: Factory):
    down = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    account = make.account()
    response = down.test_client().get(ME, headers=account["headers"])
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "5"


@pytest.mark.gunicorn
def test_limit_holds_across_gunicorn_workers_with_redis(app, db_url, redis_url, make: Factory, tmp_path):
    account = make.account()
    environ = server_environ(
        db_url, REDIS_URL=redis_url, WEB_CONCURRENCY="2", GUNICORN_THREADS="2", RATELIMIT_AUTH="5/minute"
    )
    with GunicornServer(environ, tmp_path / "gunicorn.log") as server:
        statuses = []
        for _ in range(8):  # a new connection each time: the requests spread over both workers
            with server.client() as http:
                statuses.append(
                    http.post(LOGIN, json={"username": account["username"], "password": PASSWORD}).status_code
                )
    assert statuses.count(200) == 5
    assert statuses[5:] == [429, 429, 429]


def test_redis_limit_counts_down_in_one_script_call_per_request(
    make_app, redis_url, make: Factory, monkeypatch
):
    import redis

    limited = make_app(REDIS_URL=redis_url, RATELIMIT_DEFAULT="4/minute")
    account = make.account()
    client = limited.test_client()
    calls: list[str] = []
    evalsha = redis.Redis.evalsha

    def counted(self: Any, sha: str, *args: Any) -> Any:
        calls.append(sha)
        return evalsha(self, sha, *args)

    monkeypatch.setattr(redis.Redis, "evalsha", counted)
    seen = []
    for expected_calls in range(1, 6):
        response = client.get(ME, headers=account["headers"])
        seen.append((response.status_code, response.headers["RateLimit-Remaining"]))
        assert len(calls) == expected_calls  # taking the entry and reading the window: one trip
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
    assert seen == [(200, "3"), (200, "2"), (200, "1"), (200, "0"), (429, "0")]
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_one_trip_storage_reads_the_window_as_limits_does(app, redis_url):
    from limits.storage import RedisStorage

    from security.limiter import OneTripRedisStorage

    ours = OneTripRedisStorage("resistance+" + redis_url, key_prefix="t")
    stock = RedisStorage(redis_url, key_prefix="t")
    with app.test_request_context():
        assert ours.acquire_entry("k", 3, 60) is True
        assert ours.acquire_entry("k", 3, 60) is True
        remembered = ours.get_moving_window("k", 3, 60)  # the window the acquiring script read
        start, count = stock.get_moving_window("k", 3, 60)
        assert remembered == (start, count) and count == 2
        assert ours.get_moving_window("k", 3, 60) == (start, 2)  # read once; then from Redis
        assert ours.acquire_entry("k", 1, 60, amount=2) is False  # more than the limit: never
        assert ours.acquire_entry("empty", 1, 60, amount=2) is False
        empty_start, empty_count = ours.get_moving_window("empty", 1, 60)
        assert empty_count == 0 and empty_start > start
    assert ours.acquire_entry("k", 3, 60) is True  # outside a request: nothing remembered
    assert ours.get_moving_window("k", 3, 60) == stock.get_moving_window("k", 3, 60)[:1] + (3,)
    assert ours.acquire_entry("k", 3, 60) is False
