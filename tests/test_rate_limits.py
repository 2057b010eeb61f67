"""Rate limits (docs/api.md, Rate limits): per account, per IP when anonymous, a strict shared auth bucket."""

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
    # Which limit, and what to do: not flask-limiter's bare "3 per 1 minute".
    assert (
        body["detail"] == "Too many requests: the limit is 3 per 1 minute; "
        "retry after the number of seconds in the Retry-After header."
    )
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


def test_redis_limit_counts_down_in_one_round_trip_per_request(
    make_app, redis_url, make: Factory, monkeypatch
):
    """Taking the entry and reading the window the headers show: limits' two scripts, sent to
    Redis in one write (a pipeline), so one round trip per request."""
    from redis.connection import Connection

    limited = make_app(REDIS_URL=redis_url, RATELIMIT_DEFAULT="4/minute")
    account = make.account()
    client = limited.test_client()
    trips: list[int] = []
    send = Connection.send_packed_command

    def counted(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        packed = b"".join(command) if isinstance(command, list) else command
        if b"EVALSHA" in packed.upper():
            trips.append(packed.upper().count(b"EVALSHA"))
        return send(self, command, *args, **kwargs)

    monkeypatch.setattr(Connection, "send_packed_command", counted)
    seen = []
    for expected_trips in range(1, 6):
        response = client.get(ME, headers=account["headers"])
        seen.append((response.status_code, response.headers["RateLimit-Remaining"]))
        assert len(trips) == expected_trips and trips[-1] == 2  # both scripts, one write
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
    assert seen == [(200, "3"), (200, "2"), (200, "1"), (200, "0"), (429, "0")]
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_a_fresh_buckets_reset_is_a_whole_window(make_app, redis_url, make: Factory):
    """The first request's window is read in the trip that made its counter: its reset is the
    window's length, not 'now' (it once said 1, then 59, 58…)."""
    limited = make_app(REDIS_URL=redis_url, RATELIMIT_DEFAULT="4/minute")
    account = make.account()
    client = limited.test_client()
    resets = [int(client.get(ME, headers=account["headers"]).headers["RateLimit-Reset"]) for _ in range(2)]
    assert all(59 <= reset <= 60 for reset in resets), resets


def test_one_trip_storage_reads_the_window_as_limits_does(app, redis_url):
    from limits.storage import RedisStorage

    from security.limiter import OneTripRedisStorage

    ours = OneTripRedisStorage("resistance+" + redis_url, key_prefix="t")
    stock = RedisStorage(redis_url, key_prefix="t")
    with app.test_request_context():
        assert ours.acquire_sliding_window_entry("k", 3, 60) is True
        assert ours.acquire_sliding_window_entry("k", 3, 60) is True
        remembered = ours.get_sliding_window("k", 60)  # the window read in the acquiring trip
        previous, _, current, current_ttl = stock.get_sliding_window("k", 60)
        assert remembered[0] == previous == 0 and remembered[2] == current == 2
        assert abs(remembered[3] - current_ttl) < 1
        assert ours.get_sliding_window("k", 60)[2] == 2  # read once; then from Redis
        assert ours.acquire_sliding_window_entry("k", 1, 60, amount=2) is False  # never more
        assert ours.acquire_sliding_window_entry("k", 3, 60) is True
        assert ours.acquire_sliding_window_entry("k", 3, 60) is False  # 3 taken of 3
    assert ours.acquire_sliding_window_entry("j", 3, 60) is True  # outside a request: nothing kept
    assert ours.get_sliding_window("j", 60)[2] == 1


def test_one_trip_storage_loads_scripts_a_restarted_redis_forgot(app, redis_url):
    """SCRIPT FLUSH (a restart, a failover to a replica that never saw them): the entry is
    taken once, not twice, and the limit goes on counting."""
    import redis

    from security.limiter import OneTripRedisStorage

    ours = OneTripRedisStorage("resistance+" + redis_url, key_prefix="t")
    with app.test_request_context():
        assert ours.acquire_sliding_window_entry("k", 2, 60) is True
        redis.Redis.from_url(redis_url).script_flush()
        assert ours.acquire_sliding_window_entry("k", 2, 60) is True
        assert ours.get_sliding_window("k", 60)[2] == 2
        assert ours.acquire_sliding_window_entry("k", 2, 60) is False
        # Only the window script forgotten: the entry stands, the window is read again.
        ours.lua_sliding_window.sha = "0" * 40
        assert ours.acquire_sliding_window_entry("w", 2, 60) is True
        assert ours.get_sliding_window("w", 60)[2] == 1
        assert ours.acquire_sliding_window_entry("w", 2, 60) is True


def test_a_limit_costs_the_same_whatever_its_size(make_app, redis_url, make: Factory):
    """The sliding window counter: two counters per bucket, however many requests it allows."""
    import redis

    huge = make_app(REDIS_URL=redis_url, RATELIMIT_DEFAULT="1000000/minute")
    account = make.account()
    client = huge.test_client()
    for _ in range(30):
        assert client.get(ME, headers=account["headers"]).status_code == 200
    store = redis.Redis.from_url(redis_url)
    keys = [key for key in store.keys("*") if b"LIMITER" in key.upper() or b"account:" in key]
    assert 1 <= len(keys) <= 2, keys  # this window, and the last once it has one
    assert all(store.type(key) == b"string" for key in keys)


def test_one_trip_storage_raises_what_redis_refused(app, redis_url):
    """An error other than a forgotten script (here WRONGTYPE; OOM under maxmemory is another)
    is raised, so the request is 503 (api/__init__.py), never let through unlimited."""
    import redis
    from redis.exceptions import ResponseError

    from security.limiter import OneTripRedisStorage

    ours = OneTripRedisStorage("resistance+" + redis_url, key_prefix="t")
    redis.Redis.from_url(redis_url).rpush(ours.prefixed_key(ours._current_window_key("k")), "x")
    with app.test_request_context(), pytest.raises(ResponseError, match="WRONGTYPE"):
        ours.acquire_sliding_window_entry("k", 3, 60)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nope"),  # no route: 404
        ("GET", "/api/v1/survivors/not-a-uuid"),  # a converter refused it: 404
        ("DELETE", "/api/v1/reports/infection"),  # no such method: 405
    ],
)
def test_unknown_paths_and_methods_under_the_api_are_limited_too(tight, method, path):
    """Probing what does not exist costs a client its bucket like anything else under /api/v1."""
    client = tight.test_client()
    first = client.open(path, method=method)
    assert first.status_code in (404, 405)
    assert first.headers["RateLimit-Limit"] == "3"
    assert first.headers["RateLimit-Remaining"] == "2"
    assert [client.open(path, method=method).status_code for _ in range(2)] == [first.status_code] * 2
    assert_problem(client.open(path, method=method), 429)
    assert_problem(client.get(ME), 429)  # one bucket per client IP, whatever it asked for


def test_unknown_paths_outside_the_api_stay_unlimited(tight):
    client = tight.test_client()
    assert {client.get("/nope").status_code for _ in range(5)} == {404}
    assert "RateLimit-Limit" not in client.get("/nope").headers
