"""The cluster, built once per module: a private PostgreSQL and Redis, three gunicorn replicas
sharing them, nginx (deploy/nginx.conf, rendered by tests/nginx.py) in front.

`cluster` starts it all (the first replica alone: its on_starting runs the migrations and makes
the admin; then the other two together) and tears everything down at the end, process groups
and temporary files, whatever happened. The autouse `whole` fixture gives each test a healthy
cluster (a dependency a failed test left stopped is started again, a killed replica respawned)
and marks the logs, so a test reads only its own lines.

Every client that logs in binds a loopback address of its own (services.fresh_address), so no
test's logins count against another's RATELIMIT_AUTH bucket, nor the fixture's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.cluster.services import (
    REPLICA_NAMES,
    Cluster,
    PrivatePostgres,
    PrivateRedis,
    Replica,
    client,
    cluster_tools,
    fresh_address,
    replica_environ,
)
from tests.nginx import NginxServer, nginx_binary
from tests.server import ADMIN_PASSWORD


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip(
            "the cluster test brings its own PostgreSQL and Redis, so it runs once per `make test`:"
            " in the first pass (without TEST_DATABASE_URL)"
        )
    nginx_binary()  # skips (or fails under REQUIRE_SERVICES=1) without nginx, naming .ci/system-packages
    bindir, redis_server = cluster_tools()
    logs = tmp_path_factory.mktemp("cluster")  # kept by pytest for a look after a failure
    # PostgreSQL runs as another user, who cannot enter pytest's 0700 directories: its files go
    # in a directory of their own, removed at the end (its log is copied to `logs` first).
    top = Path(tempfile.mkdtemp(prefix="resistance-cluster-"))
    os.chmod(top, 0o711)  # noqa: S103 - traversable, not listable, for the postgres user
    postgres = PrivatePostgres(bindir, top / "postgres")
    redis = PrivateRedis(redis_server, top / "redis")
    replicas: list[Replica] = []
    nginx: NginxServer | None = None
    try:
        postgres.create()
        redis.start()
        replicas = [
            Replica(replica_environ(postgres, redis, top / f"tmp-{name}"), logs / f"replica-{name}.log")
            for name in REPLICA_NAMES
        ]
        replicas[0].start()  # migrations and the admin, once
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(replica.start) for replica in replicas[1:]]:
                future.result()
        nginx = NginxServer([f"127.0.0.1:{replica.port}" for replica in replicas], logs / "nginx")
        nginx.start()  # assigned first: an interrupted start is still stopped below
        with client(replicas[0].base_url, fresh_address()) as http:
            login = http.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        yield Cluster(postgres, redis, replicas, nginx, login.json()["access_token"], logs)
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            replica.stop()
        redis.stop()
        if redis.log_path.exists():
            shutil.copyfile(redis.log_path, logs / "redis.log")
        postgres.close(keep_log=logs / "postgres.log")
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(autouse=True)
def whole(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each cluster test starts on a whole, ready cluster, with the logs marked."""
    if "cluster" in request.fixturenames:
        built: Cluster = request.getfixturevalue("cluster")
        built.wait_whole()
        built.mark()
    yield
