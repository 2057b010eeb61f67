"""gunicorn settings for the bare-Flask ceiling: the API's own, read from gunicorn.conf.py.

Everything that shapes how requests are served (bind, workers, worker class, threads,
keep-alive, timeouts, max_requests and its jitter, request limits, logging) is copied from the
API's configuration under the same environment, so the two differ only in the app. None of the
API's hooks is copied: they migrate the database and load the API's packages.

Two environment variables change the worker model, the one documented parameter of the ceiling:

- `BENCH_CEILING_WORKER_CLASS`: `sync` (one request at a time per worker process, no keep-alive:
  the issue's reference, "bare Flask on 2 sync workers"), `gevent` or `gthread` (the API's own
  models). Unset: the API's worker class.
- `BENCH_CEILING_THREADS`: threads per worker for `gthread`; unset: the API's (GUNICORN_THREADS).

The number of workers is WEB_CONCURRENCY for both, as for the API.
"""

import os
import runpy

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_api = runpy.run_path(os.path.join(_ROOT, "gunicorn.conf.py"))

_SHAPE = (
    "bind",
    "workers",
    "worker_class",
    "threads",
    "worker_connections",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "max_requests",
    "max_requests_jitter",
    "accesslog",
    "errorlog",
    "loglevel",
    "limit_request_line",
    "limit_request_fields",
)
globals().update({name: _api[name] for name in _SHAPE})

wsgi_app = "bench.ceiling:app"
worker_class = os.environ.get("BENCH_CEILING_WORKER_CLASS") or _api["worker_class"]
if worker_class not in ("sync", "gevent", "gthread"):
    raise SystemExit(
        f"configuration error: BENCH_CEILING_WORKER_CLASS: sync, gevent or gthread ({worker_class!r})"
    )
threads = int(os.environ.get("BENCH_CEILING_THREADS") or _api["threads"])
if worker_class == "sync":
    threads = 1
