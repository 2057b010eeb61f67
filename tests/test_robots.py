"""/api/v1/robots, /robots/refresh, /reports/robots and `flask robots sync` against a real stub upstream.

Every app here points at a loopback stub (or an unused loopback port), never at the internet,
with a 0.5 s deadline, so no test waits long on the Robot CPU.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask

from tests.conftest import assert_problem
from tests.robot_stub import SNAPSHOT, RobotStub, timed
from tests.test_robots_client import unused_url

ROBOTS = "/api/v1/robots"
REFRESH = "/api/v1/robots/refresh"
REPORT = "/api/v1/reports/robots"
TIMEOUT = "0.5"
LARGE_BODY_TIMEOUT = "5"
MARGIN = 0.75  # seconds beyond the deadline a request may take (database work, thread start)
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


def expected_order(records: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(records, key=lambda r: (r["category"], r["model"], r["serialNumber"]))
    return [r["serialNumber"] for r in ordered]


@pytest.fixture
def robot_app(make_app):
    """An app whose Robot CPU is `url` (a stub), with a short deadline."""

    def build(url: str, ttl: str = "300", timeout: str = TIMEOUT) -> Flask:
        return make_app(ROBOT_CPU_URL=url, ROBOT_CPU_TIMEOUT=timeout, ROBOT_CACHE_TTL=ttl)

    return build


@pytest.fixture
def healthy():
    with RobotStub() as stub:
        yield stub


@pytest.fixture
def reader(observer):
    return observer["headers"]


def get_all(client, headers, **query: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get(
            ROBOTS, query_string={**query, "page": page, "page_size": 100}, headers=headers
        ).get_json()
        items += body["items"]
        if len(items) >= body["total"]:
            return items
        page += 1


# --- healthy upstream --------------------------------------------------------------------------


def test_list_healthy_is_sorted_from_upstream_then_cache(robot_app, healthy, reader):
    client = robot_app(healthy.url).test_client()
    first = client.get(ROBOTS, query_string={"page_size": 100}, headers=reader)
    assert first.status_code == 200
    body = first.get_json()
    assert body["source"] == "upstream" and body["total"] == 50 and body["page"] == 1
    assert [item["serial_number"] for item in body["items"]] == expected_order(SNAPSHOT)
    assert set(body["items"][0]) == {"model", "serial_number", "manufactured_date", "category"}
    assert body["fetched_at"] and body["fetched_at"].endswith("Z")
    assert first.headers["Cache-Control"] == "private, no-cache" and first.headers["ETag"]
    second = client.get(ROBOTS, query_string={"page_size": 100}, headers=reader).get_json()
    assert second["source"] == "cache" and second["fetched_at"] == body["fetched_at"]
    assert second["items"] == body["items"]
    assert healthy.calls == 1


def test_refresh_as_admin_stores_and_counts(robot_app, healthy, admin, reader):
    client = robot_app(healthy.url).test_client()
    response = client.post(REFRESH, headers=admin["headers"])
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 50 and body["by_category"] == {"Flying": 17, "Land": 33}
    assert list(body) == ["total", "by_category", "fetched_at"]
    listed = client.get(ROBOTS, headers=reader).get_json()
    assert listed["source"] == "cache" and listed["fetched_at"] == body["fetched_at"]


@pytest.mark.parametrize("role", ["observer", "survivor"])
def test_refresh_by_non_admin_is_403_and_calls_nobody(robot_app, healthy, make, role):
    client = robot_app(healthy.url).test_client()
    assert_problem(client.post(REFRESH, headers=make.account(role)["headers"]), 403)
    assert healthy.calls == 0


# --- failing upstream: 502, the last good copy kept ----------------------------------------------

FAILURES = [
    ("error", {}, "HTTP 500"),
    ("slow", {"delay": 3.0}, "timed out"),
    ("trickle", {}, "deadline exceeded"),
    ("html", {}, "not JSON"),
    ("object", {}, "not a JSON array"),
    ("huge", {}, "over 1 MiB"),
    ("redirect", {}, "redirected"),
    ("json", {"data": [{"model": "bad"}]}, "no valid record"),
]


@pytest.mark.parametrize(("behaviour", "options", "reason"), FAILURES, ids=[f[0] for f in FAILURES])
def test_failure_is_502_within_the_deadline_and_the_good_copy_survives(
    robot_app, healthy, admin, reader, behaviour, options, reason
):
    good = robot_app(healthy.url).test_client()
    stored = good.post(REFRESH, headers=admin["headers"]).get_json()
    with RobotStub(behaviour, **{"location": healthy.url, **options}) as stub:
        # TTL 0: every read finds the copy stale and tries the (failing) upstream first.
        # Streaming 1 MiB can outlast 0.5 s on a loaded machine: the size cap must trip first.
        deadline = LARGE_BODY_TIMEOUT if behaviour == "huge" else TIMEOUT
        client = robot_app(stub.url, ttl="0", timeout=deadline).test_client()
        response, took = timed(lambda: client.post(REFRESH, headers=admin["headers"]))
        body = assert_problem(response, 502, title="Upstream failed")
        assert reason in body["detail"] and "kept" in body["detail"]
        assert took < float(deadline) + MARGIN, took
        listed, took = timed(lambda: client.get(ROBOTS, query_string={"page_size": 100}, headers=reader))
        assert took < float(deadline) + MARGIN, took
        assert stub.calls == 2
    assert listed.status_code == 200
    listed_body = listed.get_json()
    assert listed_body["source"] == "cache" and listed_body["total"] == 50
    assert listed_body["fetched_at"] == stored["fetched_at"]
    assert healthy.calls == 1  # the redirect's target was never called


def test_connection_refused_is_502_and_the_good_copy_survives(robot_app, healthy, admin, reader):
    good = robot_app(healthy.url).test_client()
    stored = good.post(REFRESH, headers=admin["headers"]).get_json()
    client = robot_app(unused_url(), ttl="0").test_client()
    response, took = timed(lambda: client.post(REFRESH, headers=admin["headers"]))
    assert "connection failed" in assert_problem(response, 502)["detail"]
    assert took < float(TIMEOUT) + MARGIN
    listed = client.get(ROBOTS, headers=reader).get_json()
    assert listed["source"] == "cache" and listed["fetched_at"] == stored["fetched_at"]


def test_snapshot_when_nothing_was_ever_fetched_and_upstream_is_down(robot_app, reader, admin):
    client = robot_app(unused_url()).test_client()
    response, took = timed(lambda: client.get(ROBOTS, query_string={"page_size": 100}, headers=reader))
    assert took < float(TIMEOUT) + MARGIN
    body = response.get_json()
    assert response.status_code == 200
    assert body["source"] == "snapshot" and body["fetched_at"] is None and body["total"] == 50
    assert [item["serial_number"] for item in body["items"]] == expected_order(SNAPSHOT)
    again = client.get(ROBOTS, query_string={"page_size": 100}, headers=reader)
    assert again.get_json()["source"] == "snapshot"
    report = client.get(REPORT, headers=reader).get_json()
    assert report == {
        "total": 50,
        "by_category": {"Flying": 17, "Land": 33},
        "source": "snapshot",
        "fetched_at": None,
    }
    assert_problem(client.post(REFRESH, headers=admin["headers"]), 502)


def test_mixed_records_keep_the_good_ones(robot_app, admin, reader):
    data = [SNAPSHOT[0], {"model": "X" * 500}, SNAPSHOT[1], {**SNAPSHOT[2], "category": "Sea"}, 42]
    with RobotStub("json", data=data) as stub:
        client = robot_app(stub.url).test_client()
        body = client.post(REFRESH, headers=admin["headers"]).get_json()
    assert body["total"] == 2
    listed = client.get(ROBOTS, headers=reader).get_json()
    assert sorted(item["serial_number"] for item in listed["items"]) == sorted(
        [SNAPSHOT[0]["serialNumber"], SNAPSHOT[1]["serialNumber"]]
    )


def test_empty_array_is_zero_robots_from_upstream(robot_app, reader):
    with RobotStub("json", data=[]) as stub:
        client = robot_app(stub.url).test_client()
        body = client.get(ROBOTS, headers=reader).get_json()
    assert body["source"] == "upstream" and body["items"] == [] and body["total"] == 0
    assert body["fetched_at"] is not None
    report = client.get(REPORT, headers=reader).get_json()
    assert report["total"] == 0 and report["by_category"] == {"Flying": 0, "Land": 0}
    assert report["source"] == "cache"


# --- freshness and single flight -----------------------------------------------------------------


def test_ttl_expiry_refreshes_once_under_concurrent_readers(robot_app, admin, reader):
    with RobotStub(delay=0.3) as stub:
        app = robot_app(stub.url, ttl="1")
        assert app.test_client().post(REFRESH, headers=admin["headers"]).status_code == 200
        time.sleep(1.1)
        barrier = threading.Barrier(8)
        results: list[tuple[int, str, float]] = []

        def read() -> None:
            client = app.test_client()
            barrier.wait(timeout=5)
            response, took = timed(lambda: client.get(ROBOTS, headers=reader))
            results.append((response.status_code, response.get_json()["source"], took))

        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert stub.calls == 2  # the admin's refresh, then exactly one refresh for 8 readers
    assert [status for status, _, _ in results] == [200] * 8
    sources = sorted(source for _, source, _ in results)
    assert sources == ["cache"] * 7 + ["upstream"]
    assert max(took for _, _, took in results) < float(TIMEOUT) + MARGIN + 0.3


# --- HTTP caching ----------------------------------------------------------------------------------


def test_etag_304_and_a_refresh_changes_it(robot_app, healthy, admin, reader):
    client = robot_app(healthy.url).test_client()
    client.post(REFRESH, headers=admin["headers"])
    first = client.get(ROBOTS, headers=reader)
    etag = first.headers["ETag"]
    not_modified = client.get(ROBOTS, headers={**reader, "If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.data == b""
    assert not_modified.headers["ETag"] == etag
    assert not_modified.headers["Cache-Control"] == "private, no-cache"
    other_page = client.get(ROBOTS, query_string={"page": 2}, headers=reader)
    assert other_page.headers["ETag"] != etag
    client.post(REFRESH, headers=admin["headers"])
    assert client.get(ROBOTS, headers={**reader, "If-None-Match": etag}).status_code == 200


def test_snapshot_and_cache_never_share_an_etag(robot_app, healthy, admin, reader):
    down = robot_app(unused_url()).test_client()
    snapshot = down.get(ROBOTS, headers=reader)
    assert snapshot.get_json()["source"] == "snapshot"
    robot_app(healthy.url).test_client().post(REFRESH, headers=admin["headers"])
    cached = down.get(ROBOTS, headers={**reader, "If-None-Match": snapshot.headers["ETag"]})
    assert cached.status_code == 200 and cached.get_json()["source"] == "cache"
    assert cached.headers["ETag"] != snapshot.headers["ETag"]


# --- query: category and pagination --------------------------------------------------------------


@pytest.mark.parametrize("category", ["Flying", "Land"])
def test_category_filter(robot_app, healthy, reader, category):
    client = robot_app(healthy.url).test_client()
    items = get_all(client, reader, category=category)
    wanted = [r for r in SNAPSHOT if r["category"] == category]
    assert [item["serial_number"] for item in items] == expected_order(wanted)


@pytest.mark.parametrize("value", ["Sea", "flying", "", "Land,Flying"])
def test_bad_category_is_422(robot_app, healthy, reader, value):
    client = robot_app(healthy.url).test_client()
    body = assert_problem(client.get(ROBOTS, query_string={"category": value}, headers=reader), 422)
    assert "category" in body["errors"]
    assert healthy.calls == 0


def test_pagination_pages_and_links(robot_app, healthy, reader):
    client = robot_app(healthy.url).test_client()
    first = client.get(ROBOTS, query_string={"page_size": 20}, headers=reader)
    assert 'rel="next"' in first.headers["Link"] and 'rel="prev"' not in first.headers["Link"]
    middle = client.get(ROBOTS, query_string={"page": 2, "page_size": 20}, headers=reader)
    assert 'rel="next"' in middle.headers["Link"] and 'rel="prev"' in middle.headers["Link"]
    last = client.get(ROBOTS, query_string={"page": 3, "page_size": 20}, headers=reader).get_json()
    assert len(last["items"]) == 10 and last["total"] == 50 and last["page_size"] == 20
    pages = [first.get_json()["items"], middle.get_json()["items"], last["items"]]
    assert [item["serial_number"] for page in pages for item in page] == expected_order(SNAPSHOT)
    beyond = client.get(ROBOTS, query_string={"page": 9}, headers=reader).get_json()
    assert beyond["items"] == [] and beyond["total"] == 50
    single = client.get(ROBOTS, query_string={"page_size": 100}, headers=reader)
    assert "Link" not in single.headers
    assert_problem(client.get(ROBOTS, query_string={"page_size": 101}, headers=reader), 422)
    assert_problem(client.get(ROBOTS, query_string={"page": 0}, headers=reader), 422)


# --- report ----------------------------------------------------------------------------------------


def test_report_robots_counts_with_source_and_etag(robot_app, healthy, reader):
    client = robot_app(healthy.url).test_client()
    response = client.get(REPORT, headers=reader)
    body = response.get_json()
    assert list(body) == ["total", "by_category", "source", "fetched_at"]
    assert body["total"] == 50 and body["by_category"] == {"Flying": 17, "Land": 33}
    assert body["source"] == "upstream"
    cached = client.get(REPORT, headers=reader)
    assert cached.get_json()["source"] == "cache"
    again = client.get(REPORT, headers={**reader, "If-None-Match": cached.headers["ETag"]})
    assert again.status_code == 304


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_robots_sync_prints_a_summary(robot_app, healthy):
    result = robot_app(healthy.url).test_cli_runner().invoke(args=["robots", "sync"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("synced ")]
    assert len(lines) == 1 and lines[0].startswith("synced 50 robots (Flying 17, Land 33) at ")


def test_cli_robots_sync_failure_exits_non_zero_with_the_reason(robot_app):
    with RobotStub("error") as stub:
        result = robot_app(stub.url).test_cli_runner().invoke(args=["robots", "sync"])
    assert result.exit_code == 1
    assert (
        "Error: The Robot CPU call failed: upstream answered HTTP 500. The stored data is kept."
        in result.output
    )
