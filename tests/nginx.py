"""nginx on loopback for tests, from the deployment's own config (deploy/nginx.conf).

The API, for any test that puts nginx in front of gunicorn replicas (tests/server.py):

- `nginx_binary()`: the nginx executable; skips the calling test when it is missing (install it
  with `.ci/system-packages`), or fails it when REQUIRE_SERVICES=1.
- `render_config(upstreams, listen)`: deploy/nginx.conf with its `listen` line and the `server`
  lines of `upstream api` replaced (for N upstream addresses such as "127.0.0.1:8001", keeping
  the server parameters max_fails/fail_timeout, dropping `resolve`, which Docker's DNS needs
  and loopback addresses do not), plus `user <current user> <group>;` when running as root, so
  workers do not switch to `nobody` (who could not enter a pytest tmp directory). Nothing else
  changes: the tests run the deployment's settings as written.
- `check_config(config, prefix)`: `nginx -t` on a rendered config; a CompletedProcess.
- `NginxServer(upstreams, prefix)`: a context manager. `start()` renders the config into
  `prefix` (a fresh directory: pid file, temp directories and logs live there), runs nginx in
  the foreground in its own process group on a free loopback port (retrying on a lost port
  race) and returns once it accepts connections; `stop()` (or leaving the `with` block) ends
  it and kills the whole group, so no worker survives. `transform` edits the rendered text
  before it is written (e.g. a tighter limit_req for one test). `base_url`, `client()`,
  `access_log()` (the JSON lines, parsed), `logged(request_ids)` (their lines, waiting for
  nginx to write them: it logs after the response went out) and `error_output()` are for
  assertions.
- `DroppingUpstream()`: a fake replica that reads a request head and closes the connection
  without answering (a replica dying mid-request); it records (method, X-Request-ID) of what
  it saw. A context manager; `address` is its "127.0.0.1:port".

Every wait here is bounded (START_DEADLINE, STOP_DEADLINE, LOG_DEADLINE).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from tests.server import REQUEST_TIMEOUT, ROOT, ManagedProcess, free_port, stop_group

NGINX_CONF = ROOT / "deploy" / "nginx.conf"
START_DEADLINE = 10.0
STOP_DEADLINE = 10.0
LOG_DEADLINE = 5.0

_SERVER_LINE = re.compile(r"^(?P<indent>[ \t]*)server[ \t]+(?P<address>\S+)(?P<params>[^;]*);[ \t]*$")
_LISTEN_LINE = re.compile(r"^(?P<indent>[ \t]*)listen[ \t]+(?P<address>[^\s;]+)(?P<params>[^;]*);[ \t]*$")
_UPSTREAM_START = re.compile(r"^[ \t]*upstream[ \t]+api[ \t]*\{[ \t]*$")


def nginx_binary() -> str:
    """The nginx executable; skip (or fail under REQUIRE_SERVICES=1) when there is none."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None
    )
    if found:
        return found
    message = "nginx is missing: run .ci/system-packages (as root) to install it"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (REQUIRE_SERVICES=1)")
    pytest.skip(message)


def _user_directive() -> str | None:
    """`user` for a root master: the current user and group instead of nginx's `nobody`."""
    if os.geteuid() != 0:
        return None  # a non-root master cannot switch users; nginx would only warn
    return f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"


def render_config(upstreams: Sequence[str], listen: str, *, source: Path = NGINX_CONF) -> str:
    """deploy/nginx.conf for loopback: these upstream addresses, this listen address.

    Raises ValueError when the file no longer has the shape this relies on (exactly one
    `listen` line, at least one `server` line inside `upstream api { ... }`).
    """
    if not upstreams:
        raise ValueError("at least one upstream address is needed")
    out: list[str] = []
    in_upstream = False
    servers = listens = 0
    for line in Path(source).read_text().splitlines(keepends=True):
        if _UPSTREAM_START.match(line):
            in_upstream = True
        elif in_upstream and line.strip() == "}":
            in_upstream = False
        server = _SERVER_LINE.match(line) if in_upstream else None
        if server:
            servers += 1
            if servers == 1:  # all the new lines take the first line's place and parameters
                params = "".join(f" {word}" for word in server["params"].split() if word != "resolve")
                out.extend(f"{server['indent']}server {address}{params};\n" for address in upstreams)
            continue
        listening = _LISTEN_LINE.match(line)
        if listening:
            listens += 1
            out.append(f"{listening['indent']}listen {listen}{listening['params']};\n")
            continue
        out.append(line)
    if servers == 0 or listens != 1:
        raise ValueError(
            f"{source}: expected one `listen` line and `server` lines in `upstream api`"
            f" (found {listens} and {servers})"
        )
    user = _user_directive()
    return (user or "") + "".join(out)


def _command(binary: str, prefix: Path, *args: str) -> list[str]:
    # -e: the error log before the config is read (the config then says stderr too).
    return [binary, "-p", f"{prefix}/", "-e", "stderr", "-c", str(prefix / "nginx.conf"), *args]


def check_config(config: str, prefix: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on this config, written to prefix/nginx.conf; output combined."""
    binary = nginx_binary()
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(config)
    return subprocess.run(  # noqa: S603 - our own arguments
        _command(binary, prefix, "-t"),
        capture_output=True,
        text=True,
        timeout=STOP_DEADLINE,
        stdin=subprocess.DEVNULL,
        check=False,
    )


class NginxError(RuntimeError):
    """nginx did not come up (its error output is in the message)."""


class NginxServer(ManagedProcess):
    """nginx in front of `upstreams` ("host:port" each), on a free port of 127.0.0.1."""

    def __init__(
        self,
        upstreams: Sequence[str],
        prefix: Path,
        *,
        transform: Callable[[str], str] | None = None,
        source: Path = NGINX_CONF,
    ) -> None:
        self.upstreams = list(upstreams)
        self.prefix = prefix
        self.transform = transform
        self.source = source
        self.port = 0
        self.config = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.access_log_path = prefix / "access.log"  # nginx's stdout: access_log /dev/stdout
        self.error_log_path = prefix / "error.log"  # nginx's stderr: error_log stderr

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for this nginx (close it; a `with` block does)."""
        return httpx.Client(base_url=self.base_url, timeout=REQUEST_TIMEOUT, **kwargs)

    def error_output(self) -> str:
        return self.error_log_path.read_text(errors="replace") if self.error_log_path.exists() else ""

    def access_log(self) -> list[dict[str, Any]]:
        """Every access log entry so far (one JSON object a line)."""
        if not self.access_log_path.exists():
            return []
        lines = self.access_log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def logged(self, request_ids: Iterable[str], timeout: float = LOG_DEADLINE) -> dict[str, dict[str, Any]]:
        """The access log entries of these requests, by request id.

        nginx writes a request's line after the response has gone out, so a client can read the
        response first: this waits (at most `timeout`) until every id has its line.
        """
        wanted = set(request_ids)
        deadline = time.monotonic() + timeout
        while True:
            entries = {
                entry["request_id"]: entry for entry in self.access_log() if entry["request_id"] in wanted
            }
            if len(entries) == len(wanted) or time.monotonic() >= deadline:
                missing = wanted - set(entries)
                assert not missing, f"no access log line within {timeout:g}s for {sorted(missing)}"
                return entries
            time.sleep(0.02)

    def start(self, attempts: int = 3) -> NginxServer:
        binary = nginx_binary()
        self.prefix.mkdir(parents=True, exist_ok=True)
        for _ in range(attempts):
            self.port = free_port()
            self.config = render_config(self.upstreams, f"127.0.0.1:{self.port}", source=self.source)
            if self.transform:
                self.config = self.transform(self.config)
            (self.prefix / "nginx.conf").write_text(self.config)
            offset = self.error_log_path.stat().st_size if self.error_log_path.exists() else 0
            with self.access_log_path.open("ab") as out, self.error_log_path.open("ab") as err:
                self.process = subprocess.Popen(  # noqa: S603 - our own arguments
                    _command(binary, self.prefix, "-g", "daemon off;"),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,  # its own process group: stop() kills master and workers
                )
            if self._wait_until_up():
                return self
            errors = self.error_output()[offset:]
            self.stop()
            if "Address already in use" not in errors:
                raise NginxError(f"nginx did not start:\n{errors}")
        raise NginxError(f"nginx found no free port in {attempts} attempts:\n{self.error_output()}")

    def _wait_until_up(self) -> bool:
        """True once the port accepts connections; False when nginx exited (e.g. lost the port)."""
        assert self.process is not None
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise NginxError(f"nginx was not up within {START_DEADLINE:g}s:\n{self.error_output()}")

    def stop(self) -> int | None:
        """Fast shutdown (SIGTERM to the master), then SIGKILL to whatever is left of the group."""
        process, self.process = self.process, None
        return stop_group(process)


class DroppingUpstream:
    """A fake replica that dies mid-request: reads the request head, then closes, never answering."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (method, X-Request-ID) of every request read
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dropping-upstream", daemon=True)
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        host, port = self._listener.getsockname()
        return f"{host}:{port}"

    def requests(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.seen)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            with connection:
                connection.settimeout(2.0)
                head = b""
                try:
                    while b"\r\n\r\n" not in head and len(head) < 65536:
                        chunk = connection.recv(4096)
                        if not chunk:
                            break
                        head += chunk
                except OSError:
                    continue
                lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
                method = lines[0].split(" ", 1)[0]
                headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
                request_id = next(
                    (value.strip() for name, value in headers.items() if name.lower() == "x-request-id"), ""
                )
                with self._lock:
                    self.seen.append((method, request_id))
            # leaving the block closes the connection: no status line was ever sent

    def __enter__(self) -> DroppingUpstream:
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._thread.join(timeout=STOP_DEADLINE)
        self._listener.close()
