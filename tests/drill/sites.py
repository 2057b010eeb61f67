"""What runs in each site, started from the templates in deploy/multisite/.

- data sites A and B: etcd, Patroni with PostgreSQL 15, Redis (master in A, replica in B),
  Sentinel, and one API replica (gunicorn with the repository's gunicorn.conf.py);
- witness site W: etcd and Sentinel only, so that either data site can be lost and a quorum of
  two (etcd, Sentinel) remains.

Every process runs inside its site's namespace (`ip netns exec`), in a process group of its
own, its output in a log file of the run directory. PostgreSQL refuses to run as root, so
Patroni runs as `postgres` (runuser), with its files in a directory that user owns.

Every wait is bounded (tests/cluster/services.wait_for); a process that exits early raises
SiteError with the end of its log, so a failed run says why.
"""

from __future__ import annotations

import os
import pwd
import string
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.cluster.services import POSTGRES_USER, Replica
from tests.drill.topology import SITES, SUBNET, Site
from tests.server import ROOT, STOP_DEADLINE, gunicorn_command, hermetic_environ, stop_group

TEMPLATES = ROOT / "deploy" / "multisite"
SERVICE = "resistance"  # the Sentinel service name, REDIS_URL's path
DATABASE = "resistance"
API_PORT = 8000
PATRONI_PORT = 8008
PROBE_TIMEOUT = httpx.Timeout(1.0)


class SiteError(RuntimeError):
    """A site's process exited early, or its services could not say what the drill asked (the
    message says which, with the end of the log when there is one)."""


def render(template: str, **values: str) -> str:
    """A file of deploy/multisite with its ${name} placeholders filled.

    Every placeholder must get a value (a missing one is a KeyError, never a half-filled file);
    text that is no placeholder, such as the `${...}` the files' comments mention, stays as it is.
    """
    text = string.Template((TEMPLATES / template).read_text())
    missing = set(text.get_identifiers()) - set(values)
    if missing:
        raise KeyError(f"{template}: no value for {', '.join(sorted(missing))}")
    return text.safe_substitute(values)


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log, for error messages."""
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def patroni_get(site: Site, path: str) -> httpx.Response:
    """GET on a node's Patroni REST API (short timeout: the node may be gone)."""
    return httpx.get(f"http://{site.address}:{PATRONI_PORT}{path}", timeout=PROBE_TIMEOUT)


def pg_connect(site: Site, database: str = DATABASE, timeout: int = 2) -> psycopg.Connection[Any]:
    """A direct connection to one node's PostgreSQL (autocommit; no statement runs over 30 s, so
    a check against a stuck node ends too)."""
    return psycopg.connect(
        host=site.address,
        port=5432,
        user=POSTGRES_USER,
        dbname=database,
        connect_timeout=timeout,
        autocommit=True,
        options="-c statement_timeout=30000",
    )


class Reaped:
    """A process of a site that was lost (every pid got SIGKILL at once): reap() collects its
    exit status and forgets it, so it may be started again (bounded; SIGKILL to the group if it
    lingers)."""

    process: subprocess.Popen[bytes] | None

    def reap(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            try:
                process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                stop_group(process)


class SiteProcess(Reaped):
    """One long-running program inside a site's namespace, in its own process group."""

    def __init__(
        self, site: Site, label: str, args: list[str], log_path: Path, cwd: Path | None = None
    ) -> None:
        self.site = site
        self.label = label
        self.args = args
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SiteProcess:
        """Spawn it in the site's namespace, output appended to its log."""
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(  # noqa: S603 - our own arguments
                self.site.command(*self.args),
                cwd=self.cwd,
                env=hermetic_environ(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stop() signals the whole group; Ctrl-C at make reaches only us
            )
        return self

    @property
    def running(self) -> bool:
        """Started and not exited."""
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        """Raise SiteError with the log's end when the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise SiteError(f"{self.label} exited ({self.process.returncode}):\n{tail(self.log_path)}")

    def stop(self) -> None:
        """Graceful stop, then SIGKILL to the group (tests/server.stop_group)."""
        process, self.process = self.process, None
        stop_group(process)


class SiteReplica(Reaped, Replica):
    """An API replica (tests/cluster/services.Replica: killable, respawnable on its port) that
    runs inside a site's namespace and listens on the site's address, port 8000."""

    def __init__(self, site: Site, environ: Mapping[str, str], log_path: Path) -> None:
        super().__init__(environ, log_path)
        self.site = site
        self.port = API_PORT

    @property
    def base_url(self) -> str:
        """Where the replica answers: its site's address (GunicornServer's is 127.0.0.1)."""
        return f"http://{self.site.address}:{self.port}"

    def _spawn(self) -> None:
        """As GunicornServer._spawn, but in the namespace and on the site's address."""
        self._spawned_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        environ = {**self.environ, "PORT": str(self.port), "HOST": self.site.address}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own arguments
                self.site.command(*gunicorn_command()),
                cwd=ROOT,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )


def release_segment(data_dir: Path) -> bool:
    """Remove the System V shared memory segment a PostgreSQL killed with SIGKILL leaves behind.

    A postmaster removes its small interlock segment when it exits in any other way; after
    SIGKILL (a lost site, a teardown) the segment stays until a postmaster starts again in the
    same data directory. postmaster.pid names it (line 7: key and id); it is removed only when
    nothing is attached to it (/proc/sysvipc/shm), so a live server's segment is never touched.
    True when one was removed.
    """
    try:
        shmid = int((data_dir / "postmaster.pid").read_text().splitlines()[6].split()[1])
        table = Path("/proc/sysvipc/shm").read_text().splitlines()
    except (OSError, IndexError, ValueError):
        return False
    header = table[0].split()
    for line in table[1:]:
        row = dict(zip(header, line.split(), strict=False))
        if row.get("shmid") == str(shmid) and row.get("nattch") == "0":
            removed = subprocess.run(  # noqa: S603 - our own arguments
                ["ipcrm", "-m", str(shmid)], capture_output=True, timeout=5, check=False
            )
            return removed.returncode == 0
    return False


def _owned_by_postgres(path: Path) -> Path:
    """chown to the postgres user: PostgreSQL runs as it, and must own its data and config."""
    owner = pwd.getpwnam(POSTGRES_USER)
    os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def etcd_endpoints(port: int = 2379) -> str:
    """Every etcd member's client address, comma-separated (patroni.yml's etcd3 hosts)."""
    return ",".join(f"{site.address}:{port}" for site in SITES)


class SiteNode:
    """Everything one site runs, with its files under `root` (one directory per site)."""

    def __init__(self, site: Site, root: Path, bindir: Path, redis_server: str) -> None:
        self.site = site
        self.root = root
        self.bindir = bindir
        self.redis_server = redis_server
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)  # noqa: S103 - traversable, not listable, for the postgres user
        self.logs = root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.etcd: SiteProcess | None = None
        self.patroni: SiteProcess | None = None
        self.redis: SiteProcess | None = None
        self.sentinel: SiteProcess | None = None
        self.api: SiteReplica | None = None

    # -- etcd -------------------------------------------------------------------------------

    def start_etcd(self) -> None:
        """etcd from etcd.conf.yml; its data survives a loss, so a restart rejoins the cluster."""
        data = self.root / "etcd"
        data.mkdir(mode=0o700, exist_ok=True)
        config = self.root / "etcd.conf.yml"
        config.write_text(
            render(
                "etcd.conf.yml",
                member_name=self.site.name,
                site_address=self.site.address,
                data_dir=str(data / "data"),
                initial_cluster=",".join(f"{s.name}=http://{s.address}:2380" for s in SITES),
            )
        )
        args = ["etcd", "--config-file", str(config)]
        self.etcd = SiteProcess(self.site, f"etcd {self.site.name}", args, self.logs / "etcd.log").start()

    def etcd_healthy(self) -> bool:
        """etcd's /health says true: the member is up and the cluster has a leader."""
        assert self.etcd is not None
        self.etcd.check_alive()
        response = httpx.get(f"http://{self.site.address}:2379/health", timeout=PROBE_TIMEOUT)
        return response.status_code == 200 and response.json().get("health") == "true"

    # -- Patroni and PostgreSQL --------------------------------------------------------------

    @property
    def pg_root(self) -> Path:
        """This node's PostgreSQL files (data, socket, .pgpass, patroni.yml), owned by postgres."""
        return self.root / "pg"

    def start_patroni(self) -> None:
        """Patroni as the postgres user; on the first start it bootstraps or clones, on a
        restart after a loss it recovers the old data directory (pg_rewind or a new clone)."""
        if not self.pg_root.exists():
            self.pg_root.mkdir(mode=0o700)
            _owned_by_postgres(self.pg_root)
        run_dir = self.pg_root / "run"
        if not run_dir.exists():
            run_dir.mkdir(mode=0o700)
            _owned_by_postgres(run_dir)
        config = self.pg_root / "patroni.yml"
        config.write_text(
            render(
                "patroni.yml",
                node_name=self.site.name,
                site_address=self.site.address,
                etcd_hosts=etcd_endpoints(),
                data_dir=str(self.pg_root / "data"),
                run_dir=str(run_dir),
                bin_dir=str(self.bindir),
                subnet=SUBNET,
            )
        )
        _owned_by_postgres(config)
        self.patroni = SiteProcess(
            self.site,
            f"patroni {self.site.name}",
            ["runuser", "-u", POSTGRES_USER, "--", "patroni", str(config)],
            self.logs / "patroni.log",
            cwd=self.pg_root,
        ).start()

    def patroni_state(self) -> dict[str, Any]:
        """This node's own view (GET /patroni): role, state, timeline..."""
        assert self.patroni is not None
        self.patroni.check_alive()
        return dict(patroni_get(self.site, "/patroni").json())

    def is_primary(self) -> bool:
        """Patroni says this node leads (GET /primary is 200 on the leader alone)."""
        return patroni_get(self.site, "/primary").status_code == 200

    def is_sync_standby(self) -> bool:
        """Patroni says this node is the synchronous standby (GET /sync is 200)."""
        return patroni_get(self.site, "/sync").status_code == 200

    # -- Redis and Sentinel ------------------------------------------------------------------

    def start_redis(self, master: Site | None) -> None:
        """Redis on the site's address; a replica of `master` unless master is None."""
        data = self.root / "redis"
        data.mkdir(mode=0o700, exist_ok=True)
        config = self.root / "redis.conf"
        config.write_text(render("redis.conf", site_address=self.site.address, data_dir=str(data)))
        args = [self.redis_server, str(config)]
        if master is not None and master != self.site:
            args += ["--replicaof", master.address, "6379"]
        self.redis = SiteProcess(self.site, f"redis {self.site.name}", args, self.logs / "redis.log").start()

    def start_sentinel(self, master: Site) -> None:
        """A sentinel that monitors `master` (the current one: after a failover, the new one);
        a fresh config file each start, which Sentinel then rewrites as it learns."""
        data = self.root / "sentinel"
        data.mkdir(mode=0o700, exist_ok=True)
        config = data / "sentinel.conf"
        config.write_text(
            render(
                "sentinel.conf",
                site_address=self.site.address,
                service=SERVICE,
                master_host=master.address,
                data_dir=str(data),
            )
        )
        self.sentinel = SiteProcess(
            self.site,
            f"sentinel {self.site.name}",
            [self.redis_server, str(config), "--sentinel"],
            self.logs / "sentinel.log",
        ).start()

    # -- the whole site ----------------------------------------------------------------------

    def processes(self) -> list[SiteProcess]:
        """The site's processes started so far (the API replica is apart: a Replica)."""
        return [p for p in (self.etcd, self.patroni, self.redis, self.sentinel) if p is not None]

    def reap_all(self) -> None:
        """After the site was lost: every process got SIGKILL; collect them."""
        for process in self.processes():
            process.reap()
        if self.api is not None:
            self.api.reap()

    def release_shared_memory(self) -> bool:
        """After PostgreSQL was killed here: remove its leftover segment (release_segment)."""
        return release_segment(self.pg_root / "data")
