"""GET /metrics (docs/api.md, GET /metrics): guarded by METRICS_TOKEN, bounded labels, business counters, and
numbers that are the whole server's across gunicorn worker processes.

In-process, every app of the test run shares prometheus_client's default registry (the metric
objects exist once per process), so the tests compare counts before and after what they do.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, request
from prometheus_client import REGISTRY
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from api import metrics
from api.robots.client import fetch
from security.permissions import public
from tests.conftest import PASSWORD, SECRET, assert_problem
from tests.contract import spec
from tests.robot_stub import RobotStub
from tests.server import ADMIN_PASSWORD, GunicornServer, at_once, log_problems, server_environ, statuses
from tests.test_robots_client import unused_url

TOKEN = "metrics-token-" + "Zr7Kq2Vw9Xm4" * 3
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SURVIVOR_ROUTE = "/api/v1/survivors/<uuid:survivor_id>"
SURVIVORS = "/api/v1/survivors"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a text exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_total(samples: Samples, method: str, route: str, status: int) -> float:
    return value(samples, "http_requests_total", method=method, route=route, status=str(status))


def counted(before: Samples, after: Samples, method: str, route: str, status: int) -> float:
    """How many requests were counted between two scrapes for these labels."""
    return requests_total(after, method, route, status) - requests_total(before, method, route, status)


@pytest.fixture
def metrics_app(make_app: Callable[..., Flask]) -> Flask:
    """An app with METRICS_TOKEN set, on the suite's database."""
    return make_app(METRICS_TOKEN=TOKEN)


@pytest.fixture
def scrape(metrics_app: Flask) -> Callable[[], Samples]:
    """Scrape /metrics with the right token; the parsed samples."""
    client = metrics_app.test_client()

    def run() -> Samples:
        response = client.get("/metrics", headers=AUTH)
        assert response.status_code == 200, response.get_data(as_text=True)
        return parse(response.get_data(as_text=True))

    return run


# --- access ------------------------------------------------------------------------------------


def test_metrics_when_token_unset_is_404_like_an_unknown_path(client):
    assert client.application.config["METRICS_TOKEN"] is None
    response = client.get("/metrics", headers=AUTH)
    body = assert_problem(response, 404, instance="/metrics")
    unknown = assert_problem(client.get("/no-such-path"), 404)
    hidden = {"instance", "request_id"}
    assert {k: v for k, v in body.items() if k not in hidden} == {
        k: v for k, v in unknown.items() if k not in hidden
    }
    assert "WWW-Authenticate" not in response.headers
    assert b"http_requests_total" not in response.data


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer ",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        TOKEN,
        "Bearer wrong-token-ünïcode",
    ],
    ids=[
        "missing",
        "empty",
        "empty-bearer",
        "basic",
        "prefix",
        "longer",
        "no-scheme",
        "unicode",
    ],
)
def test_metrics_without_the_right_token_is_401_problem(metrics_app, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = metrics_app.test_client().get("/metrics", headers=headers)
    assert_problem(response, 401, instance="/metrics")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.headers["Cache-Control"] == "no-store"
    assert b"http_requests_total" not in response.data
    assert TOKEN.encode() not in response.data


def test_metrics_with_a_valid_jwt_is_401(metrics_app, admin):
    response = metrics_app.test_client().get("/metrics", headers=admin["headers"])
    assert_problem(response, 401)
    assert b"http_requests_total" not in response.data


def test_metrics_with_the_token_is_prometheus_text_never_stored(metrics_app):
    response = metrics_app.test_client().get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "RateLimit-Limit" not in response.headers  # never rate limited: a scrape is never refused
    families = {family.name: family.type for family in text_string_to_metric_families(response.text)}
    expected = {
        "http_requests": "counter",
        "http_request_duration_seconds": "histogram",
        "http_requests_in_flight": "gauge",
        "infections": "counter",
        "trades": "counter",
        "robot_cpu_calls": "counter",
    }
    assert expected.items() <= families.items()
    assert "_created" not in response.text  # same shape as the multiprocess output
    # The body the document promises: printable ASCII lines (a HELP text once held "§").
    declared = spec()["paths"]["/metrics"]["get"]["responses"]["200"]["content"][CONTENT_TYPE]["schema"]
    assert re.fullmatch(declared["pattern"], response.text), "a byte outside the declared pattern"


def test_metrics_scheme_is_case_insensitive_and_head_has_no_body(metrics_app):
    client = metrics_app.test_client()
    assert client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    head = client.head("/metrics", headers=AUTH)
    assert head.status_code == 200 and head.data == b""


# --- what is counted, and how it is labelled ----------------------------------------------------


def test_requests_are_counted_by_method_url_rule_and_status(client, make, scrape):
    survivor = make.survivor()
    before = scrape()
    url = f"{SURVIVORS}/{survivor['id']}"
    for _ in range(3):
        assert client.get(url, headers=survivor["owner"]["headers"]).status_code == 200
    assert client.get(url).status_code == 401
    after = scrape()
    assert counted(before, after, "GET", SURVIVOR_ROUTE, 200) == 3
    assert counted(before, after, "GET", SURVIVOR_ROUTE, 401) == 1
    count = "http_request_duration_seconds_count"
    durations = value(after, count, method="GET", route=SURVIVOR_ROUTE)
    assert durations - value(before, count, method="GET", route=SURVIVOR_ROUTE) == 4
    buckets = {
        float(dict(labels)["le"]): sample
        for (name, labels), sample in after.items()
        if name == "http_request_duration_seconds_bucket"
        and dict(labels)["route"] == SURVIVOR_ROUTE
        and dict(labels)["method"] == "GET"  # other tests send HEAD to the same rule
    }
    assert buckets[float("inf")] == durations
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    text = "\n".join(str(key) for key in after)
    assert survivor["id"] not in text  # the rule, never the path


def test_unmatched_paths_and_unknown_methods_share_bounded_labels(client, scrape):
    before = scrape()
    paths = [f"/no/such/{uuid.uuid4()}" for _ in range(5)]
    for path in paths:
        assert client.get(path).status_code == 404
    assert client.post("/healthz").status_code == 405
    assert client.open(f"/{uuid.uuid4()}", method="BREW").status_code in (404, 405)
    after = scrape()
    unmatched = metrics.UNMATCHED
    assert counted(before, after, "GET", unmatched, 404) == 5
    assert counted(before, after, "POST", unmatched, 405) == 1
    assert _other_methods(after) - _other_methods(before) == 1
    text = "\n".join(str(key) for key in after)
    assert not any(path in text for path in paths) and "BREW" not in text
    methods = {dict(labels).get("method") for (name, labels) in after if name == "http_requests_total"}
    assert methods <= metrics.METHODS | {metrics.OTHER_METHOD}


def _other_methods(samples: Samples) -> float:
    """Requests counted under the one label every non-standard method shares."""
    return sum(
        count
        for (name, labels), count in samples.items()
        if name == "http_requests_total" and ("method", metrics.OTHER_METHOD) in labels
    )


def test_in_flight_counts_the_scrape_itself(scrape):
    assert value(scrape(), "http_requests_in_flight") == 1.0
    assert value(scrape(), "http_requests_in_flight") == 1.0  # every earlier request left


def test_a_failing_after_request_hook_is_counted_as_the_500_the_client_got(metrics_app, scrape):
    """Flask answers 500 when an after_request hook fails: that status is counted, once, either way
    round (the failing hook running before or after the one that notes the status)."""

    def fail(response: Any) -> Any:
        raise RuntimeError("hook failed")

    @public
    def ok() -> dict[str, str]:
        return {"status": "ok"}

    metrics_app.add_url_rule("/late-failure", "late_failure", ok)
    metrics_app.add_url_rule("/early-failure", "early_failure", ok)
    # after_request hooks run last-registered first: index 0 runs after the metrics hook.
    metrics_app.after_request_funcs[None].insert(
        0,
        lambda response: (
            fail(response) if response.status_code == 200 and request.path == "/late-failure" else response
        ),
    )
    metrics_app.after_request(
        lambda response: fail(response) if request.path == "/early-failure" else response
    )
    client = metrics_app.test_client()
    before = scrape()
    for route in ("/late-failure", "/early-failure"):
        assert client.get(route).status_code == 500
    after = scrape()
    for route in ("/late-failure", "/early-failure"):
        assert counted(before, after, "GET", route, 500) == 1, route
        assert counted(before, after, "GET", route, 200) == 0, route
    assert value(after, "http_requests_in_flight") == 1.0


def test_a_request_context_without_a_request_is_not_counted(metrics_app, scrape):
    before = scrape()
    with metrics_app.test_request_context("/healthz"):
        pass
    after = scrape()
    assert counted(before, after, "GET", "/healthz", 200) == 0
    assert value(after, "http_requests_in_flight") == 1.0


def test_another_app_in_the_same_process_registers_nothing_new(make_app, scrape):
    collectors = set(REGISTRY._collector_to_names)
    other = make_app(METRICS_TOKEN="another-" + TOKEN)
    assert set(REGISTRY._collector_to_names) == collectors
    before = scrape()
    assert other.test_client().get("/healthz").status_code == 200
    assert counted(before, scrape(), "GET", "/healthz", 200) == 1  # both apps feed the same counters


# --- business events ---------------------------------------------------------------------------


def test_an_infection_is_counted_once(make, scrape):
    target = make.survivor()
    before = value(scrape(), "infections_total")
    make.infect(target, reporters=2)
    assert value(scrape(), "infections_total") == before  # below the threshold
    make.infect(target, reporters=1)
    assert value(scrape(), "infections_total") == before + 1
    make.infect(target, reporters=1)  # a report on an already infected survivor
    assert value(scrape(), "infections_total") == before + 1


def test_trades_are_counted_by_outcome(client, make, scrape):
    proposer, partner = make.survivor(), make.survivor()
    before = scrape()
    accepted = make.trade(proposer, partner)
    response = client.post(f"/api/v1/trades/{accepted['id']}/accept", headers=partner["owner"]["headers"])
    assert response.status_code == 200
    rejected = make.trade(proposer, partner)
    assert (
        client.post(
            f"/api/v1/trades/{rejected['id']}/reject", headers=partner["owner"]["headers"]
        ).status_code
        == 200
    )
    cancelled = make.trade(proposer, partner)
    response = client.post(f"/api/v1/trades/{cancelled['id']}/cancel", headers=proposer["owner"]["headers"])
    assert response.status_code == 200
    # A refused change (already settled: 409) counts nothing.
    assert (
        client.post(
            f"/api/v1/trades/{accepted['id']}/accept", headers=partner["owner"]["headers"]
        ).status_code
        == 409
    )
    after = scrape()
    deltas = {
        outcome: value(after, "trades_total", outcome=outcome)
        - value(before, "trades_total", outcome=outcome)
        for outcome in metrics.TRADE_OUTCOMES
    }
    assert deltas == {"proposed": 3, "completed": 1, "rejected": 1, "cancelled": 1}


def _robot_calls() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value("robot_cpu_calls_total", {"outcome": outcome}) or 0.0
        for outcome in metrics.ROBOT_OUTCOMES
    }


def test_a_failed_robot_refresh_is_counted_with_its_outcome(make_app, admin, scrape):
    client = make_app(ROBOT_CPU_URL=unused_url(), ROBOT_CPU_TIMEOUT="0.5").test_client()
    before = scrape()
    assert_problem(client.post("/api/v1/robots/refresh", headers=admin["headers"]), 502)
    after = scrape()
    deltas = {
        outcome: value(after, "robot_cpu_calls_total", outcome=outcome)
        - value(before, "robot_cpu_calls_total", outcome=outcome)
        for outcome in metrics.ROBOT_OUTCOMES
    }
    assert deltas == {
        outcome: 1.0 if outcome == "connection_error" else 0.0 for outcome in metrics.ROBOT_OUTCOMES
    }


# Cases about time get a short deadline; the others a generous one, so a loaded machine cannot
# turn a 2 MiB body into a timeout before the size cap is reached.
SHORT_DEADLINE = {"slow": 0.5, "trickle": 0.5}
ROBOT_CASES = [
    ("healthy", {}, "success"),
    ("json", {"data": []}, "success"),
    ("error", {}, "http_error"),
    ("redirect", {"location": "http://127.0.0.1:9/robotcpu"}, "redirect"),
    ("slow", {"delay": 2.0}, "timeout"),
    ("trickle", {}, "timeout"),
    ("huge", {}, "too_large"),
    ("huge_declared", {}, "too_large"),
    ("html", {}, "invalid_response"),
    ("object", {}, "invalid_response"),
    ("json", {"data": [{"model": "bad"}]}, "invalid_response"),
]


@pytest.mark.parametrize(
    ("behaviour", "options", "outcome"), ROBOT_CASES, ids=[f"{c[0]}-{c[2]}" for c in ROBOT_CASES]
)
def test_each_robot_call_is_counted_under_one_fixed_outcome(behaviour, options, outcome):
    before = _robot_calls()
    with RobotStub(behaviour, **options) as stub:
        result = fetch(stub.url, SHORT_DEADLINE.get(behaviour, 10.0))
    assert result.ok == (outcome == "success")
    after = _robot_calls()
    assert {key: after[key] - before[key] for key in after} == {
        key: 1.0 if key == outcome else 0.0 for key in metrics.ROBOT_OUTCOMES
    }


def test_a_refused_connection_is_counted_as_connection_error():
    before = _robot_calls()
    assert not fetch(unused_url(), 0.5).ok
    assert _robot_calls()["connection_error"] - before["connection_error"] == 1


# --- secrets -----------------------------------------------------------------------------------


def test_metrics_never_contain_a_token_or_a_password(metrics_app, client, make, admin):
    canary = "canary-" + uuid.uuid4().hex
    survivor = make.survivor()
    client.get(SURVIVORS, headers=survivor["owner"]["headers"])
    client.get(f"{SURVIVORS}?password={canary}&access_token={canary}")
    client.get(f"/{canary}", headers={"Authorization": f"Bearer {canary}"})
    client.post("/api/v1/auth/login", json={"username": admin["username"], "password": canary})
    scraper = metrics_app.test_client()
    scraper.get("/metrics", headers={"Authorization": f"Bearer {canary}"})
    text = scraper.get("/metrics", headers=AUTH).get_data(as_text=True)
    secrets = [TOKEN, SECRET, PASSWORD, canary, admin["access_token"], admin["refresh_token"]]
    secrets += [survivor["owner"]["access_token"], survivor["owner"]["refresh_token"]]
    assert [secret for secret in secrets if secret in text] == []
    assert "Bearer" not in text and "Authorization" not in text


# --- multiprocess mode -------------------------------------------------------------------------


def _write_counter(directory: Path, pid: int, route: str, count: float) -> None:
    """What a worker process leaves in PROMETHEUS_MULTIPROC_DIR for http_requests_total."""
    file = MmapedDict(str(directory / f"counter_{pid}.db"))
    try:
        labels = ("method", "route", "status")
        key = mmap_key("http_requests", "http_requests_total", labels, ("GET", route, "200"), "help")
        file.write_value(key, count, 0.0)
    finally:
        file.close()


def test_with_a_multiprocess_directory_every_process_files_are_summed(scrape, tmp_path, monkeypatch):
    assert any(name.startswith("python_") for name, _ in scrape())  # the default registry, until now
    _write_counter(tmp_path, 1001, "/api/v1/reports/resources", 3)
    _write_counter(tmp_path, 1002, "/api/v1/reports/resources", 4)
    monkeypatch.setenv(metrics.MULTIPROC_DIR_ENV, str(tmp_path))
    merged = scrape()
    assert requests_total(merged, "GET", "/api/v1/reports/resources", 200) == 7
    # A fresh registry over the files alone: nothing of this process's own memory is served.
    assert requests_total(merged, "GET", "/metrics", 200) == 0
    assert not any(name.startswith(("process_", "python_")) for name, _ in merged)
    _write_counter(tmp_path, 1003, "/api/v1/reports/resources", 5)
    assert requests_total(scrape(), "GET", "/api/v1/reports/resources", 200) == 12  # read anew each scrape


# --- gunicorn with three worker processes -------------------------------------------------------

BATCH = 12
MAX_BATCHES = 10
SCRAPES = 8
DEADLINE = 15.0


def _metrics_directory(tmp_path: Path) -> Path:
    (directory,) = tmp_path.glob("resistance-metrics-*")  # gunicorn.conf.py made it under TMPDIR
    return directory


def _served_by(directory: Path, route: str) -> dict[int, float]:
    """http_requests_total{GET, route, 200} as each process's own file holds it, by pid."""
    counts: dict[int, float] = {}
    for file in directory.glob("counter_*.db"):
        pid = int(file.stem.split("_")[1])
        for key, count, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(file)):
            _metric, name, labels, _help = json.loads(key)
            if name == "http_requests_total" and labels == {"method": "GET", "route": route, "status": "200"}:
                if count:
                    counts[pid] = count
    return counts


def _login(server: GunicornServer) -> dict[str, str]:
    with server.client() as client:
        response = client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _spread(
    server: GunicornServer,
    headers: dict[str, str],
    directory: Path,
    until: Callable[[dict[int, float]], bool],
) -> int:
    """GET /api/v1/survivors in batches of simultaneous connections until `until(served_by)`;
    how many were sent."""
    sent = 0
    for _ in range(MAX_BATCHES):
        responses = at_once(server, [lambda c: c.get(SURVIVORS, headers=headers)] * BATCH)
        assert statuses(responses) == {200: BATCH}, [r.text for r in responses]
        sent += BATCH
        if until(_served_by(directory, SURVIVORS)):
            break
    return sent


def _scrape_server(server: GunicornServer) -> Samples:
    with server.client() as client:  # a new connection: any worker may answer
        response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    return parse(response.text)


@pytest.mark.gunicorn
@pytest.mark.slow
def test_counts_are_summed_over_three_worker_processes(app, db_url, tmp_path):
    environ = server_environ(db_url, WEB_CONCURRENCY="3", METRICS_TOKEN=TOKEN, TMPDIR=str(tmp_path))
    with GunicornServer(environ, tmp_path / "gunicorn.log") as server:
        directory = _metrics_directory(tmp_path)
        headers = _login(server)
        sent = _spread(server, headers, directory, lambda served: len(served) >= 2)
        served = _served_by(directory, SURVIVORS)
        assert len(served) >= 2, served  # several workers answered: the sum below is across them
        assert sum(served.values()) == sent
        for _ in range(SCRAPES):
            samples = _scrape_server(server)
            assert requests_total(samples, "GET", SURVIVORS, 200) == sent
            assert (
                value(samples, "http_request_duration_seconds_count", method="GET", route=SURVIVORS) == sent
            )
            assert value(samples, "http_requests_in_flight") == 1.0  # the scrape itself
            assert TOKEN not in str(samples) and ADMIN_PASSWORD not in str(samples)
        problems = log_problems(server.output())
        assert not problems, "\n".join(problems)
    assert not directory.exists()  # the master removed it on exit


@pytest.mark.gunicorn
@pytest.mark.slow
def test_a_killed_worker_takes_its_in_flight_request_along_and_keeps_its_counts(app, db_url, tmp_path):
    with RobotStub("slow", delay=20.0) as stub:
        environ = server_environ(
            db_url,
            WEB_CONCURRENCY="3",
            METRICS_TOKEN=TOKEN,
            TMPDIR=str(tmp_path),
            ROBOT_CPU_URL=stub.url,
            ROBOT_CPU_TIMEOUT="30",
        )
        with GunicornServer(environ, tmp_path / "gunicorn.log") as server:
            directory = _metrics_directory(tmp_path)
            headers = _login(server)
            stuck: list[BaseException | httpx.Response] = []

            def wait_for_robots() -> None:
                try:
                    with server.client() as client:
                        stuck.append(client.get("/api/v1/robots", headers=headers))
                except httpx.HTTPError as error:
                    stuck.append(error)

            waiter = threading.Thread(target=wait_for_robots, daemon=True)
            waiter.start()
            victim = _eventually(lambda: _busy_worker(directory))  # serving the stuck request
            sent = _spread(server, headers, directory, lambda served: victim in served)
            assert victim in _served_by(directory, SURVIVORS)
            samples = _scrape_server(server)
            assert value(samples, "http_requests_in_flight") == 2.0  # the stuck request and the scrape
            assert requests_total(samples, "GET", SURVIVORS, 200) == sent

            os.kill(victim, signal.SIGKILL)
            _eventually(lambda: not (directory / f"gauge_livesum_{victim}.db").exists())  # child_exit
            for _ in range(SCRAPES):
                samples = _scrape_server(server)
                assert value(samples, "http_requests_in_flight") == 1.0  # the dead worker's request is gone
                assert requests_total(samples, "GET", SURVIVORS, 200) == sent  # its counts are not
            waiter.join(timeout=DEADLINE)
            assert stuck and isinstance(stuck[0], httpx.HTTPError)


def _busy_worker(directory: Path) -> int | None:
    """The pid whose in-flight gauge shows a request (only the stuck one runs), else None."""
    for file in directory.glob("gauge_livesum_*.db"):
        for _key, count, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(file)):
            if count >= 1:
                return int(file.stem.rsplit("_", 1)[1])
    return None


def _eventually(probe: Callable[[], Any]) -> Any:
    """probe()'s first truthy answer within DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        answer = probe()
        if answer:
            return answer
        time.sleep(0.05)
    raise AssertionError(f"{probe} never held within {DEADLINE:g}s")
