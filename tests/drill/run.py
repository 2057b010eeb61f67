"""The drill from start to end: build, load, lose the primary's site, verify, rejoin, report.

1. Remove what a crashed earlier run left (namespaces, bridge, its nginx, its directories).
2. Build the three sites (topology.py) and start, in order: etcd in A, B and W; Patroni in A
   (it bootstraps the cluster and leads), then in B (it clones A and becomes the synchronous
   standby); Redis (master A, replica B) and a Sentinel in every site; the `resistance`
   database; the API replica in A (its start migrates and creates the admin, once), then B's;
   nginx on 127.0.0.1 in front of both.
3. Load through nginx (load.py) for BEFORE_LOSS seconds, then lose the site of the Patroni
   leader at once (link down, SIGKILL to every process in it), keep the load for AFTER_LOSS
   seconds, stop it.
4. Measure the failover: detection (loss -> the survivor's Patroni logs that it took the leader
   lock) and promotion (-> its PostgreSQL commits a transaction, polled every 0.1 s).
5. Verify every write on the new primary (verify.py).
6. Rejoin the lost site: link up, its etcd, Patroni (which rewinds the old primary, or clones it
   again), Redis as a replica of the current master, Sentinel, API replica; wait until Patroni
   has it streaming as the synchronous standby.

The last line is `drill: acknowledged=N lost=L duplicated=D unavailable_s=S rejoined=yes|no`;
the exit status is 0 only when nothing was lost or duplicated, writes stopped for at most
MAX_UNAVAILABLE seconds and the site rejoined. Without root, network namespaces or the
packages, it says what is missing (naming .ci/system-packages) and exits 0, or 2 under
REQUIRE_SERVICES=1.

Everything is torn down at the end, after a failure, on Ctrl-C or SIGTERM, and when the hard
deadline (HARD_DEADLINE) passes; a failed run first copies its logs to artifacts/drill-logs/
(DRILL_KEEP_LOGS=1: every run).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx
import pytest
import redis

from tests.cluster.services import cluster_tools, wait_for
from tests.drill import topology
from tests.drill.load import WRITE_DEADLINE, Ledger, LoadClient, Write, start_load, stop_load
from tests.drill.sites import (
    API_PORT,
    DATABASE,
    SERVICE,
    SiteError,
    SiteNode,
    SiteReplica,
    patroni_get,
    pg_connect,
    release_segment,
)
from tests.drill.topology import BRIDGE_ADDRESS, DATA_SITES, SITE_A, SITE_B, SITE_W, SITES, Site
from tests.drill.verify import Verdict, longest_gap, outage, verify
from tests.nginx import NginxServer, nginx_binary
from tests.server import ROOT, hermetic_environ

CLIENTS = 6
BEFORE_LOSS = 15.0
AFTER_LOSS = 25.0
MAX_UNAVAILABLE = 15.0
# Seconds for the whole drill; the teardown after it is bounded on its own (SIGKILL to every
# namespace, nginx's stop) and usually takes under 2 s. A normal run takes 70-90 s.
HARD_DEADLINE = 225
REJOIN_DEADLINE = 60.0
START_DEADLINE = 40.0  # one service coming up
SENTINEL_PORT = 26379
RUN_PREFIX = "resistance-drill-"
LOG_COPY = ROOT / "artifacts" / "drill-logs"
REQUIRED_PROGRAMS = ("ip", "runuser", "patroni", "etcd")
PROBE = f"{topology.PREFIX}probe"  # the namespace and bridge preflight() makes and removes
# Named by the skip message: what the drill needs of what .ci/system-packages installs.
PACKAGES = (
    "the Debian packages patroni, etcd-server, etcd-client, nginx, redis-server and postgresql"
    " (install them once, as root, with .ci/system-packages)"
)


class Skip(Exception):
    """The drill cannot run on this machine (the message says what is missing)."""


class Interrupted(BaseException):
    """Ctrl-C, SIGTERM or the hard deadline: unwinds through every `except Exception` (a probe's
    "not yet" handler must not swallow it) to the teardown."""


_started = time.monotonic()


def say(message: str) -> None:
    """A progress line, with the seconds since the drill started."""
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", flush=True)  # noqa: T201 - the drill's report


def preflight() -> tuple[Path, str]:
    """(PostgreSQL bindir, redis-server) or Skip naming what is missing."""
    if os.geteuid() != 0:
        raise Skip("not running as root")
    missing = [name for name in REQUIRED_PROGRAMS if shutil.which(name) is None]
    if missing:
        raise Skip(f"{', '.join(missing)} missing")
    try:
        bindir, redis_server = cluster_tools()  # PostgreSQL binaries, redis-server, the postgres user
        nginx_binary()
    except (pytest.skip.Exception, pytest.fail.Exception) as outcome:
        raise Skip(str(outcome.msg)) from None
    taken = topology.foreign_addresses()
    if taken:
        raise Skip(f"{topology.SUBNET}, the drill's network, is in use here (on {', '.join(taken)})")
    try:  # what the drill builds, once, small: a namespace and a bridge (needs CAP_SYS_ADMIN, CAP_NET_ADMIN)
        topology.ip("netns", "add", PROBE)
        topology.ip("link", "add", PROBE, "type", "bridge")
    except topology.TopologyError as error:
        raise Skip(f"network namespaces or bridges are not available here ({error})") from None
    finally:
        topology.ip("link", "delete", PROBE, check=False)
        topology.ip("netns", "delete", PROBE, check=False)
    return bindir, redis_server


def hold_run_lock() -> TextIO | None:
    """An exclusive lock for this run (None when another drill holds it): the names are fixed
    (drl-a, 10.77.0.1, ...), so two drills at once would tear down each other's sites. The
    kernel drops the lock when the process ends, however it ends."""
    directory = Path("/run/lock") if Path("/run/lock").is_dir() else Path(tempfile.gettempdir())
    handle = (directory / "resistance-drill.lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def remove_previous_runs() -> list[str]:
    """What a crashed run left: its namespaces and everything in them, the bridge
    (topology.remove_leftovers), its nginx in the root namespace (found by the pid file in its
    run directory), the shared memory its killed PostgreSQL left, and its directories."""
    removed = topology.remove_leftovers()
    for directory in Path(tempfile.gettempdir()).glob(f"{RUN_PREFIX}*"):
        for data_dir in directory.glob("*/pg/data"):
            release_segment(data_dir)
        pid_file = directory / "nginx" / "nginx.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            pid, command = 0, b""
        if pid and b"nginx" in command:
            try:
                os.killpg(pid, signal.SIGKILL)  # started as a group leader (tests/nginx.py)
                removed.append(f"nginx {pid}")
            except ProcessLookupError:
                pass
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(f"directory {directory}")
    return removed


@contextlib.contextmanager
def sentinel(site: Site) -> Iterator[redis.Redis]:
    """A client of one site's Sentinel (1 s timeouts: the site may be gone)."""
    client = redis.Redis(
        host=site.address,
        port=SENTINEL_PORT,
        socket_timeout=1,
        socket_connect_timeout=1,
        decode_responses=True,
    )
    try:
        yield client
    finally:
        client.close()


def local_first(first: Site, sites: tuple[Site, ...]) -> list[Site]:
    """`sites` with `first` moved to the front: a replica's own site first (see database_url)."""
    return [first, *(site for site in sites if site != first)]


def sentinel_url(first: Site) -> str:
    """REDIS_URL for a replica: every sentinel, its own site's first.

    redis-py asks the sentinels in order (and moves the first that answers to the front), so
    a replica that named a lost site's sentinel first would spend a connect timeout on it
    before asking the next.
    """
    hosts = ",".join(f"{site.address}:{SENTINEL_PORT}" for site in local_first(first, SITES))
    return f"redis+sentinel://{hosts}/{SERVICE}"


def database_url(first: Site) -> str:
    """A libpq multi-host URL: libpq tries the hosts in order and keeps the one that takes
    writes (target_session_attrs=read-write), so a replica finds the primary wherever it is.

    `first` is the replica's own site: its nearest node is tried first, so while the other
    site is unreachable a new connection does not spend connect_timeout on it when the local
    node is the primary. The timeouts make a vanished host fail fast instead of hanging:
    connect_timeout for a connect, TCP keepalives for an idle pooled connection and
    tcp_user_timeout for one whose query is in flight (unacknowledged data).
    SQLAlchemy 2.1 does not parse several hosts in the netloc (host1:5432,host2:5432 is read as
    one port), so the hosts go in `host` query parameters, as the README shows.
    """
    query = "&".join(
        [f"host={site.address}:5432" for site in local_first(first, DATA_SITES)]
        + [
            "target_session_attrs=read-write",
            "connect_timeout=2",
            "keepalives=1",
            "keepalives_idle=1",
            "keepalives_interval=1",
            "keepalives_count=2",
            "tcp_user_timeout=2500",
        ]
    )
    return f"postgresql+psycopg://postgres@/{DATABASE}?{query}"


class PromotionProbe(threading.Thread):
    """Polls one node's PostgreSQL until it commits a transaction: the moment it took writes."""

    def __init__(self, site: Site) -> None:
        super().__init__(name="promotion-probe", daemon=True)
        self.site = site
        self.writable_at: float | None = None  # wall clock
        self.done = threading.Event()

    def run(self) -> None:
        """Poll every 0.1 s; a standby answers pg_is_in_recovery() = true, a node down refuses."""
        while not self.done.is_set():
            try:
                with pg_connect(self.site, timeout=1) as connection:
                    row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
                    if row is not None and not row[0]:
                        connection.execute("SELECT txid_current()")  # an xid, committed
                        self.writable_at = time.time()
                        return
            except Exception:  # down, starting, refusing: not yet
                pass
            time.sleep(0.1)


_LOCK_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO: promoted self to leader by acquiring session lock"
)


def lock_taken_at(log: Path, after: float) -> float | None:
    """When (wall clock) Patroni logged that it took the leader lock, the first time after
    `after`; Patroni's log times are local time with milliseconds."""
    for line in log.read_text(errors="replace").splitlines():
        found = _LOCK_LINE.match(line)
        if found:
            at = datetime.datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if at >= after - 0.01:
                return at
    return None


class Drill:
    """The sites, nginx and the run directory, and the steps over them."""

    def __init__(self, bindir: Path, redis_server: str) -> None:
        self.top = Path(tempfile.mkdtemp(prefix=RUN_PREFIX))
        os.chmod(self.top, 0o711)  # noqa: S103 - traversable, not listable, for the postgres user
        self.nodes = {site: SiteNode(site, self.top / site.name, bindir, redis_server) for site in SITES}
        self.nginx: NginxServer | None = None
        self.ledger: Ledger | None = None
        self.stop_event: threading.Event | None = None
        self.threads: list[LoadClient] = []
        self.tag = secrets.token_hex(3)
        self.jwt_secret = secrets.token_urlsafe(48)
        self.admin_password = secrets.token_urlsafe(24)
        self.patroni_offset = 0  # where the lost node's Patroni log was when it came back

    # -- setup -------------------------------------------------------------------------------

    def setup(self) -> None:
        """Build the sites and start everything, each step waited for (bounded)."""
        topology.build()
        say("sites built: bridge drl-wan, namespaces drl-a, drl-b, drl-w")
        for node in self.nodes.values():
            node.start_etcd()
        for node in self.nodes.values():
            wait_for(f"etcd {node.site.name} healthy", node.etcd_healthy, START_DEADLINE)
        say("etcd: 3 members healthy")
        a, b = self.nodes[SITE_A], self.nodes[SITE_B]
        a.start_patroni()
        wait_for("Patroni a leading", a.is_primary, START_DEADLINE)
        b.start_patroni()
        wait_for("Patroni b the synchronous standby", b.is_sync_standby, START_DEADLINE)
        say("Patroni: a leads, b is the synchronous standby")
        a.start_redis(master=None)
        b.start_redis(master=SITE_A)
        for node in self.nodes.values():
            node.start_sentinel(master=SITE_A)
        for site in SITES:
            wait_for(
                f"sentinel {site.name} sees the replica and 2 sentinels",
                partial(self.sentinel_ready, site),
                30,
            )
        say("Redis: master a, replica b; 3 sentinels agree")
        with pg_connect(SITE_A, database="postgres") as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        for site in DATA_SITES:  # A first: its start migrates and creates the admin, once
            node = self.nodes[site]
            node.api = SiteReplica(site, self.api_environ(site, node), node.logs / "api.log")
            node.api.respawn()
            urls = {name: node.api.environ[name] for name in ("DATABASE_URL", "REDIS_URL")}
            say(f"replica {site.name}: " + " ".join(f"{name}={url}" for name, url in urls.items()))
        say(f"API replicas up on {SITE_A.address}:{API_PORT} and {SITE_B.address}:{API_PORT}")
        self.nginx = NginxServer([f"{site.address}:{API_PORT}" for site in DATA_SITES], self.top / "nginx")
        self.nginx.start()
        for site in DATA_SITES:
            wait_for(f"replica {site.name} ready", partial(self.ready, site), START_DEADLINE)
        say(f"nginx on {self.nginx.base_url} in front of both replicas")

    def api_environ(self, site: Site, node: SiteNode) -> dict[str, str]:
        """An API replica's environment: production settings, limits far above the load's rate."""
        tmpdir = node.root / "api-tmp"
        tmpdir.mkdir(exist_ok=True)
        return hermetic_environ(
            APP_ENV="production",
            DATABASE_URL=database_url(site),
            REDIS_URL=sentinel_url(site),
            JWT_SECRET_KEY=self.jwt_secret,
            ADMIN_USERNAME="admin",
            ADMIN_PASSWORD=self.admin_password,
            RATELIMIT_DEFAULT="100000/minute",
            RATELIMIT_AUTH="100000/minute",
            TRUSTED_PROXIES="1",  # nginx is the one proxy hop
            FORWARDED_ALLOW_IPS=BRIDGE_ADDRESS,  # where nginx connects from
            WEB_CONCURRENCY="2",
            GUNICORN_THREADS="4",
            ROBOT_CPU_URL="http://127.0.0.1:9",  # never called by the load; nothing leaves the sites
            TMPDIR=str(tmpdir),  # gunicorn's heartbeat files and the metrics directory
        )

    def sentinel_ready(self, site: Site) -> bool:
        """This sentinel knows the replica and the two other sentinels (they found each other)."""
        with sentinel(site) as client:
            master: Any = client.sentinel_master(SERVICE)
        return int(master["num-slaves"]) >= 1 and int(master["num-other-sentinels"]) >= 2

    def redis_master(self, ask: list[Site]) -> Site:
        """The current Redis master as the sentinels in `ask` know it."""
        for site in ask:
            try:
                with sentinel(site) as client:
                    address: Any = client.sentinel_get_master_addr_by_name(SERVICE)
                return next(s for s in SITES if s.address == address[0])
            except (redis.RedisError, StopIteration, TypeError):
                continue
        raise SiteError(f"no sentinel of {[s.name for s in ask]} named the master")

    def ready(self, site: Site) -> bool:
        """The replica answers /readyz (its database and Redis reachable)."""
        return httpx.get(f"http://{site.address}:{API_PORT}/readyz", timeout=2.0).status_code == 200

    def etcd_leader(self) -> str:
        """The site whose etcd member leads Raft (a lost leader costs an election, and etcd then
        renews every lease for a full TTL: Patroni's leader key lives that much longer)."""
        try:
            status = httpx.post(f"http://{SITE_W.address}:2379/v3/maintenance/status", json={}, timeout=1.0)
            leader = status.json()["leader"]
            for site in SITES:
                member = httpx.post(f"http://{site.address}:2379/v3/maintenance/status", json={}, timeout=1.0)
                if member.json()["header"]["member_id"] == leader:
                    return site.name
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        return "?"

    def leader(self) -> Site:
        """The Patroni leader (GET /primary answers 200 on it alone)."""

        def find() -> Site | None:
            """The data site whose Patroni answers 200 to GET /primary, if any yet."""
            return next((site for site in DATA_SITES if self.nodes[site].is_primary()), None)

        return wait_for("a Patroni leader", find, 10)

    # -- the fault ---------------------------------------------------------------------------

    def load_and_lose(self) -> tuple[Site, float, float, PromotionProbe]:
        """Load, lose the leader's site, keep loading, stop: (lost site, loss wall time, loss
        monotonic time, the probe that timed the promotion)."""
        assert self.nginx is not None
        self.ledger, self.stop_event, self.threads = start_load(self.nginx.base_url, CLIENTS, self.tag)
        say(f"load: {CLIENTS} clients through nginx for {BEFORE_LOSS:g}s")
        time.sleep(BEFORE_LOSS)
        lost = self.leader()
        survivor = next(s for s in DATA_SITES if s != lost)
        etcd_leader = self.etcd_leader()
        probe = PromotionProbe(survivor)
        probe.start()
        lost_mono = time.monotonic()
        lost_wall = topology.lose(lost)
        self.nodes[lost].reap_all()
        writes, _ = self.ledger.snapshot()
        say(
            f"LOST site {lost.name} (the Patroni leader; the etcd leader was in {etcd_leader}): link down,"
            f" every process killed; {sum(w.acknowledged for w in writes)} writes acknowledged so far"
        )
        time.sleep(AFTER_LOSS)
        stragglers = stop_load(self.stop_event, self.threads, WRITE_DEADLINE + 10)
        if stragglers:
            say(f"WARNING: clients still busy after stopping: {', '.join(stragglers)}")
        say(f"load stopped {time.monotonic() - lost_mono:.1f}s after the loss")
        probe.done.set()
        return lost, lost_wall, lost_mono, probe

    # -- rejoin ------------------------------------------------------------------------------

    def rejoin(self, lost: Site, survivor: Site, budget: float) -> bool:
        """Bring the lost site back and wait (at most `budget` s) until its PostgreSQL streams
        from the new primary as the synchronous standby."""
        node, deadline = self.nodes[lost], time.monotonic() + budget
        patroni_log = node.logs / "patroni.log"
        self.patroni_offset = patroni_log.stat().st_size if patroni_log.exists() else 0
        topology.set_link(lost, up=True)
        node.start_etcd()
        wait_for(f"etcd {lost.name} healthy again", node.etcd_healthy, deadline - time.monotonic())
        node.start_patroni()
        master = self.redis_master([s for s in SITES if s != lost])
        node.start_redis(master=master)
        node.start_sentinel(master=master)
        say(f"rejoin: link up, etcd {lost.name} healthy; Patroni, Redis (replica of {master.name}), Sentinel")
        assert node.api is not None
        node.api.respawn()
        say(f"rejoin: API replica {lost.name} up")

        def streaming_sync() -> bool:
            """The primary streams to it as its synchronous standby, and Patroni says so too."""
            with pg_connect(survivor, database="postgres", timeout=1) as connection:
                row = connection.execute(
                    "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = %s",
                    (lost.name,),
                ).fetchone()
            return row == ("streaming", "sync") and node.is_sync_standby()

        try:
            wait_for(
                f"{lost.name} streaming as the synchronous standby",
                streaming_sync,
                max(1.0, deadline - time.monotonic()),
                interval=0.5,
            )
            # Its replica's DATABASE_URL names its own node first, now a standby: a write through
            # it reaches the primary only when libpq skips a read-only node (psycopg #674).
            wait_for(
                f"a write through replica {lost.name}",
                partial(self.writes_through, lost),
                max(1.0, deadline - time.monotonic()),
                interval=0.5,
            )
        except AssertionError as error:  # wait_for's "not within" (a pytest helper)
            say(f"rejoin: {error}")
            return False
        say(f"rejoin: a write through replica {lost.name} (its own node now a standby) reached the primary")
        return True

    def writes_through(self, site: Site) -> bool:
        """A registration sent straight to this site's replica (not through nginx) is created."""
        body = {
            "username": f"rejoined-{self.tag}-{secrets.token_hex(4)}",
            "password": secrets.token_urlsafe(18),
        }
        url = f"http://{site.address}:{API_PORT}/api/v1/auth/register"
        return httpx.post(url, json=body, timeout=5.0).status_code == 201

    def cluster_view(self, site: Site) -> str:
        """The members as Patroni lists them (GET /cluster), one short entry each."""
        try:
            members = patroni_get(site, "/cluster").json()["members"]
        except (httpx.HTTPError, KeyError, ValueError) as error:
            return f"unavailable ({error!r})"
        return "; ".join(
            f"{m['name']} {m['role']} {m['state']} timeline {m.get('timeline', '?')} lag {m.get('lag', 0)}"
            for m in members
        )

    def rewind_note(self, lost: Site, offset: int) -> str:
        """How the old primary came back, from what its Patroni logged since `offset`."""
        with (self.nodes[lost].logs / "patroni.log").open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        rewound = "running pg_rewind from" in text
        cloned = "replica has been created using" in text
        if rewound and cloned:
            return "pg_rewind failed, cloned again"
        if rewound:
            return "pg_rewind"
        if cloned:
            return "cloned again"
        return "restarted as a standby, no rewind needed"

    # -- teardown ----------------------------------------------------------------------------

    def copy_logs(self) -> Path:
        """Keep a failed run's logs (the run directory itself is removed)."""
        if LOG_COPY.exists():
            shutil.rmtree(LOG_COPY, ignore_errors=True)
        for node in self.nodes.values():
            if node.logs.exists():
                shutil.copytree(node.logs, LOG_COPY / node.site.name)
        if self.nginx is not None and self.nginx.prefix.exists():
            LOG_COPY.mkdir(parents=True, exist_ok=True)
            for name in ("error.log", "access.log"):
                if (self.nginx.prefix / name).exists():
                    shutil.copyfile(self.nginx.prefix / name, LOG_COPY / f"nginx-{name}")
        return LOG_COPY

    def teardown(self) -> None:
        """Stop everything, for sure and within seconds: this runs after failures too.

        Patroni gets SIGTERM first (all at once), so PostgreSQL shuts down and removes its
        shared memory; whatever is still running after that, in any namespace, gets SIGKILL,
        and a segment a killed PostgreSQL left is removed (sites.release_segment)."""
        if self.stop_event is not None:
            self.stop_event.set()
        if self.nginx is not None:
            self.nginx.stop()
        patronis = [node.patroni for node in self.nodes.values() if node.patroni is not None]
        for patroni in patronis:
            if patroni.process is not None and patroni.process.poll() is None:
                patroni.process.send_signal(signal.SIGTERM)
        for patroni in patronis:
            patroni.stop()  # waits (STOP_DEADLINE at most), then SIGKILL to its group
        for site in SITES:
            topology.kill_namespace(site.namespace)
        for node in self.nodes.values():
            node.reap_all()
            node.release_shared_memory()
        topology.remove_leftovers()
        shutil.rmtree(self.top, ignore_errors=True)


def summary(acknowledged: Any, lost: Any, duplicated: Any, unavailable: Any, rejoined: bool) -> str:
    """The last line; "?" for what a failed run never measured (never a reassuring 0)."""
    return (
        f"drill: acknowledged={acknowledged} lost={lost} duplicated={duplicated}"
        f" unavailable_s={unavailable} rejoined={'yes' if rejoined else 'no'}"
    )


def describe(write: Write) -> str:
    """One write for the log: what it was, its final status, its tries and the last reasons."""
    ident = " ".join(f"{k}={v}" for k, v in write.ident.items())
    return (
        f"{write.kind} {ident} status={write.status} attempts={write.attempts} last={write.retried_for[-3:]}"
    )


def report_writes(writes: list[Write]) -> None:
    """Per kind: acknowledged, replayed, refused (a final 4xx), unresolved (no final answer)."""
    for kind in ("register", "login", "survivor", "trade", "accept", "report"):
        mine = [w for w in writes if w.kind == kind]
        refused = [w for w in mine if w.status is not None and not w.acknowledged]
        unresolved = [w for w in mine if w.status is None]
        say(
            f"  {kind:9} {len(mine):4} sent, {sum(w.acknowledged for w in mine):4} acknowledged"
            f" ({sum(w.replayed for w in mine)} replayed), {len(refused)} refused,"
            f" {len(unresolved)} unresolved, {sum(w.attempts - 1 for w in mine)} retries"
        )
        for write in (refused + unresolved)[:3]:
            say(f"    {describe(write)}")
    held = [
        w for w in writes if w.status is None and w.retried_for and w.retried_for[-1] == "409 in progress"
    ]
    if held:
        from api.idempotency import LEASE_SECONDS

        say(
            f"  {len(held)} writes still got '409 in progress' at their {WRITE_DEADLINE:g}s deadline: their"
            " Idempotency-Key was claimed on the lost primary (the claim is committed, so replicated)"
            f" by a request that died with it, and a claim holds for LEASE_SECONDS={LEASE_SECONDS}s."
            " Never acknowledged, so not lost; verify.py checks they were not done twice"
        )


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    """SIGINT, SIGTERM, SIGALRM (the hard deadline): unwind to main's teardown."""
    if signum == signal.SIGALRM:
        raise Interrupted(f"the hard deadline of {HARD_DEADLINE}s passed")
    raise Interrupted(f"interrupted by {signal.Signals(signum).name}")


def main() -> int:
    """Run the drill; the exit status (0 pass or skip, 1 fail, 2 skip under REQUIRE_SERVICES=1)."""
    require = os.environ.get("REQUIRE_SERVICES") == "1"
    try:
        bindir, redis_server = preflight()
    except Skip as skip:
        print(  # noqa: T201
            f"drill: skipped: {skip}. The drill needs root, network namespaces and {PACKAGES}"
            + ("; REQUIRE_SERVICES=1 makes this a failure" if require else ""),
            flush=True,
        )
        return 2 if require else 0
    lock = hold_run_lock()
    if lock is None:
        print("drill: another drill is running on this machine; try again when it ends", flush=True)  # noqa: T201
        return 1
    for name in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(name, _interrupt)
    signal.alarm(HARD_DEADLINE)
    drill: Drill | None = None
    acknowledged: Any = "?"
    lost_count: Any = "?"
    duplicated_count: Any = "?"
    unavailable: Any = "?"
    rejoined = False
    ok = False
    try:
        removed = remove_previous_runs()
        if removed:
            say(f"removed what an earlier run left: {', '.join(removed)}")
        drill = Drill(bindir, redis_server)
        drill.setup()
        lost, lost_wall, lost_mono, probe = drill.load_and_lose()
        survivor = next(s for s in DATA_SITES if s != lost)
        assert drill.ledger is not None
        writes, successes = drill.ledger.snapshot()
        for error in drill.ledger.errors:
            say(f"WARNING: a client died: {error}")
        span, recovered = outage(successes, lost_mono, time.monotonic())
        unavailable = f"{span:.1f}"
        lock_at = lock_taken_at(drill.nodes[survivor].logs / "patroni.log", lost_wall)
        detection = f"{lock_at - lost_wall:.1f}s" if lock_at else "not seen"
        promotion = f"{probe.writable_at - lock_at:.1f}s" if probe.writable_at and lock_at else "not seen"
        total = f"{probe.writable_at - lost_wall:.1f}s" if probe.writable_at else "not seen"
        say(
            f"failover: detection {detection} (loss -> Patroni {survivor.name} took the leader lock),"
            f" promotion {promotion} (-> its PostgreSQL committed), {total} in all"
        )
        say(
            f"writes: no write acknowledged for {span:.1f}s across the loss"
            + ("" if recovered else " (none after it at all)")
            + f"; longest gap during the whole load {longest_gap(successes):.1f}s"
        )
        report_writes(writes)
        promoted = drill.nodes[survivor].is_primary()
        if not promoted:
            say(f"FAILED: Patroni {survivor.name} is not the primary; verifying on its standby anyway")
        with pg_connect(survivor) as connection:
            verdict: Verdict = verify(connection, writes)
        acknowledged, lost_count, duplicated_count = (
            verdict.acknowledged,
            len(verdict.lost),
            len(verdict.duplicated),
        )
        for write in verdict.lost[:10]:
            say(f"LOST: {describe(write)}")
        for line in verdict.duplicated[:10]:
            say(f"DUPLICATED: {line}")
        say(f"verified on the new primary ({survivor.name}): {acknowledged} acknowledged writes")
        rejoin_started = time.monotonic()
        rejoined = drill.rejoin(lost, survivor, REJOIN_DEADLINE)
        if rejoined:
            how = drill.rewind_note(lost, drill.patroni_offset)
            say(
                f"rejoin: {lost.name} streams as the synchronous standby"
                f" {time.monotonic() - rejoin_started:.1f}s after its link came up ({how})"
            )
            say(f"rejoin: Patroni's view: {drill.cluster_view(survivor)}")
        ok = (
            promoted
            and lost_count == 0
            and duplicated_count == 0
            and recovered
            and span <= MAX_UNAVAILABLE
            and rejoined
        )
    except (
        AssertionError,  # a bounded wait ran out (tests/cluster/services.wait_for)
        SiteError,
        topology.TopologyError,
        Interrupted,
        subprocess.SubprocessError,
        OSError,
    ) as error:
        say(f"FAILED: {error}")
    except Exception as error:  # anything else is a bug in the drill: say so, still tear down
        say(f"FAILED (drill error): {error!r}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the teardown short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if drill is not None:
            if not ok or os.environ.get("DRILL_KEEP_LOGS") == "1":
                say(f"logs kept in {drill.copy_logs()}")
            drill.teardown()
            say("torn down")
    print(summary(acknowledged, lost_count, duplicated_count, unavailable, rejoined), flush=True)  # noqa: T201
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
