"""Driving a server with wrk and watching its workers: throughput, latency, memory.

wrk (Debian's package: `.ci/system-packages` installs it) opens CONNECTIONS keep-alive
connections from WRK_THREADS threads and sends requests as fast as the server answers them for a
fixed time; its `--latency` report gives the request rate and the latency percentiles that are
parsed here. A sync gunicorn worker closes the connection after each response, so against it
wrk reconnects for every request: that cost is part of that worker model.

Memory is read from /proc: VmRSS of each worker process (the gunicorn master's children), in MiB,
reported as the largest worker (the issue's "worker RSS" target is per worker) and as the sum
over workers (what the server costs the machine, without the idle master).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.server import ROOT, kill_group

LUA = Path(__file__).resolve().parent / "lua"
WRK_THREADS = 2
CONNECTIONS = 32
# Share of the CPU busy while our server idles before a scenario: above this, someone else is
# using the machine, and the progress lines and the report say so.
BUSY_WARNING = 0.1
WRK_TIMEOUT = "10s"  # a request unanswered this long counts as a socket timeout error
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


class WrkError(RuntimeError):
    """wrk failed or printed something this parser does not understand (its output is in the message)."""


@dataclass
class WrkRun:
    """One wrk run as its --latency report gives it."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    duration_s: float
    non_2xx_3xx: int
    socket_errors: int
    # Filled in by the caller from its worker watch.
    rss_peak_mb: float = 0.0
    worker_pids_seen: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wrk_binary() -> str | None:
    """The wrk on PATH, or None."""
    return shutil.which("wrk")


def _milliseconds(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value.strip())
    if not match:
        raise WrkError(f"unreadable duration {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkRun:
    """Requests/sec, the 50% and 99% latencies and the error counts from wrk's --latency report."""
    try:
        rate = float(re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M).group(1))  # type: ignore[union-attr]
        p50 = _milliseconds(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
        p99 = _milliseconds(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
        total = re.search(r"^\s+(\d+) requests in ([\d.]+\w+),", output, re.M)
        requests, duration = int(total.group(1)), _milliseconds(total.group(2)) / 1000  # type: ignore[union-attr]
    except (AttributeError, ValueError) as error:
        raise WrkError(f"cannot read wrk's report ({error}):\n{output}") from None
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkRun(
        requests_per_second=rate,
        p50_ms=p50,
        p99_ms=p99,
        requests=requests,
        duration_s=duration,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
    )


def run_wrk(
    url: str,
    seconds: int,
    *,
    headers: Sequence[str] = (),
    script: str | None = None,
    script_args: Sequence[str] = (),
    connections: int = CONNECTIONS,
    threads: int = WRK_THREADS,
) -> WrkRun:
    """One bounded wrk run against `url`; killed with its process group if it overstays."""
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", WRK_TIMEOUT]
    for header in headers:
        args += ["-H", header]
    if script:
        args += ["-s", str(LUA / script)]
    args.append(url)
    if script_args:
        args += ["--", *script_args]
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # Ctrl-C reaches us, not wrk: we stop it ourselves, below
    )
    try:
        output, _ = process.communicate(timeout=seconds + 30)
    except BaseException:  # a timeout, Ctrl-C, SIGTERM: wrk goes too
        kill_group(process.pid)
        process.communicate()
        raise
    if process.returncode != 0:
        raise WrkError(f"wrk exited with {process.returncode}:\n{output}")
    return parse_wrk(output)


def _ppid(pid: str) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's children: its workers."""
    return sorted(
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _ppid(entry.name) == master
    )


def rss_mb(pid: int) -> float | None:
    """A process's resident set size in MiB (VmRSS), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def workers_rss(master: int) -> dict[str, float]:
    """RSS of the workers now: the largest one and the sum, in MiB."""
    sizes = [size for pid in worker_pids(master) if (size := rss_mb(pid)) is not None]
    return {"rss_mb_max": round(max(sizes, default=0.0), 1), "rss_mb_sum": round(sum(sizes), 1)}


def _cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def settle(master: int, window: float = 0.2, timeout: float = 60.0) -> float:
    """Wait until the workers are idle (at most one clock tick of CPU in a `window`); the seconds waited.

    When wrk stops, the server still works through the requests it had accepted: a login
    backlog at 32 connections is seconds of Argon2. Waiting here keeps one run from paying for
    the one before it. Bounded by `timeout`: a server that never goes quiet is measured anyway.
    """
    started = time.monotonic()
    before = _workers_ticks(master)
    while time.monotonic() - started < timeout:
        time.sleep(window)
        now = _workers_ticks(master)
        # Both readings complete, the same workers (none recycled meanwhile), at most one tick busy.
        if now is not None and before is not None and now.keys() == before.keys():
            if sum(now.values()) - sum(before.values()) <= 1:
                break
        before = now
    return time.monotonic() - started


def _workers_ticks(master: int) -> dict[int, int] | None:
    """CPU ticks of each worker; None when a worker went away while being read."""
    ticks = {}
    for pid in worker_pids(master):
        value = _cpu_ticks(pid)
        if value is None:
            return None
        ticks[pid] = value
    return ticks


def _cpu_times() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    fields = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def machine_busy(seconds: float = 0.3) -> float:
    """The share of the machine's CPU in use over `seconds` (0..1).

    Taken while the server is idle and wrk is not running, anything above noise is someone
    else: another test run on the same machine skews every number, and this makes it visible.
    """
    busy_before, total_before = _cpu_times()
    time.sleep(seconds)
    busy_after, total_after = _cpu_times()
    return round((busy_after - busy_before) / max(1, total_after - total_before), 3)


class WorkerWatch:
    """Samples the workers while a run goes on: the peak RSS of any worker, and every worker pid
    seen (more than `workers` pids means gunicorn recycled workers during the run: max_requests)."""

    def __init__(self, master: int, interval: float = 0.5) -> None:
        self.master = master
        self.interval = interval
        self.peak_mb = 0.0
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-watch", daemon=True)

    def _sample(self) -> None:
        for pid in worker_pids(self.master):
            self.pids.add(pid)
            size = rss_mb(pid)
            if size is not None:
                self.peak_mb = max(self.peak_mb, size)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    @contextlib.contextmanager
    def running(self) -> Iterator[WorkerWatch]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self._sample()
