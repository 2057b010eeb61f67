"""The Robot CPU client against a real HTTP server on loopback: healthy, slow, down and hostile."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from api.robots.client import MAX_BODY_BYTES, fetch, normalise
from tests.robot_stub import SNAPSHOT, RobotStub, timed

TIMEOUT = 0.5
MARGIN = 0.5
# Streaming 1 MiB can take longer than 0.5 s on a loaded 2-core machine: the size cap, not the
# deadline, must be what stops those cases, so they get a deadline that cannot trip first.
LARGE_BODY_TIMEOUT = 5.0


def unused_url() -> str:
    """A loopback address nothing listens on (connection refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/robotcpu"


def record(**overrides: Any) -> dict[str, Any]:
    return {**SNAPSHOT[0], **overrides}


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def robot_log():
    handler = Captured()
    logger = logging.getLogger("resistance.robots")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def test_fetch_healthy_returns_every_snapshot_record_in_the_api_shape():
    with RobotStub() as stub:
        result, took = timed(lambda: fetch(stub.url, TIMEOUT))
    assert result.ok and result.reason is None and result.skipped == 0
    assert len(result.records) == len(SNAPSHOT) == 50
    first = result.records[0]
    assert set(first) == {"model", "serial_number", "manufactured_date", "category"}
    assert first["model"] == SNAPSHOT[0]["model"]
    assert first["manufactured_date"] == "2022-03-10T01:28:41Z"
    assert took < TIMEOUT + MARGIN


@pytest.mark.parametrize(
    ("behaviour", "options", "reason"),
    [
        ("error", {}, "upstream answered HTTP 500"),
        ("html", {}, "response is not JSON"),
        ("object", {}, "response is not a JSON array"),
        ("huge", {}, "response body over 1 MiB"),
        ("huge_declared", {}, "response body over 1 MiB"),
        ("slow", {"delay": 3.0}, "timed out"),
        ("trickle", {}, "deadline exceeded"),
        ("json", {"data": [{"model": 1}, "robot", None]}, "no valid record among 3"),
    ],
)
def test_fetch_failure_is_a_short_reason_within_the_deadline(behaviour, options, reason):
    deadline = LARGE_BODY_TIMEOUT if behaviour.startswith("huge") else TIMEOUT
    with RobotStub(behaviour, **options) as stub:
        result, took = timed(lambda: fetch(stub.url, deadline))
    assert not result.ok and result.records == []
    assert result.reason == reason
    assert took < deadline + MARGIN, took


def test_fetch_connection_refused_fails_at_once():
    result, took = timed(lambda: fetch(unused_url(), TIMEOUT))
    assert not result.ok and result.reason == "connection failed (ConnectError)"
    assert took < TIMEOUT + MARGIN


def test_fetch_does_not_follow_a_redirect():
    with RobotStub() as target, RobotStub("redirect", location=target.url) as stub:
        result = fetch(stub.url, TIMEOUT)
    assert not result.ok and result.reason == "upstream redirected (HTTP 302); not followed"
    assert stub.calls == 1 and target.calls == 0


def test_fetch_empty_array_is_zero_robots():
    with RobotStub("json", data=[]) as stub:
        result = fetch(stub.url, TIMEOUT)
    assert result.ok and result.records == [] and result.skipped == 0


def test_fetch_deeply_nested_json_is_not_json():
    depth = 200_000
    with RobotStub("raw", body=b"[" * depth + b"]" * depth) as stub:
        result = fetch(stub.url, TIMEOUT)
    assert not result.ok and result.reason == "response is not JSON"
    assert 2 * depth <= MAX_BODY_BYTES


def test_fetch_mixed_records_keeps_the_good_ones_and_logs_counts_only(robot_log):
    secret = "S" * 500
    data = [SNAPSHOT[0], {"model": secret}, SNAPSHOT[1], record(category="Sea"), "junk"]
    with RobotStub("json", data=data) as stub:
        result = fetch(stub.url, TIMEOUT)
    assert result.ok and result.skipped == 3
    assert [r["serial_number"] for r in result.records] == [
        SNAPSHOT[0]["serialNumber"],
        SNAPSHOT[1]["serialNumber"],
    ]
    (entry,) = [r for r in robot_log if r.getMessage() == "robot records skipped"]
    assert entry.skipped == 3 and entry.valid == 2
    assert len(entry.first_invalid) <= 80 and secret not in entry.first_invalid


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-09-03T11:04:17.1234567", "2021-09-03T11:04:17Z"),
        ("2021-09-03T11:04:17.1234567Z", "2021-09-03T11:04:17Z"),
        ("2021-09-03T11:04:17.1234567+02:00", "2021-09-03T09:04:17Z"),
        ("2021-09-03T11:04:17-0130", "2021-09-03T12:34:17Z"),
        ("2021-09-03T11:04:17z", "2021-09-03T11:04:17Z"),
        ("2021-09-03 11:04:17", "2021-09-03T11:04:17Z"),
        # Years before 1000 keep four digits (strftime's %Y wrote "999-05-05…" on Linux).
        ("0999-05-05T00:00:00Z", "0999-05-05T00:00:00Z"),
        ("0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00Z"),
    ],
)
def test_normalise_reads_the_upstream_timestamps_tolerantly(raw, expected):
    records, skipped = normalise([record(manufacturedDate=raw)])
    assert skipped == 0 and records[0]["manufactured_date"] == expected


@pytest.mark.parametrize(
    "bad",
    [
        record(manufacturedDate="yesterday"),
        record(manufacturedDate="2021-02-30T11:04:17"),
        record(manufacturedDate=20210903),
        record(manufacturedDate="2021-09-03T11:04:17" + "0" * 40),
        # Valid ISO 8601, but outside the years 1-9999 once in UTC (was an OverflowError, a 500).
        record(manufacturedDate="0001-01-01T00:00:00+01:00"),
        record(manufacturedDate="9999-12-31T23:59:59-01:00"),
        record(model=""),
        record(model="M" * 101),
        record(serialNumber="AB\nC"),
        record(category="flying"),
        {"model": "X"},
        ["list"],
        7,
    ],
)
def test_normalise_skips_invalid_records(bad):
    assert normalise([bad]) == ([], 1)


def test_normalise_ignores_unknown_upstream_fields_and_trims():
    records, skipped = normalise([record(extra="ignored", model="  M1 ")])
    assert skipped == 0 and records[0]["model"] == "M1"


@pytest.mark.parametrize(
    "body",
    [
        b'[{"model": "T-800\\ud800", "serialNumber": "1", "category": "Land"}]',
        b'[{"model": "T-800", "model": "T-1000", "serialNumber": "1", "category": "Land"}]',
        b"[NaN]",
    ],
    ids=["lone-surrogate", "duplicate-member", "nan"],
)
def test_fetch_body_that_is_not_i_json_is_not_json(body):
    with RobotStub("raw", body=body) as stub:
        result = fetch(stub.url, TIMEOUT)
    assert not result.ok and result.reason == "response is not JSON"
