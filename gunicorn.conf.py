"""gunicorn settings, all from the environment the app validates (contract §8)."""

import os
import shutil
import sys
import tempfile

from api.config import ConfigError, load_settings

_ROOT = os.path.dirname(os.path.abspath(__file__))


def _threads(raw: str) -> int:
    """GUNICORN_THREADS, threads per worker: 1..64, default 4."""
    value = int(raw.strip()) if raw.strip().isdigit() else 0
    if not 1 <= value <= 64:
        raise ConfigError([f"GUNICORN_THREADS: must be a whole number 1..64 (got {raw!r})"])
    return value


_problems: list[str] = []
try:
    _settings = load_settings(os.environ, os.path.join(_ROOT, "instance"))
except ConfigError as _error:
    _problems += _error.problems
try:
    threads = _threads(os.environ.get("GUNICORN_THREADS") or "4")
except ConfigError as _error:
    _problems += _error.problems
if _problems:  # one clear line naming every bad variable, before anything starts
    sys.exit("configuration error: " + "; ".join(_problems))

wsgi_app = "wsgi:app"
bind = f"{_settings['HOST']}:{_settings['PORT']}"
# Without REDIS_URL, limits, caches and revocation live in one process: one worker, threads.
workers = _settings["WEB_CONCURRENCY"]
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
keepalive = 5
# Recycle a worker now and then (a slow leak cannot grow for ever), but not so often that a busy
# server spends its time re-importing the app: at ~1,000 requests/s a worker lives ~50 s or more.
max_requests = 50_000
max_requests_jitter = 5_000
accesslog = None  # the app writes one JSON line per request itself
errorlog = "-"
loglevel = "warning"
limit_request_line = 4094
limit_request_fields = 100
if _settings["TRUSTED_PROXIES"]:
    forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
else:
    forwarded_allow_ips = ""


def _write_problem(sock, status_int, reason, mesg):  # noqa: ARG001 - gunicorn.util.write_error's signature
    """Requests gunicorn refuses before the app sees them still get problem+json and our headers."""
    from gunicorn import util

    from security.headers import raw_problem

    util.write_nonblock(sock, raw_problem(status_int, reason))


def post_fork(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """In each worker: answer malformed/oversized requests (400/414/431) as problem+json."""
    from gunicorn import util

    util.write_error = _write_problem


def on_starting(server):  # noqa: ARG001 - gunicorn's hook signature
    """Once, in the master: a fresh metrics directory, migrations and the first admin, before workers fork."""
    _fresh_metrics_directory()
    from api import create_app
    from api.bootstrap import prepare

    try:
        prepare(create_app())
    except BaseException:  # the master will not run: nothing calls on_exit to clean up
        on_exit(server)
        raise


METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _fresh_metrics_directory():
    """Prometheus multiprocess mode (API.md §7, api/metrics.py): every process writes its samples
    to files in one directory, and a scrape sums them, so /metrics counts the whole server.

    The directory is new and empty for each master (mkdtemp under TMPDIR, mode 0700): no stale
    file of an earlier run, or of another server on this machine, can leak in, and a binary
    upgrade (USR2) gets its own. It must be set before prometheus_client is imported anywhere
    (it chooses its storage at import): nothing does before this hook, and the workers, forked
    later, inherit it. A PROMETHEUS_MULTIPROC_DIR from the environment is replaced, not reused.
    """
    os.environ[METRICS_DIR_ENV] = tempfile.mkdtemp(prefix="resistance-metrics-")


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """In the master, when a worker exits (max_requests, crash, stop): its live gauges go, its
    counters and histograms stay (they only ever grow across the server's life)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # noqa: ARG001 - gunicorn's hook signature
    """The metrics directory goes with the master that made it."""
    shutil.rmtree(os.environ[METRICS_DIR_ENV], ignore_errors=True)
