"""Redis across sites (api/redis_store.py): a REDIS_URL that names a Redis Sentinel deployment,
followed through a failover with no restart, and a data set the app has not seen before (a
promoted replica that missed writes, a restarted server) trusted for nothing it copied from the
database."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from api import mirror
from api.redis_store import HISTORY_KEY, SESSIONS_LOADED_KEY, VIEW_KEY, make_client, sentinel_parts
from tests.cluster.services import PrivateRedis, wait_for
from tests.conftest import Factory, missing_service

ME = "/api/v1/auth/me"
SERVICE = "resistance"


@dataclass
class Deployment:
    primary: PrivateRedis
    replica: PrivateRedis
    sentinel: PrivateRedis

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}"

    def client(self, server: PrivateRedis) -> redis.Redis:
        return redis.Redis(port=server.port, socket_timeout=2, socket_connect_timeout=2)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """A primary, its replica and one sentinel watching them, each a redis-server of its own."""
    binary = shutil.which("redis-server") or missing_service(
        "redis-server is not on PATH: run .ci/system-packages (as root) to install it"
    )
    primary = PrivateRedis(binary, tmp_path / "primary").start()
    started = [primary]
    try:
        replica = PrivateRedis(binary, tmp_path / "replica", "--replicaof", "127.0.0.1", str(primary.port))
        started.append(replica.start())
        sentinel = PrivateRedis(
            binary,
            tmp_path / "sentinel",
            "--sentinel",
            config=f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n",
        )
        started.append(sentinel.start())
        yield Deployment(primary, replica, sentinel)
    finally:
        for server in started:
            server.stop()


def _master_port(deployment: Deployment) -> int:
    host, port = deployment.client(deployment.sentinel).sentinel_get_master_addr_by_name(SERVICE)
    return int(port)


def _replicated(deployment: Deployment, key: str) -> bool:
    return deployment.client(deployment.replica).exists(key) == 1


def test_the_app_follows_a_sentinel_failover_and_trusts_no_copy_the_new_primary_missed(
    make_app, make: Factory, admin: dict[str, Any], deployment: Deployment, caplog
):
    """The promoted replica holds the mirror of a role from before a change its old primary took
    (replication is asynchronous): without the check, the next request would act as the old role."""
    app = make_app(REDIS_URL=deployment.url)
    client = app.test_client()
    account = make.account("survivor")
    assert client.get(ME, headers=account["headers"]).get_json()["role"] == "survivor"
    key = mirror.VALUE_KEY + mirror.ACCOUNT + account["id"]
    assert deployment.client(deployment.primary).exists(key) == 1  # read through the sentinel's primary
    wait_for("the replica has the mirrored role", lambda: _replicated(deployment, key))

    # The replica stops following (its copy is now frozen) and the role changes on the primary.
    deployment.client(deployment.replica).replicaof("NO", "ONE")
    changed = client.patch(
        f"/api/v1/accounts/{account['id']}", json={"role": "observer"}, headers=admin["headers"]
    )
    assert changed.status_code == 200
    assert deployment.client(deployment.primary).exists(key) == 0
    assert _replicated(deployment, key)  # the write the replica missed

    # The primary's site is lost; the sentinels now name the replica as the primary.
    deployment.primary.stop()
    sentinel = deployment.client(deployment.sentinel)
    sentinel.sentinel_remove(SERVICE)
    sentinel.sentinel_monitor(SERVICE, "127.0.0.1", deployment.replica.port, 1)
    wait_for("the sentinel names the replica", lambda: _master_port(deployment) == deployment.replica.port)

    def answered() -> Any:
        response = client.get(ME, headers=account["headers"])
        return response if response.status_code == 200 else None

    with caplog.at_level(logging.WARNING, logger="api.redis_store"):
        response = wait_for("the app answers from the new primary", answered)
    assert response.get_json()["role"] == "observer"  # from the database, never the stale copy
    assert "copies of the database are forgotten" in caplog.text
    new_primary = deployment.client(deployment.replica)
    assert new_primary.get(HISTORY_KEY) == new_primary.info("replication")["master_replid"].encode()
    assert new_primary.get(key) is not None  # mirrored again, from the database
    assert new_primary.keys("LIMITS:*")  # the rate limiter follows the same client


def _replica_known(deployment: Deployment) -> bool:
    replicas = deployment.client(deployment.sentinel).sentinel_slaves(SERVICE)
    return any(r["port"] == deployment.replica.port and not r["is_sdown"] for r in replicas)


def _failover_started(deployment: Deployment) -> bool:
    """SENTINEL FAILOVER, once the sentinel deems the replica fit: under load its view of the
    replica (refreshed by INFO every few seconds) can lag, and it answers NOGOODSLAVE meanwhile."""
    try:
        deployment.client(deployment.sentinel).execute_command("SENTINEL FAILOVER", SERVICE)
    except redis.ResponseError as error:
        if not str(error).startswith("NOGOODSLAVE"):
            raise
        return False
    return True


def test_a_primary_demoted_by_a_failover_is_left_for_the_new_one(
    make_app, make: Factory, deployment: Deployment
):
    """The failover public reports describe (redis-py #435, #460): the old primary stays up as a
    replica, and connections still open to it get READONLY. The app moves to the new primary
    with no restart; in between a request is a 503, never a 500 or a write lost."""
    app = make_app(REDIS_URL=deployment.url)
    client = app.test_client()
    owner = make.account("survivor")
    assert client.get(ME, headers=owner["headers"]).status_code == 200  # connections to the primary
    wait_for("the sentinel knows the replica", lambda: _replica_known(deployment))
    wait_for("the sentinel starts a failover", lambda: _failover_started(deployment))
    wait_for("the sentinel names the replica", lambda: _master_port(deployment) == deployment.replica.port)
    wait_for(
        "the old primary follows the new one",
        lambda: deployment.client(deployment.primary).info("replication")["role"] == "slave",
    )

    statuses = []

    def created() -> Any:
        response = client.post("/api/v1/survivors", json=make.survivor_body(), headers=owner["headers"])
        statuses.append(response.status_code)
        return response if response.status_code == 201 else None

    survivor = wait_for("a write through the new primary", created).get_json()
    assert set(statuses) <= {201, 503}
    me = client.get(ME, headers=owner["headers"]).get_json()
    assert me["survivor_id"] == survivor["id"]
    assert deployment.client(deployment.replica).exists(mirror.VALUE_KEY + mirror.ACCOUNT + owner["id"])


def test_a_replica_named_directly_is_read_without_the_check(deployment: Deployment):
    """A replica takes no writes: the check (a script that writes) is not run on it."""
    replica = make_client(f"redis://127.0.0.1:{deployment.replica.port}/0")
    try:
        assert replica.ping()
        assert replica.get(HISTORY_KEY) is None
    finally:
        replica.close()


def test_a_reconnect_keeps_the_copies_and_a_new_data_set_forgets_them(
    make_app, make: Factory, redis_url, caplog
):
    app = make_app(REDIS_URL=redis_url)
    client = app.test_client()
    store = redis.Redis.from_url(redis_url)
    account = make.account("survivor")
    assert client.get(ME, headers=account["headers"]).status_code == 200
    copies = {VIEW_KEY + "probe", mirror.VALUE_KEY + "probe", mirror.WRITING_KEY + "probe"}
    kept = {"LIMITS:probe", "resistance:session-ended:probe"}
    for name in copies | kept:
        store.set(name, b"1")

    def reconnect_and_read() -> None:
        store.client_kill_filter(_type="normal", skipme=True)  # the app's pooled connections
        assert client.get(ME, headers=account["headers"]).status_code == 200

    with caplog.at_level(logging.WARNING, logger="api.redis_store"):
        reconnect_and_read()  # the same server: the same data set
        assert all(store.exists(name) for name in copies | kept)
        assert "forgotten" not in caplog.text

        store.set(HISTORY_KEY, b"a-replication-id-of-another-server")
        reconnect_and_read()
    assert not any(store.exists(name) for name in copies)
    assert all(store.exists(name) for name in kept)
    assert store.get(SESSIONS_LOADED_KEY) == b"1"  # the ended sessions were loaded again
    assert store.get(HISTORY_KEY) == store.info("replication")["master_replid"].encode()
    assert "copies of the database are forgotten" in caplog.text
    store.close()


def test_neither_the_servers_nor_the_sentinels_are_retried_by_redis_py():
    """redis-py retries a sentinel's calls 10 times by default, sleeping between them in a sleep
    gevent cannot switch out of: a lost site's sentinel froze a worker for seconds a request."""
    client = make_client("redis+sentinel://127.0.0.1:1,127.0.0.1:2/resistance")
    pool: Any = client.connection_pool
    sentinels = pool.sentinel_manager.sentinels
    assert len(sentinels) == 2
    for connection_owner in (client, *sentinels):
        retry = connection_owner.get_retry()
        assert retry is not None and retry.get_retries() == 0
    plain = make_client("redis://127.0.0.1:1/0")
    assert plain.get_retry().get_retries() == 0


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        (
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/resistance",
            {"sentinels": [("10.0.0.1", 26379), ("10.0.0.2", 26380)], "service": "resistance", "db": 0},
        ),
        (
            "redis+sentinel://:s%40cret@[::1]:26379/main/3",
            {"sentinels": [("::1", 26379)], "service": "main", "db": 3, "password": "s@cret"},
        ),
        (
            "redis+sentinel://app:pw@sentinel-a.example:26379,redis_sentinel_2:26379/resistance",
            {
                "sentinels": [("sentinel-a.example", 26379), ("redis_sentinel_2", 26379)],
                "username": "app",
                "password": "pw",
            },
        ),
    ],
)
def test_sentinel_urls_name_the_sentinels_the_service_and_the_database(url, parts):
    found = sentinel_parts(url)
    assert {name: found[name] for name in parts} == parts
    assert (found["username"], found["password"]) == (parts.get("username"), parts.get("password"))


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://10.0.0.1:26379",  # no service
        "redis+sentinel://10.0.0.1:26379/",
        "redis+sentinel://10.0.0.1/resistance",  # no port
        "redis+sentinel://10.0.0.1:0/resistance",
        "redis+sentinel://10.0.0.1:70000/resistance",
        "redis+sentinel://10.0.0.1:26379,/resistance",
        "redis+sentinel://10.0.0.1:26379/resistance/zero",
        "redis+sentinel://10.0.0.1:26379/resistance/0/extra",
        "redis+sentinel://10.0.0.1:26379/resistance?ssl=true",
        "redis+sentinel://10.0.0.1:26379/resistance?",
        "redis+sentinel://10.0.0.1:26379/resistance#main",
        "redis+sentinel://10.0.0.1:26379/resistance\n",
        "redis+sentinel://10.0.0.1:26379//resistance",
        "redis+sentinel://10.0.0.1:26379/my master",
        "redis+sentinel://10.0.0.1:26379/%00",
        "redis+sentinel://10.0.0.1:26379/resistance/\u0663",  # an Arabic-Indic digit
        "redis+sentinel://10.0.0.1:26379/resistance/99999999999999999999",
    ],
)
def test_a_malformed_sentinel_url_is_refused(url):
    with pytest.raises(ValueError, match="sentinel|service|spaces"):
        sentinel_parts(url)
