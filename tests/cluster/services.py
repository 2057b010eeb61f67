"""Real processes on loopback for the cluster test: a private PostgreSQL, a private Redis, and
gunicorn replicas that can be killed and brought back on the same port.

Nothing here touches the machine's shared PostgreSQL (5432) or Redis (6379): each instance is
new, on a free port, with its files in a temporary directory of its own, and it is stopped and
removed by `close()` (the fixtures call it even when a test fails). Every wait is bounded.

- `cluster_tools()`: the PostgreSQL server binaries and redis-server; skips the calling test
  when one is missing (fails it under REQUIRE_SERVICES=1), naming what to install.
- `PrivatePostgres(bindir, root)`: `initdb` into root (as user `postgres` when we are root:
  initdb and postgres refuse to run as root), `start()`, `stop(mode)` (`immediate` is a crash:
  no shutdown checkpoint, clients cut off), `query()`; `url` for the app (user postgres, trust
  authentication, loopback TCP only).
- `PrivateRedis(binary, root)`: redis-server as a child process in its own group, `start()`
  (again on the same port after a stop) and `stop()`. No persistence (deploy/compose.yaml keeps
  an append-only file), so a restart loses every key: the harder case for the app, whose rate
  windows then start afresh and whose revocations must come back from the database.
- `Replica`: a GunicornServer (tests/server.py) that can also be killed with SIGKILL, master and
  workers at once (`kill()`), and started again on the same port (`respawn()`), the one nginx
  names in its upstream; `pids()` lists the master and its workers.
- `fresh_address()` and `client(base_url, address)`: a loopback source address of its own per
  client, hence its own per-IP rate-limit buckets, directly or through nginx.
- `Cluster`: all of it as the tests drive it (`wait_whole()` restores whatever a failed test
  left stopped, and waits until nginx routes to every replica again).
- `unexpected_log_lines(output, allowed_messages)`: like tests/server.py's log_problems, but an
  outage test may allow the app's own expected records (a 503 line, "redis unavailable", ...).
"""

from __future__ import annotations

import itertools
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.nginx import NginxServer
from tests.server import (
    STOP_DEADLINE,
    GunicornServer,
    ServerError,
    free_port,
    kill_group,
    server_environ,
    stop_group,
)

DEADLINE = 20.0  # the longest any wait in the cluster test may take
TIMEOUT = httpx.Timeout(10.0, connect=3.0)
POSTGRES_USER = "postgres"
DATABASE = "resistance"

T = TypeVar("T")


def _require(found: T | None, message: str) -> T:
    if found is not None:
        return found
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (REQUIRE_SERVICES=1)")
    pytest.skip(message)


def _postgres_bindir() -> Path | None:
    """$PG_BIN, else the newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl."""
    candidates = [Path(os.environ["PG_BIN"])] if os.environ.get("PG_BIN") else []
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    candidates += [p for p in versions if p.parent.name.isdigit()]
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def cluster_tools() -> tuple[Path, str]:
    """(PostgreSQL bindir, redis-server path); skip, or fail under REQUIRE_SERVICES=1, without them."""
    bindir = _require(
        _postgres_bindir(),
        "the cluster test needs the PostgreSQL server binaries (initdb, pg_ctl, postgres under "
        "/usr/lib/postgresql/<version>/bin, or PG_BIN): run .ci/system-packages (as root) to install them",
    )
    redis = _require(
        shutil.which("redis-server"),
        "the cluster test needs redis-server on PATH: run .ci/system-packages (as root) to install it",
    )
    if os.geteuid() == 0:  # initdb and postgres refuse root: they run as the postgres user
        _require(shutil.which("runuser"), "the cluster test runs as root and needs runuser (util-linux)")
        try:
            pwd.getpwnam(POSTGRES_USER)
        except KeyError:
            _require(
                None, f"the cluster test runs as root and needs a {POSTGRES_USER!r} user to run PostgreSQL"
            )
    return bindir, redis


def wait_for(what: str, check: Callable[[], T | None], timeout: float = DEADLINE, interval: float = 0.1) -> T:
    """Poll check() until it returns something other than None (or False); at most `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = check()
        except Exception as exc:  # a failed probe is just 'not yet'
            result, last = None, exc
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s (last error: {last!r})")
        time.sleep(interval)


_addresses = itertools.count(1)


def fresh_address() -> str:
    """A loopback address no other client of this run used: its own per-IP rate-limit buckets.

    Linux routes all of 127.0.0.0/8 to lo, so a client can bind any of them with no setup; the
    app sees it as the peer (directly) or as nginx's X-Forwarded-For entry (through nginx).
    """
    n = next(_addresses)
    return f"127.0.{20 + n // 250}.{1 + n % 250}"


def client(base_url: str, address: str | None = None, **kwargs: Any) -> httpx.Client:
    """An httpx client for base_url, from a chosen loopback address when one is given."""
    transport = httpx.HTTPTransport(local_address=address) if address else None
    return httpx.Client(base_url=base_url, timeout=TIMEOUT, transport=transport, **kwargs)


def _run(args: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own arguments
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        start_new_session=True,  # a Ctrl-C at the terminal reaches pytest, which stops these itself
    )


class PrivatePostgres:
    """A PostgreSQL cluster of its own in `root`, on a free loopback port."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root  # owned by the server's user; data, socket and log live here
        self.data = root / "data"
        self.log_path = root / "postgres.log"
        self.port = 0

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _as_owner(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", POSTGRES_USER, "--", *args]
        return list(args)

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run(self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args))

    def create(self, attempts: int = 3) -> PrivatePostgres:
        """initdb, start on a free port, create the app's database."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(POSTGRES_USER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        initdb = _run(
            self._as_owner(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                POSTGRES_USER,
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ),
            timeout=60.0,
        )
        assert initdb.returncode == 0, f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}"
        for _ in range(attempts):
            self.port = free_port()
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            if self.start(check=False):
                break
            if "could not bind" not in self.log()[offset:]:
                raise AssertionError(f"PostgreSQL did not start:\n{self.log()}")
        else:
            raise AssertionError(f"PostgreSQL found no free port in {attempts} attempts:\n{self.log()}")
        self.query(f"CREATE DATABASE {DATABASE}", database="postgres", autocommit=True)
        return self

    def start(self, check: bool = True) -> bool:
        """Start (on self.port) and wait until it accepts connections; True when it did."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            # Speed on a busy CI box; a stop, even `immediate`, loses nothing (the OS keeps the WAL).
            " -c fsync=off -c full_page_writes=off"
        )
        result = self._pg_ctl(
            "-l", str(self.log_path), "-o", options, "-w", "-t", str(int(DEADLINE)), "start"
        )
        if check:
            assert result.returncode == 0, (
                f"pg_ctl start failed:\n{result.stdout}{result.stderr}\n{self.log()}"
            )
        return result.returncode == 0

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m mode (smart, fast, immediate), waiting until the server is gone."""
        result = self._pg_ctl("-m", mode, "-w", "-t", str(int(DEADLINE)), "stop")
        assert result.returncode == 0, f"pg_ctl stop failed:\n{result.stdout}{result.stderr}"

    def running(self) -> bool:
        return self._pg_ctl("status").returncode == 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def query(
        self,
        sql: str,
        params: dict[str, Any] | None = None,
        *,
        database: str = DATABASE,
        autocommit: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Run one statement on a fresh connection; the rows (empty for statements without any)."""
        url = f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"
        engine = create_engine(url, connect_args={"connect_timeout": 5})
        try:
            options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
            with engine.connect().execution_options(**options) as connection:
                result = connection.execute(text(sql), params or {})
                rows = [tuple(row) for row in result] if result.returns_rows else []
                connection.commit()
                return rows
        finally:
            engine.dispose()

    def close(self, keep_log: Path | None = None) -> None:
        """Stop for sure (pg_ctl, then SIGKILL to the postmaster) and remove the files."""
        if self.data.exists():
            if self.running():
                self._pg_ctl("-m", "immediate", "-w", "-t", "10", "stop")
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
                except (ProcessLookupError, ValueError, IndexError):
                    pass
        if keep_log and self.log_path.exists():
            shutil.copyfile(self.log_path, keep_log)
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """redis-server on a free loopback port, in its own process group; stop() and start() again.

    `options` are more command-line directives (`--replicaof 127.0.0.1 <port>`); `config` is a
    configuration file's text, written into root and named first (a sentinel, `--sentinel`,
    needs one it can rewrite).
    """

    def __init__(self, binary: str, root: Path, *options: str, config: str | None = None) -> None:
        self.binary = binary
        self.root = root
        self.options = options
        self.config = config
        self.log_path = root / "redis.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        args = [self.binary]
        if self.config is not None:
            config_path = self.root / "redis.conf"
            config_path.write_text(self.config)
            args.append(str(config_path))
        args += [
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        args += ["--dir", str(self.root), "--daemonize", "no", *self.options]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own arguments
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )

    def ping(self) -> bool:
        import redis

        connection = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(connection.ping())
        except redis.RedisError:
            return False
        finally:
            connection.close()

    def start(self, attempts: int = 3) -> PrivateRedis:
        """Start; a first start picks a free port, a later one reuses it (the app's REDIS_URL)."""
        first = self.port == 0
        for _ in range(attempts if first else 1):
            if first:
                self.port = free_port()
            self._spawn()
            assert self.process is not None
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline and self.process.poll() is None and not self.ping():
                time.sleep(0.05)
            if self.process.poll() is None and self.ping():
                return self
            self.stop()
        raise AssertionError(f"redis-server did not start:\n{self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        """SIGTERM (redis' clean shutdown), then SIGKILL to whatever is left of the group."""
        process, self.process = self.process, None
        stop_group(process)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _children(pid: int) -> set[int]:
    """Every process whose parent is pid (read from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited while we looked
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


class Replica(GunicornServer):
    """A gunicorn replica that can die like a crashed machine and come back on the same port."""

    def pids(self) -> set[int]:
        """The master's pid and its workers' (empty when not running)."""
        if self.process is None or self.process.poll() is not None:
            return set()
        return {self.process.pid} | _children(self.process.pid)

    def kill(self) -> None:
        """SIGKILL to the whole process group at once: master and workers, no cleanup at all."""
        process, self.process = self.process, None
        assert process is not None, "the replica is not running"
        kill_group(process.pid)
        process.wait(timeout=STOP_DEADLINE)

    def respawn(self) -> Replica:
        """Start again on the same port (nginx's upstream names it), waiting until it answers."""
        assert self.process is None, "the replica is still running"
        self._spawn()
        if not self._wait_until_up():
            output = self.output()
            self.stop()
            raise ServerError(f"gunicorn did not come back on port {self.port}:\n{output}")
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


_UNEXPECTED_TEXT = (
    "Traceback",
    "database is locked",
    "[CRITICAL]",
    "[ERROR]",
    "WORKER TIMEOUT",
    "unhandled error",
)


def unexpected_log_lines(
    output: str, allowed_messages: Iterable[str] = (), allowed_statuses: Iterable[int] = ()
) -> list[str]:
    """Lines showing a failure that is not one of the expected ones.

    Always unexpected: a traceback, an unhandled-error record, a critical record, a gunicorn
    error line, a worker timeout, a torn JSON line, a 500. An error record is allowed only with
    one of `allowed_messages`, a 5xx request line only with one of `allowed_statuses`.
    """
    allowed_messages, allowed_statuses = set(allowed_messages), set(allowed_statuses)
    problems = []
    for line in output.splitlines():
        if any(marker in line for marker in _UNEXPECTED_TEXT):
            problems.append(line)
            continue
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            problems.append(line)  # a torn or interleaved line
            continue
        level = entry.get("level")
        status = int(entry.get("status") or 0)
        if (
            level == "critical"
            or (level == "error" and entry.get("message") not in allowed_messages)
            or (status >= 500 and status not in allowed_statuses)
        ):
            problems.append(line)
    return problems


REPLICA_NAMES = ("A", "B", "C")
AUTH_LIMIT = 5


def replica_environ(postgres: PrivatePostgres, redis: PrivateRedis, tmpdir: Path) -> dict[str, str]:
    """A replica's environment: the usual test server (tests/server.py) on the shared services."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    return server_environ(
        postgres.url,
        REDIS_URL=redis.url,
        TRUSTED_PROXIES="1",  # nginx is the one proxy hop
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="4",
        RATELIMIT_AUTH=f"{AUTH_LIMIT}/minute",  # the bucket under test; RATELIMIT_DEFAULT stays high
        # gunicorn's heartbeat files and the metrics directory: removed with the cluster, even
        # those of a replica killed with SIGKILL (its on_exit never runs).
        TMPDIR=str(tmpdir),
    )


@dataclass
class Cluster:
    """The running cluster the tests drive."""

    postgres: PrivatePostgres
    redis: PrivateRedis
    replicas: list[Replica]
    nginx: NginxServer
    admin_token: str
    logs: Path

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def name(self, replica: Replica) -> str:
        return REPLICA_NAMES[self.replicas.index(replica)]

    def mark(self) -> None:
        for replica in self.replicas:
            replica.mark()

    def answered_by(self, request_id: str) -> list[str]:
        """Names of the replicas whose log has a line of this request."""
        needle = f'"request_id": "{request_id}"'
        return [self.name(replica) for replica in self.replicas if needle in replica.output()]

    def ready(self, base_url: str) -> bool:
        with client(base_url) as http:
            return http.get("/readyz").status_code == 200

    def wait_whole(self) -> None:
        """Every dependency and replica running, and each replica ready (bounded)."""
        if not self.postgres.running():
            self.postgres.start()
        if not self.redis.running:
            self.redis.start()
        for replica in self.replicas:
            if not replica.running:
                replica.process = None
                replica.respawn()
        for replica in self.replicas:
            wait_for(f"replica {self.name(replica)} ready", lambda url=replica.base_url: self.ready(url))
        self.wait_routed()

    def wait_routed(self) -> None:
        """Until nginx passes requests to every replica again: after failures it holds a replica
        out for fail_timeout (deploy/nginx.conf: 10 s), which would skew a test's spread."""
        seen: set[str] = set()

        def all_routed() -> bool:
            with self.nginx.client() as http:
                for _ in range(len(self.replicas)):
                    rid = f"routed-{uuid.uuid4().hex}"
                    if http.get("/healthz", headers={"X-Request-ID": rid}).status_code == 200:
                        seen.update(self.answered_by(rid))
            return seen == set(REPLICA_NAMES)

        wait_for("nginx routing to every replica", all_routed, interval=0.5)
