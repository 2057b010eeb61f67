"""gunicorn settings, all from the environment the app validates (README: Configuration)."""

import os
import shutil
import sys
import tempfile
import warnings

from api.config import ConfigError, load_settings, whole_number

_ROOT = os.path.dirname(os.path.abspath(__file__))


def _threads(raw: str) -> int:
    """GUNICORN_THREADS, native threads per worker for password hashing: 1..64, default 4; read by
    the app settings' own whole-number rule, and reported like them."""
    try:
        return whole_number(1, 64)(raw)
    except ValueError as error:
        raise ConfigError([f"GUNICORN_THREADS: {error} (got {raw!r})"]) from None


_problems: list[str] = []
try:
    _settings = load_settings(os.environ, os.path.join(_ROOT, "instance"))
except ConfigError as _error:
    _problems += _error.problems
try:
    # Under gevent not request threads (connections are greenlets): the native threads where
    # password hashing runs off the event loop, at most this many at once (post_worker_init).
    threads = _threads(os.environ.get("GUNICORN_THREADS") or "4")
except ConfigError as _error:
    _problems += _error.problems
if _problems:  # one clear line naming every bad variable, before anything starts
    sys.exit("configuration error: " + "; ".join(_problems))

wsgi_app = "wsgi:app"
bind = f"{_settings['HOST']}:{_settings['PORT']}"
# Without REDIS_URL, limits, caches and revocation live in one process: one worker.
workers = _settings["WEB_CONCURRENCY"]
# Slow clients (README, "Slow clients"): the gevent worker reads every connection in a greenlet
# of its own, so a client that trickles its headers or its body, or sends nothing, holds a
# socket and a few KiB, never a thread. gthread handed a connection to one of its few threads
# as soon as the first bytes came, and a few dozen slow clients starved everyone else.
#
# Except on SQLite with REDIS_URL. Under gevent a worker's requests share one thread and take
# turns only where they wait on the network; SQLite waits for its write lock inside C, without
# yielding. Ending a session writes Redis inside its write transaction (security/sessions.py),
# so a second write in the same worker would wait there for a lock whose holder can never run
# again: frozen until busy_timeout (30 s), then "database is locked" and a killed worker. Seen
# with a dozen concurrent logouts. PostgreSQL's waits yield (post_worker_init), and SQLite without
# Redis never waits on the network inside a transaction.
_on_sqlite = _settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
worker_class = "gthread" if _on_sqlite and _settings["REDIS_URL"] else "gevent"
# gevent warns in every worker that ssl was imported before it patched (gunicorn imports it in
# the master). Only modules that imported ssl's names directly keep the unpatched ones: it names
# redis.asyncio and PyJWT's JWKS client, neither used here; the app's one TLS client (httpx, to
# the Robot CPU upstream) makes its context after the patch, so it is cooperative.
warnings.filterwarnings("ignore", message="Monkey-patching ssl after ssl has already been imported")
# Connections one worker holds at once, slow ones included: gunicorn has no per-client limit
# and no deadline for a body, so this is what a slow-body client can use up; past it the worker
# stops accepting until one closes. Far above what the API serves at once (15 database
# connections per worker), and low enough that a worker's descriptors (a socket per
# connection, at worst one more per connection in the Redis pools, the database pool, logs)
# stay under the usual soft limit of 1,024.
worker_connections = 500
timeout = 30
graceful_timeout = 20
# Idle keep-alive, and also the gevent worker's deadline for a request's line and headers (it
# reads them under a timeout of this length): a header trickle is cut off after 5 s.
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


def post_worker_init(worker):  # noqa: ARG001 - gunicorn's hook signature
    """In each worker, once gevent has patched it and the app is loaded, before it serves.

    gevent patches a worker after the fork, but this file and on_starting load the app in the
    unpatched master first, so a module that chose something at import keeps that choice in the
    workers. The one that matters is psycopg: it picks its wait function (and the selector it
    connects with) at import, and the C one it picked in the master blocks the whole worker
    while a query waits on PostgreSQL (a row lock, a slow plan), every other connection with it.
    Imported again now, it sees the patched select module and picks one that yields to the other
    greenlets (psycopg >= 3.1.14).
    (redis-py's retry back-off keeps the unpatched time.sleep too, but with the app's settings
    its clients never reached it: refused, reset, timed-out and restarted Redis were tried.)

    Also sizes the pool of native threads where password hashing runs (GUNICORN_THREADS).
    """
    import importlib

    from gevent import get_hub, monkey

    if not monkey.is_module_patched("select"):  # gthread (SQLite with REDIS_URL, or -k on the command line)
        return
    get_hub().threadpool.maxsize = threads
    waiting = sys.modules.get("psycopg.waiting")
    if waiting is not None:
        importlib.reload(waiting)


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


def when_ready(server):
    """Once, in the master, when the sockets listen: say where the API, its reference and its
    spec answer. gunicorn logs at warning (the app writes its own access lines), so it would not
    say so itself, and a newcomer running `make run` would be left guessing the URL. The
    addresses are the bound sockets', so a `-b` on the command line or PORT=0 shows the real one."""
    for listener in server.LISTENERS:
        print(serving_line(str(listener)), file=sys.stderr, flush=True)  # noqa: T201


def serving_line(address: str) -> str:
    """The line for one listener: gunicorn writes TCP ones as http://HOST:PORT (IPv6 in
    brackets), a Unix socket as unix:PATH, which has no URL to click."""
    if not address.startswith(("http://", "https://")):
        paths = "API under /api/v1, reference /docs, spec /api/v1/openapi.json"
        return f"Resistance API serving on {address} ({paths})"
    return (
        f"Resistance API serving on {address}/api/v1 "
        f"(reference: {address}/docs, spec: {address}/api/v1/openapi.json)"
    )


METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _fresh_metrics_directory():
    """Prometheus multiprocess mode (docs/api.md, GET /metrics; api/metrics.py): every process
    writes its samples to files in one directory, and a scrape sums them, so /metrics counts the
    whole server.

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
