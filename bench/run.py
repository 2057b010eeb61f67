"""python -m bench.run: the API under gunicorn against a bare-Flask ceiling, then a scale run.

    python -m bench.run [--quick] [--database sqlite|postgresql|both] [--seconds N] [--rounds N]
                        [--warmup N] [--scale N] [--samples N] [--survivors N] [--out DIR]
                        [--skip-load]

1. Ceilings: bench/ceiling.py (one route, a small JSON object) served by gunicorn with the API's
   settings (bench/ceiling_gunicorn.py) in two worker models: the issue's reference, `sync` with
   --ceiling-workers processes (2), and the API's own shape (gevent, or gthread for SQLite with
   Redis: its workers and threads).
2. For each database: an empty database (PostgreSQL: the public schema of BENCH_DATABASE_URL,
   default database `walk`, dropped and made again; SQLite: a new file), seeded in-process
   (bench/seed.py), then the API under gunicorn -c gunicorn.conf.py with its own defaults
   (PostgreSQL with REDIS_URL set: the production shape, 2 workers; SQLite always runs the
   embedded default, without Redis: 1 worker with threads), driven by
   wrk at 32 connections: for every scenario a check request, a warm-up run, then --rounds runs
   of --seconds each; the median of the rounds is reported.
3. The scale run, on the same database and server: survivors bulk-inserted up to --scale, then
   single requests timed with httpx (--samples each): the reports cold (right after a write, so
   the version-keyed cache misses) and cached, the first and a deep list page — the deep one both
   as a direct jump (page=N) and as the client reaches it by following the rel="next" link of the
   page before (a keyset cursor) — and a location update. --skip-load runs only this part (no
   ceilings, no wrk).

Results go to --out (bench/results/, git-ignored) as <stamp>.json and <stamp>.md, and the
markdown table is printed. Everything is on loopback, every wait is bounded, and every process
started is stopped (its whole process group) on success, failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import load, seed
from bench.report import markdown
from tests.conftest import postgres_problem
from tests.server import GunicornServer, ServerError, hermetic_environ, log_problems, server_environ

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql+psycopg://127.0.0.1:5432/walk"
BENCH_REDIS_DB = 14  # the tests use 15 and a default REDIS_URL names 0
# The limiter runs its whole path on every request (a storage round trip) but never refuses; a
# sliding window counter costs the same whatever the limit, so a huge one measures a real one.
NO_LIMIT = "1000000/minute"
MOVERS = 32
REPORTERS = 32
LIST = "/api/v1/survivors?page=1&page_size=20"
# --quick checks that everything runs, fast (the test's mode): 8 connections keep the backlog
# each run leaves behind (logins: Argon2) short. Its numbers mean little.
QUICK = {
    "seconds": 1,
    "rounds": 1,
    "warmup": 1,
    "scale": 2000,
    "samples": 3,
    "survivors": 500,
    "connections": 8,
}
FULL = {
    "seconds": 10,
    "rounds": 3,
    "warmup": 3,
    "scale": 1_000_000,
    "samples": 20,
    "survivors": 10_000,
    "connections": load.CONNECTIONS,
}


def say(message: str) -> None:
    """Progress on stderr (stdout carries the results table)."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# Options


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny and fast: the test's mode (SQLite only)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), help="default: both")
    parser.add_argument("--seconds", type=int, help="length of each measured wrk run (10; quick 1)")
    parser.add_argument("--rounds", type=int, help="measured runs per scenario, median reported (3; quick 1)")
    parser.add_argument(
        "--warmup", type=int, help="seconds of unmeasured load before the rounds (3; quick 1)"
    )
    parser.add_argument(
        "--scale", type=int, help="survivors for the scale run, 0 to skip (1000000; quick 2000)"
    )
    parser.add_argument("--samples", type=int, help="timed requests per scale measure (20; quick 3)")
    parser.add_argument(
        "--survivors", type=int, help="survivors in the throughput dataset (10000; quick 500)"
    )
    parser.add_argument("--connections", type=int, help="wrk -c (32; quick 8)")
    parser.add_argument(
        "--ceiling-workers", type=int, default=2, help="sync workers of the reference ceiling"
    )
    parser.add_argument("--workers", type=int, help="the API's WEB_CONCURRENCY (default: the app's own)")
    parser.add_argument("--threads", type=int, help="the API's GUNICORN_THREADS (default: the app's own)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", ""),
        help=f"Redis for the API ($REDIS_URL; its database is replaced by {BENCH_REDIS_DB}); empty: none",
    )
    parser.add_argument(
        "--postgresql-url",
        default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG_URL,
        help="PostgreSQL to EMPTY and use ($BENCH_DATABASE_URL, default database walk; never test*)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results directory")
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch directory (server logs, SQLite)"
    )
    parser.add_argument(
        "--skip-load",
        action="store_true",
        help="only the scale run: no ceilings, no wrk scenarios (wrk is then not needed)",
    )
    options = parser.parse_args(argv)
    defaults = QUICK if options.quick else FULL
    for name, value in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, value)
    if options.database is None:
        options.database = "sqlite" if options.quick else "both"
    for name in ("seconds", "rounds", "warmup", "samples", "survivors", "connections", "ceiling_workers"):
        if getattr(options, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    options.survivors = max(options.survivors, 10)
    if options.connections < load.WRK_THREADS:
        parser.error(f"--connections must be at least {load.WRK_THREADS} (wrk -t{load.WRK_THREADS})")
    return options


def bench_redis_url(url: str) -> str:
    """REDIS_URL with its database number replaced by BENCH_REDIS_DB."""
    if not url:
        return ""
    base = url.split("?", 1)[0]
    scheme, rest = base.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{BENCH_REDIS_DB}"


def flush_redis(url: str) -> None:
    """Empty the benchmark's Redis database (and only it): no window, token or body left over."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# Measuring one scenario


@dataclass
class Scenario:
    """One kind of request, driven by wrk."""

    name: str
    title: str
    expect: int
    path: str
    headers: list[str] = field(default_factory=list)
    script: str | None = None
    script_args: Callable[[], list[str]] | None = None
    check: Callable[[httpx.Client], httpx.Response] | None = None
    # Called with each finished wrk run (warm-up included): the infection-report scenario moves
    # its pair offset past what the run may have used, and counts the rows it wrote.
    after_run: Callable[[load.WrkRun], None] | None = None
    notes: str = ""
    # A measured round lasts at least this long (seconds), whatever --seconds says: a round of
    # requests that each take a large part of a second (Argon2) must outlast several of them, or
    # on a busy machine it counts none.
    min_seconds: int = 1


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


def measure(server: GunicornServer, scenario: Scenario, options: argparse.Namespace) -> dict[str, Any]:
    """Check one request, warm up, then the measured rounds; the median round and the details."""
    assert server.process is not None
    master = server.process.pid
    if scenario.check is not None:
        with server.client() as client:
            response = scenario.check(client)
        if response.status_code != scenario.expect:
            raise RuntimeError(
                f"{scenario.name}: the check request answered {response.status_code}, "
                f"not {scenario.expect}: {response.text[:300]}"
            )
    server.mark()

    def run(seconds: int, settle: bool = True) -> load.WrkRun:
        if settle:  # the previous run's backlog is done before this one starts
            load.settle(master)
        with load.WorkerWatch(master).running() as watch:
            result = load.run_wrk(
                # A script builds each request's path itself: wrk only needs the server.
                server.base_url + ("/" if scenario.script else scenario.path),
                seconds,
                headers=scenario.headers,
                script=scenario.script,
                script_args=scenario.script_args() if scenario.script_args else (),
                connections=options.connections,
            )
        result.rss_peak_mb = round(watch.peak_mb, 1)
        result.worker_pids_seen = len(watch.pids)
        if scenario.after_run is not None:
            scenario.after_run(result)
        return result

    seconds = max(options.seconds, scenario.min_seconds)
    say(f"  {scenario.name}: warm-up {options.warmup}s, then {options.rounds} x {seconds}s")
    load.settle(master)
    background = load.machine_busy()
    if background > load.BUSY_WARNING:
        say(f"  WARNING: {background:.0%} of the CPU is busy with something else: these numbers are skewed")
    run(options.warmup, settle=False)  # settled just above
    rounds = [run(seconds) for _ in range(options.rounds)]
    problems = log_problems(server.output_since_mark())
    # "Worker RSS after the run": once the backlog wrk left behind is served (logins: seconds of
    # Argon2 at 64 MiB each), not while the last accepted requests still hold their memory.
    load.settle(master)
    requests = sum(r.requests for r in rounds)
    workers = len(load.worker_pids(master))
    # wrk counts responses outside 2xx/3xx: all of them are expected when the scenario is a 401.
    if scenario.expect < 400:
        unexpected = sum(r.non_2xx_3xx for r in rounds)
    else:
        unexpected = sum(r.requests - r.non_2xx_3xx for r in rounds)
    result = {
        "title": scenario.title,
        "path": scenario.path,
        "expect": scenario.expect,
        "requests_per_second": median([r.requests_per_second for r in rounds]),
        "spread": spread([r.requests_per_second for r in rounds]),
        "p50_ms": median([r.p50_ms for r in rounds]),
        "p99_ms": median([r.p99_ms for r in rounds]),
        "requests": requests,
        "unexpected_status": unexpected,
        "socket_errors": sum(r.socket_errors for r in rounds),
        "worker_recycles": sum(max(0, r.worker_pids_seen - workers) for r in rounds),
        "rss_peak_mb": max(r.rss_peak_mb for r in rounds),
        **load.workers_rss(master),
        "background_cpu": background,
        "log_problems": len(problems),
        "log_problem_sample": problems[:3],
        "rounds": [r.as_dict() for r in rounds],
        "notes": scenario.notes,
    }
    if any("first_reports" in r.extra for r in rounds):
        first_reports = sum(r.extra.get("first_reports", 0) for r in rounds)
        result["first_reports"] = first_reports
        result["first_report_share"] = round(first_reports / requests, 3) if requests else 0.0
    say(
        f"  {scenario.name}: {result['requests_per_second']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms, RSS max {result['rss_mb_max']} MiB"
        + (f", {unexpected} unexpected statuses" if unexpected else "")
        + (f", {len(problems)} log problems" if problems else "")
    )
    return result


# ---------------------------------------------------------------------------------------------
# Ceilings


@dataclass(frozen=True)
class Shape:
    """How gunicorn serves: worker model, processes, threads per process."""

    worker_class: str
    workers: int
    threads: int

    @property
    def label(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"{self.workers} {self.worker_class} worker{'s' if self.workers > 1 else ''}{threads}"


def served_with(database: str, redis_url: str) -> str:
    """The Redis a database's run uses: SQLite runs the embedded default (no Redis, one worker
    with threads), PostgreSQL the production shape (Redis when given, two workers)."""
    return redis_url if database == "postgresql" else ""


def api_shape(options: argparse.Namespace, redis_url: str, database: str) -> Shape:
    """The API's shape as gunicorn.conf.py will choose it (the app's defaults unless overridden):
    gevent, but gthread for SQLite with Redis (gunicorn.conf.py says why)."""
    workers = options.workers or (2 if redis_url else 1)
    worker_class = "gthread" if database == "sqlite" and redis_url else "gevent"
    return Shape(worker_class, workers, options.threads or 4)


def ceiling(shape: Shape, scratch: Path, options: argparse.Namespace, secret: str) -> dict[str, Any]:
    """Serve bench/ceiling.py in this shape and measure GET /ceiling."""
    environ = hermetic_environ(
        JWT_SECRET_KEY=secret,  # gunicorn.conf.py validates the API's settings: give it valid ones
        APP_ENV="development",
        DATABASE_URL="sqlite://",
        WEB_CONCURRENCY=str(shape.workers),
        GUNICORN_THREADS=str(shape.threads),
        BENCH_CEILING_WORKER_CLASS=shape.worker_class,
        BENCH_CEILING_THREADS=str(shape.threads),
    )
    say(f"ceiling: bare Flask on {shape.label}")
    log_path = scratch / f"ceiling-{shape.worker_class}-{shape.workers}-{shape.threads}.log"
    with GunicornServer(environ, log_path, config="bench/ceiling_gunicorn.py") as server:
        scenario = Scenario(
            name="ceiling",
            title="bare Flask: GET a small JSON object",
            expect=200,
            path="/ceiling",
            check=lambda client: client.get("/ceiling"),
        )
        result = measure(server, scenario, options)
    return {"shape": shape.label, **vars(shape), **result}


# ---------------------------------------------------------------------------------------------
# One database: seed, serve, drive, scale


def api_environ(db_url: str, redis_url: str, options: argparse.Namespace, secret: str) -> dict[str, str]:
    """The API server's environment: production settings, limits that never refuse."""
    environ = server_environ(
        db_url,
        JWT_SECRET_KEY=secret,
        APP_ENV="production",
        RATELIMIT_DEFAULT=NO_LIMIT,
        RATELIMIT_AUTH=NO_LIMIT,
        JWT_ACCESS_TTL="14400",  # a 1M-row scale run outlives the default 15 minutes
    )
    # The app's own defaults decide workers and threads (2 workers with Redis, 4 threads).
    environ.pop("WEB_CONCURRENCY", None)
    environ.pop("GUNICORN_THREADS", None)
    if options.workers:
        environ["WEB_CONCURRENCY"] = str(options.workers)
    if options.threads:
        environ["GUNICORN_THREADS"] = str(options.threads)
    if redis_url:
        environ["REDIS_URL"] = redis_url
    return environ


def tamper(token: str) -> str:
    """The token with one signature character changed: well-formed, wrongly signed."""
    head, payload, signature = token.split(".")
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    return ".".join([head, payload, signature[:middle] + swapped + signature[middle + 1 :]])


@dataclass
class Dataset:
    """What the scenarios need from the seeded database."""

    reader: seed.Member
    login: seed.Member
    movers: list[seed.Member]
    reporters: list[seed.Member]
    targets: list[str]
    files: dict[str, Path]
    survivors: int
    seed_seconds: float


def seed_dataset(app: Any, scratch: Path, options: argparse.Namespace) -> Dataset:
    started = time.monotonic()
    reader = seed.accounts(app, "bench-reader", 1, role="observer")[0]
    login = seed.accounts(app, "bench-login", 1)[0]
    movers = seed.accounts(app, "bench-mover", MOVERS)
    reporters = seed.accounts(app, "bench-reporter", REPORTERS)
    seed.link_profiles(app, movers + reporters)
    seed.bulk_survivors(app, options.survivors)
    targets = [str(survivor_id) for survivor_id in seed.unlinked_survivor_ids(app, options.survivors)]
    files = {
        "movers": scratch / "movers.tsv",
        "reporters": scratch / "reporters.txt",
        "targets": scratch / "targets.txt",
    }
    files["movers"].write_text("".join(f"{m.survivor_id}\t{m.token}\n" for m in movers))
    files["reporters"].write_text("".join(f"{r.token}\n" for r in reporters))
    files["targets"].write_text("".join(f"{t}\n" for t in targets))
    return Dataset(
        reader,
        login,
        movers,
        reporters,
        targets,
        files,
        seed.survivor_count(app),
        round(time.monotonic() - started, 2),
    )


def scenarios(app: Any, data: Dataset, options: argparse.Namespace, etag: str) -> list[Scenario]:
    """Reads first (their cached copies stay valid), then writes, then login."""
    bearer = f"Authorization: Bearer {data.reader.token}"
    reader = {"Authorization": f"Bearer {data.reader.token}"}
    mover = data.movers[0]
    reporter_offset = [0]  # the next unused pair number of the infection-report sequence
    pairs = len(data.targets) * len(data.reporters)

    def reporter_args() -> list[str]:
        files = data.files
        return [
            str(files["reporters"]),
            str(files["targets"]),
            str(reporter_offset[0]),
            str(load.WRK_THREADS),
        ]

    rows_before = [seed.infection_report_rows(app)]

    def count_reports(run: load.WrkRun) -> None:
        # Thread t used pair numbers offset + t + k*threads for k < its own request count, which
        # is at most the run's total: jumping threads x requests (+ in-flight slack) is safe.
        reporter_offset[0] += load.WRK_THREADS * (run.requests + options.connections)
        rows = seed.infection_report_rows(app)
        run.extra = {"first_reports": rows - rows_before[0]}
        rows_before[0] = rows
        if reporter_offset[0] > pairs:
            say(f"  infection_report: {reporter_offset[0]} pairs used of {pairs}: repeats from here on")

    def check_report(client: httpx.Client) -> httpx.Response:
        # The last pair of the sequence: the runs would only reach it after every other one.
        last = data.reporters[-1]
        return client.post(
            f"/api/v1/survivors/{data.targets[-1]}/infection-reports",
            headers={"Authorization": f"Bearer {last.token}"},
        )

    return [
        Scenario(
            "list",
            "GET /survivors, a page of 20, authenticated (cached body)",
            200,
            LIST,
            headers=[bearer],
            check=lambda c: c.get(LIST, headers=reader),
        ),
        Scenario(
            "list_304",
            "the same with a current If-None-Match",
            304,
            LIST,
            headers=[bearer, f"If-None-Match: {etag}"],
            check=lambda c: c.get(LIST, headers={**reader, "If-None-Match": etag}),
        ),
        Scenario(
            "invalid_token",
            "GET /survivors with a wrongly signed token",
            401,
            LIST,
            headers=[f"Authorization: Bearer {tamper(data.reader.token)}"],
            check=lambda c: c.get(LIST, headers={"Authorization": f"Bearer {tamper(data.reader.token)}"}),
        ),
        Scenario(
            "report_infection",
            "GET /reports/infection (cached body)",
            200,
            "/api/v1/reports/infection",
            headers=[bearer],
            check=lambda c: c.get("/api/v1/reports/infection", headers=reader),
        ),
        Scenario(
            "put_location",
            f"PUT /survivors/{{id}}/location as the owner, {MOVERS} survivors in turn",
            200,
            "/api/v1/survivors/{id}/location",
            script="put_location.lua",
            script_args=lambda: [str(data.files["movers"]), str(load.WRK_THREADS)],
            check=lambda c: c.put(
                f"/api/v1/survivors/{mover.survivor_id}/location",
                json={"latitude": 1.5, "longitude": 2.5},
                headers={"Authorization": f"Bearer {mover.token}"},
            ),
            notes="every request a real write: a row update and a data-version bump",
        ),
        Scenario(
            "infection_report",
            "POST /survivors/{id}/infection-reports, a new reporter/reported pair each time",
            201,
            "/api/v1/survivors/{id}/infection-reports",
            script="infection_reports.lua",
            script_args=reporter_args,
            check=check_report,
            after_run=count_reports,
            notes="measures the first-report path (201); first_report_share is rows written per request",
        ),
        Scenario(
            "login",
            "POST /auth/login, good credentials (Argon2id, production profile)",
            200,
            "/api/v1/auth/login",
            script="login.lua",
            script_args=lambda: [data.login.username, seed.PASSWORD],
            # The first login rehashes the seeding profile's hash to the production one.
            check=lambda c: c.post(
                "/api/v1/auth/login", json={"username": data.login.username, "password": seed.PASSWORD}
            ),
            min_seconds=3,
        ),
    ]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (with 20 samples, p99 is the slowest)."""
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(fraction * len(ordered)) - 1)], 3)


def get_ok(client: httpx.Client, url: str, headers: dict[str, str]) -> httpx.Response:
    """A GET that must answer 200."""
    response = client.get(url, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"scale: GET {url} answered {response.status_code}: {response.text[:300]}")
    return response


def next_link(response: httpx.Response) -> str:
    """The path and query of a list response's rel="next" link (it carries the keyset cursor)."""
    next_url = response.links.get("next", {}).get("url")
    if not next_url or "after=" not in next_url:
        raise RuntimeError(
            f"scale: no next link with a cursor on {response.url}: {response.headers.get('Link')}"
        )
    parts = httpx.URL(next_url)
    return f"{parts.path}?{parts.query.decode()}"


def scale_run(server: GunicornServer, app: Any, data: Dataset, options: argparse.Namespace) -> dict[str, Any]:
    """Bulk-insert up to --scale survivors, then time single requests (cold and cached)."""
    have = seed.survivor_count(app)
    say(f"scale: inserting {max(0, options.scale - have)} survivors (have {have})")
    started = time.monotonic()
    seed.bulk_survivors(app, options.scale - have)
    seed_seconds = round(time.monotonic() - started, 2)
    total = seed.survivor_count(app)
    assert server.process is not None
    load.settle(server.process.pid)  # the login scenario's backlog, if any, is done first
    say(f"scale: {total} survivors, seeded in {seed_seconds} s; timing {options.samples} samples each")
    reader = {"Authorization": f"Bearer {data.reader.token}"}
    mover = data.movers[1]
    move_headers = {"Authorization": f"Bearer {mover.token}"}
    deep = seed.deep_page(total)
    step = [0]

    def timed(client: httpx.Client, method: str, url: str, expect: int, **kwargs: Any) -> float:
        started = time.perf_counter()
        response = client.request(method, url, **kwargs)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != expect:
            raise RuntimeError(
                f"scale: {method} {url} answered {response.status_code}: {response.text[:300]}"
            )
        return elapsed

    def move(client: httpx.Client) -> float:
        step[0] += 1
        body = {"latitude": (step[0] % 170) - 85.0, "longitude": (step[0] % 350) - 175.0}
        url = f"/api/v1/survivors/{mover.survivor_id}/location"
        return timed(client, "PUT", url, 200, json=body, headers=move_headers)

    def stats(values: list[float]) -> dict[str, Any]:
        return {"p50_ms": percentile(values, 0.5), "p99_ms": percentile(values, 0.99), "samples": len(values)}

    measures: dict[str, Any] = {}
    with httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(120.0, connect=5.0)) as client:
        gets = {
            "report_infection": "/api/v1/reports/infection",
            "report_resources": "/api/v1/reports/resources",
            "list_first_page": "/api/v1/survivors?page=1&page_size=20",
            "list_deep_page": f"/api/v1/survivors?page={deep}&page_size=20",
            # The same page as a client walking the list reaches it: the previous page's next link.
            "list_deep_page_cursor": next_link(
                get_ok(client, f"/api/v1/survivors?page={max(deep - 1, 1)}&page_size=20", reader)
            ),
        }
        for name, url in gets.items():
            cold = []
            for _ in range(options.samples):
                move(client)  # a write: the next read misses the version-keyed cache
                cold.append(timed(client, "GET", url, 200, headers=reader))
            cached = [timed(client, "GET", url, 200, headers=reader) for _ in range(options.samples)]
            measures[name] = {"path": url, "cold": stats(cold), "cached": stats(cached)}
            say(
                f"  {name}: cold p50 {measures[name]['cold']['p50_ms']:.1f} ms, "
                f"cached p50 {measures[name]['cached']['p50_ms']:.1f} ms"
            )
        updates = [move(client) for _ in range(options.samples)]
        measures["location_update"] = {"path": "/api/v1/survivors/{id}/location", "write": stats(updates)}
        say(f"  location_update: p50 {measures['location_update']['write']['p50_ms']:.1f} ms")
    return {
        "survivors": total,
        "seed_seconds": seed_seconds,
        "deep_page": deep,
        "deep_page_cursor": gets["list_deep_page_cursor"],
        "measures": measures,
    }


def run_database(
    kind: str, db_url: str, redis_url: str, scratch: Path, options: argparse.Namespace, secret: str
) -> dict[str, Any]:
    """Seed one database, serve the API on it, run every scenario and the scale run."""
    say(f"{kind}: emptying and seeding the database")
    seed.reset_database(db_url)
    if redis_url:
        flush_redis(redis_url)
    environ = api_environ(db_url, redis_url, options, secret)
    app = seed.seeding_app(environ)
    try:
        data = seed_dataset(app, scratch, options)
        say(f"{kind}: {data.survivors} survivors seeded in {data.seed_seconds} s; starting the API")
        shape = api_shape(options, redis_url, kind)
        with GunicornServer(environ, scratch / f"api-{kind}.log") as server:
            assert server.process is not None
            with server.client() as client:
                response = client.get(LIST, headers={"Authorization": f"Bearer {data.reader.token}"})
                response.raise_for_status()
                etag = response.headers["ETag"]
            results = {}
            if not options.skip_load:
                for scenario in scenarios(app, data, options, etag):
                    results[scenario.name] = measure(server, scenario, options)
            rss_after = load.workers_rss(server.process.pid)
            scale = scale_run(server, app, data, options) if options.scale > 0 else None
    finally:
        seed.dispose(app)
    return {
        "database": kind,
        "redis": bool(redis_url),
        "shape": shape.label,
        **vars(shape),
        "dataset": {"survivors": data.survivors, "seed_seconds": data.seed_seconds},
        "scenarios": results,
        "rss_after_run": rss_after,
        "scale": scale,
    }


# ---------------------------------------------------------------------------------------------
# The whole run


def spread(rates: list[float]) -> float:
    """How far the rounds of one scenario are apart: (fastest - slowest) / median, 0 for one."""
    middle = median(rates)
    return round((max(rates) - min(rates)) / middle, 3) if middle else 0.0


def add_ratios(runs: list[dict[str, Any]], ceilings: dict[str, dict[str, Any]], reference: str) -> None:
    """Each scenario's req/s over the reference ceiling's, and over the same-shape ceiling's."""
    for run in runs:
        same = ceilings.get(run["shape"])
        for result in run["scenarios"].values():
            rate = result["requests_per_second"]
            result["ratio"] = round(rate / ceilings[reference]["requests_per_second"], 3)
            if same is not None:
                result["ratio_same_shape"] = round(rate / same["requests_per_second"], 3)


@contextlib.contextmanager
def terminated_cleanly() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every `with` stops its server."""

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def databases(options: argparse.Namespace, scratch: Path) -> list[tuple[str, str]]:
    """(kind, url) of each database to run on; PostgreSQL unreachable is a skip only under 'both'."""
    chosen = []
    if options.database in ("sqlite", "both"):
        chosen.append(("sqlite", seed.sqlite_url(scratch)))
    if options.database in ("postgresql", "both"):
        seed.refuse_test_database(options.postgresql_url)
        problem = postgres_problem(options.postgresql_url)
        if problem is None:
            chosen.append(("postgresql", options.postgresql_url))
        elif options.database == "postgresql" or os.environ.get("REQUIRE_SERVICES") == "1":
            raise SystemExit(f"bench: PostgreSQL at {options.postgresql_url} is not reachable ({problem})")
        else:
            say(f"PostgreSQL at {options.postgresql_url} is not reachable ({problem}): skipping it")
    return chosen


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    if options.skip_load and options.scale <= 0:
        sys.stderr.write("bench: --skip-load runs only the scale run: give --scale a positive size\n")
        return 2
    if not options.skip_load and load.wrk_binary() is None:
        sys.stderr.write("bench: wrk is not installed; install it once with `sudo .ci/system-packages`\n")
        return 2
    redis_url = bench_redis_url(options.redis_url)
    if redis_url:
        try:
            flush_redis(redis_url)
        except Exception as error:  # unreachable Redis: say so in one line
            sys.stderr.write(f"bench: Redis at {redis_url} is not usable ({type(error).__name__})\n")
            return 2
    secret = secrets.token_urlsafe(48)
    started = time.monotonic()
    load_average = [round(n, 2) for n in os.getloadavg()]
    scratch = Path(tempfile.mkdtemp(prefix="resistance-bench-"))
    ok = False
    try:
        with terminated_cleanly():
            chosen = databases(options, scratch)
            reference = Shape("sync", options.ceiling_workers, 1)
            served = [(kind, url, served_with(kind, redis_url)) for kind, url in chosen]
            shapes = [reference, *(api_shape(options, redis, kind) for kind, _url, redis in served)]
            ceilings: dict[str, dict[str, Any]] = {}
            for shape in [] if options.skip_load else shapes:
                if shape.label not in ceilings:
                    ceilings[shape.label] = ceiling(shape, scratch, options, secret)
            runs = [run_database(kind, url, redis, scratch, options, secret) for kind, url, redis in served]
        add_ratios(runs, ceilings, reference.label)
        results = {
            "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_s": round(time.monotonic() - started, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                # Anything else busy on the machine skews every number: this shows it.
                "load_average_at_start": load_average,
                "load_average_at_end": [round(n, 2) for n in os.getloadavg()],
            },
            "settings": {
                "quick": options.quick,
                "skip_load": options.skip_load,
                "seconds": options.seconds,
                "rounds": options.rounds,
                "warmup": options.warmup,
                "connections": options.connections,
                "wrk_threads": load.WRK_THREADS,
                "scale": options.scale,
                "samples": options.samples,
                "survivors": options.survivors,
                "redis_db": BENCH_REDIS_DB if redis_url else None,
                "rate_limits": NO_LIMIT,
            },
            "reference_ceiling": reference.label,
            "ceilings": ceilings,
            "runs": runs,
        }
        table = markdown(results)
        options.out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        json_path, md_path = options.out / f"bench-{stamp}.json", options.out / f"bench-{stamp}.md"
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        md_path.write_text(table)
        sys.stdout.write(table)
        sys.stdout.flush()
        say(f"results: {json_path} and {md_path}")
        ok = True
        return 0
    except (ServerError, load.WrkError, RuntimeError) as error:
        sys.stderr.write(f"bench: {error}\n")
        return 1
    finally:
        if ok and not options.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            say(f"scratch directory kept: {scratch}")


if __name__ == "__main__":
    sys.exit(main())
