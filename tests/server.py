"""A real gunicorn on loopback for tests: started with `-c gunicorn.conf.py`, waited for, stopped for sure.

The server runs in its own process group with a hermetic environment (nothing of ours leaks in
from the shell but PATH-like basics), writes stdout and stderr to one file the tests can read,
and is always stopped by signalling the whole group, so no worker outlives the test run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from api.config import ENVIRONMENT_NAMES
from tests.conftest import SECRET
from tests.robot_stub import RobotStub

ROOT = Path(__file__).resolve().parent.parent
START_DEADLINE = 30.0  # seconds for migrations, the admin and the workers to come up
STOP_DEADLINE = 10.0
REQUEST_TIMEOUT = httpx.Timeout(15.0, connect=5.0)

# Everything the app or gunicorn reads from the environment: a test sets what it means explicitly.
_OWNED = set(ENVIRONMENT_NAMES) | {
    "TEST_DATABASE_URL",
    "GUNICORN_CMD_ARGS",
    "GUNICORN_THREADS",
    "FORWARDED_ALLOW_IPS",
    "FLASK_APP",
    "FLASK_ENV",
    "FLASK_DEBUG",
    "REQUIRE_SERVICES",
}


def hermetic_environ(**settings: str) -> dict[str, str]:
    """os.environ without any setting of the app or gunicorn, plus `settings`."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in _OWNED and not key.startswith(("PYTEST_", "COV_CORE_"))
    }
    environ["PYTHONUNBUFFERED"] = "1"
    environ.update(settings)
    return environ


ADMIN_PASSWORD = "resistance-admin-pass-7319"
# The auth bucket is 10/minute per client IP by default, and every test client is 127.0.0.1.
UNLIMITED = "100000/minute"


def server_environ(db_url: str, **settings: str) -> dict[str, str]:
    """The usual test server: the test database and secret, a known admin, no tight limits."""
    return hermetic_environ(
        **{
            "DATABASE_URL": db_url,
            "JWT_SECRET_KEY": SECRET,
            "APP_ENV": "development",
            "ADMIN_USERNAME": "admin",
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "RATELIMIT_AUTH": UNLIMITED,
            "RATELIMIT_DEFAULT": UNLIMITED,
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "8",
            **settings,
        }
    )


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def kill_group(pgid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Signal a whole process group (SIGKILL by default); a group already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # the group is gone already


def stop_group(process: subprocess.Popen[Any] | None) -> int | None:
    """SIGTERM to a group leader (a graceful stop), SIGKILL to its group after STOP_DEADLINE, and
    once more at the end for anything it left behind; its exit code (None when not running)."""
    if process is None:
        return None
    try:
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        kill_group(process.pid)
        return process.wait(timeout=STOP_DEADLINE)
    finally:
        kill_group(process.pid)


def run_to_exit(
    args: list[str], environ: Mapping[str, str], timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root to completion; stdout and stderr combined.

    It runs in its own process group, killed whole on timeout, so nothing it forked survives.
    """
    with subprocess.Popen(
        args,
        cwd=ROOT,
        env=dict(environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process.pid)
            output, _ = process.communicate()
            raise AssertionError(f"{args} did not exit within {timeout:g}s:\n{output}") from None
        return subprocess.CompletedProcess(args, process.returncode, output)


def gunicorn_command(config: str = "gunicorn.conf.py") -> list[str]:
    """gunicorn from this interpreter, configured only by a config file (gunicorn.conf.py unless
    told otherwise: the benchmark's bare-Flask ceiling has its own) and the environment."""
    return [sys.executable, "-m", "gunicorn", "-c", config]


class ServerError(RuntimeError):
    """gunicorn did not come up (its output is in the message)."""


class ManagedProcess:
    """A server process used as a context manager: start() on entry, stop() on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> int | None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:  # interrupted while starting (SIGTERM, Ctrl-C): leave nothing behind
            self.stop()
            raise

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()


class GunicornServer(ManagedProcess):
    """One gunicorn master and its workers, reachable at `base_url` once `start()` returned."""

    def __init__(self, environ: Mapping[str, str], log_path: Path, config: str = "gunicorn.conf.py") -> None:
        self.environ = dict(environ)
        self.log_path = log_path
        self.config = config
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self._spawned_at = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the master and workers wrote so far (stdout and stderr)."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def mark(self) -> None:
        """Remember the current end of the output; `output_since_mark()` reads from there."""
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0

    def output_since_mark(self) -> str:
        return self._output_since(self._offset)

    def _output_since(self, offset: int) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for this server (close it; a `with` block does)."""
        return httpx.Client(base_url=self.base_url, timeout=REQUEST_TIMEOUT, **kwargs)

    def start(self, attempts: int = 3) -> GunicornServer:
        """Start on a free port and return once /healthz answers from *this* server."""
        for _ in range(attempts):
            self.port = free_port()
            self._spawn()
            try:
                up = self._wait_until_up()
            except BaseException:  # interrupted while waiting: stop what was spawned
                self.stop()
                raise
            if up:
                return self
            output = self._output_since(self._spawned_at)
            self.stop()
            if "Connection in use" not in output:  # anything but a lost port race is final
                raise ServerError(f"gunicorn did not start:\n{output}")
        raise ServerError(f"gunicorn found no free port in {attempts} attempts:\n{self.output()}")

    def _spawn(self) -> None:
        self._spawned_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        environ = {**self.environ, "PORT": str(self.port), "HOST": "127.0.0.1"}
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                gunicorn_command(self.config),
                cwd=ROOT,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: stop() signals master and workers
            )

    def _wait_until_up(self) -> bool:
        """True once /healthz answers with our request id in our log; False when gunicorn gave up."""
        assert self.process is not None
        probe_id = f"probe-{uuid.uuid4().hex}"
        deadline = time.monotonic() + START_DEADLINE
        with httpx.Client(timeout=httpx.Timeout(1.0)) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                if "Connection in use" in self._output_since(self._spawned_at):
                    return False
                try:
                    response = client.get(f"{self.base_url}/healthz", headers={"X-Request-ID": probe_id})
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                # Someone else's server on a port we lost would not log our probe's id.
                if response.status_code == 200 and probe_id in self._output_since(self._spawned_at):
                    return True
                time.sleep(0.05)
        self.stop()
        raise ServerError(f"gunicorn was not up within {START_DEADLINE:g}s:\n{self.output()}")

    def stop(self) -> int | None:
        """Stop master and workers; returns the master's exit code (None when not running).

        The master gets SIGTERM, gunicorn's graceful stop (workers finish what they serve); the
        whole process group gets SIGKILL after a deadline, and once more at the end for anything
        a master left behind.
        """
        process, self.process = self.process, None
        return stop_group(process)


@contextlib.contextmanager
def whole_app_target(prefix: str, db_url: str | None = None, **settings: str) -> Iterator[GunicornServer]:
    """The server a whole-app run drives (Schemathesis, the scanners of `make scan`), not started yet.

    A fresh SQLite database in a temporary directory unless `db_url` is given, the test admin and
    high limits (server_environ), and a Robot CPU that is a loopback stub serving the bundled
    snapshot, so the run never reaches the internet. The server's log stays readable until the
    block ends, after the server stopped.
    """
    with RobotStub() as robot_cpu, tempfile.TemporaryDirectory(prefix=prefix) as workdir:
        environ = server_environ(
            db_url or f"sqlite:///{workdir}/app.db", ROBOT_CPU_URL=robot_cpu.url, **settings
        )
        yield GunicornServer(environ, Path(workdir) / "gunicorn.log")


# What a whole-app run creates first, so reads find real objects.
SEED_SURVIVORS: list[dict[str, Any]] = [
    {
        "name": "Seed One",
        "age": 30,
        "gender": "female",
        "location": {"latitude": 1.5, "longitude": 2.5},
        "inventory": {"water": 10, "food": 10, "medication": 10, "ammunition": 10},
    },
    {
        "name": "Seed Two",
        "age": 41,
        "gender": "male",
        "location": {"latitude": -10.0, "longitude": 20.0},
        "inventory": {"water": 1, "food": 2, "medication": 3, "ammunition": 4},
    },
]


def seed_survivors(server: GunicornServer) -> tuple[str, list[str]]:
    """Log in as the admin and register SEED_SURVIVORS: the admin's access token and their ids."""
    with server.client() as client:
        return seed_through(client)


def seed_through(client: httpx.Client) -> tuple[str, list[str]]:
    """seed_survivors through any client of the API (a replica, or nginx in front of several)."""
    login = client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    login.raise_for_status()
    token = str(login.json()["access_token"])
    headers = {"Authorization": f"Bearer {token}"}
    ids = []
    for body in SEED_SURVIVORS:
        created = client.post("/api/v1/survivors", json=body, headers=headers)
        created.raise_for_status()
        ids.append(str(created.json()["id"]))
    return token, ids


_BAD_TEXT = ("database is locked", "Traceback", "OperationalError", "[ERROR]", "[CRITICAL]", "WORKER TIMEOUT")


def log_problems(output: str) -> list[str]:
    """Lines of server output that show a failure: 5xx, error records, tracebacks, lock errors."""
    problems = []
    for line in output.splitlines():
        if any(text in line for text in _BAD_TEXT):
            problems.append(line)
        elif line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                problems.append(line)  # a torn or interleaved line is a failure too
                continue
            if entry.get("level") in ("error", "critical") or int(entry.get("status") or 0) >= 500:
                problems.append(line)
    return problems


BARRIER_TIMEOUT = 15.0

Call = Callable[[httpx.Client], httpx.Response]


def at_once(server: GunicornServer, calls: list[Call]) -> list[httpx.Response]:
    """Run every call in its own thread and connection, released together; responses in order.

    Each thread opens its keep-alive connection first and then waits at a barrier, so the
    requests reach the server at the same instant rather than in the order threads started.
    """
    barrier = threading.Barrier(len(calls), timeout=BARRIER_TIMEOUT)

    def run(call: Call) -> httpx.Response:
        with server.client() as client:
            client.get("/healthz").raise_for_status()  # open the connection before the start line
            barrier.wait()
            response = call(client)
            response.read()
            return response

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def assert_no_server_errors(responses: list[httpx.Response]) -> None:
    """No 5xx and no lock error leaked into any response."""
    for response in responses:
        assert response.status_code < 500, (response.status_code, response.text)
        assert "database is locked" not in response.text


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    """How many responses had each status code."""
    return Counter(response.status_code for response in responses)
