"""The Robot CPU client: one GET, bounded in time and size, every record validated (OWASP API7, API10).

The address comes from configuration only (never from a request), redirects are refused, the
whole call has one deadline that a slow trickle cannot stretch, and the body is cut at 1 MiB.
Anything but a JSON array of at least one valid record (or an empty array) is a failure with a
short reason; invalid records are skipped and counted, and only counts reach the log.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import marshmallow as ma
from marshmallow import validate

from api.metrics import ROBOT_CPU_CALLS
from api.schemas import CleanText, rfc3339_utc
from security import ijson

MAX_BODY_BYTES = 1024 * 1024
MAX_MODEL = 100
MAX_SERIAL = 100
CATEGORIES = ("Flying", "Land")
REPR_LIMIT = 80
DEADLINE_EXCEEDED = "deadline exceeded"
# 2021-09-03T11:04:17[.1234567][Z|+hh:mm]: .NET sends 7 fractional digits, Python reads 6.
_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:?\d{2})?$"
)

log = logging.getLogger("resistance.robots")


class _UpstreamDateTime(ma.fields.Field):
    """An ISO 8601 timestamp as the upstream writes it, normalised to RFC 3339 UTC with a Z."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:  # noqa: ARG002
        match = _TIMESTAMP.match(value) if isinstance(value, str) and len(value) <= 40 else None
        if match is None:
            raise ma.ValidationError("Not a timestamp.")
        day, clock, _fraction, zone = match.groups()
        offset = "+00:00" if zone in (None, "Z", "z") else zone
        if len(offset) == 5:  # +hhmm
            offset = offset[:3] + ":" + offset[3:]
        try:
            # OverflowError: a time that is outside the years 1-9999 once in UTC.
            return rfc3339_utc(datetime.fromisoformat(f"{day}T{clock}{offset}"))
        except (ValueError, OverflowError):
            raise ma.ValidationError("Not a timestamp.") from None


class UpstreamRobotSchema(ma.Schema):
    """One upstream record; fields we do not use are ignored, the ones we use are bounded."""

    class Meta:
        unknown = ma.EXCLUDE

    model = CleanText(required=True, validate=validate.Length(1, MAX_MODEL))
    serialNumber = CleanText(required=True, validate=validate.Length(1, MAX_SERIAL))  # noqa: N815
    manufacturedDate = _UpstreamDateTime(required=True)  # noqa: N815
    category = ma.fields.String(required=True, validate=validate.OneOf(CATEGORIES))


_SCHEMA = UpstreamRobotSchema()


@dataclass
class FetchResult:
    """What one call produced: records in the API's shape, or a short reason for the failure."""

    ok: bool
    records: list[dict[str, str]] = field(default_factory=list)
    skipped: int = 0
    reason: str | None = None


def _failure(reason: str, outcome: str) -> FetchResult:
    """A failed call: logged with its reason, counted under its outcome (api.metrics.ROBOT_OUTCOMES)."""
    log.warning("robot cpu call failed", extra={"reason": reason})
    ROBOT_CPU_CALLS.labels(outcome).inc()
    return FetchResult(ok=False, reason=reason)


def normalise(items: list[Any]) -> tuple[list[dict[str, str]], int]:
    """Validate each upstream record; the valid ones in the API's shape, and how many were skipped."""
    records: list[dict[str, str]] = []
    first_bad: str | None = None
    for item in items:
        try:
            loaded = _SCHEMA.load(item)
        except ma.ValidationError:
            if first_bad is None:
                first_bad = repr(item)[:REPR_LIMIT]
            continue
        records.append(
            {
                "model": loaded["model"],
                "serial_number": loaded["serialNumber"],
                "manufactured_date": loaded["manufacturedDate"],
                "category": loaded["category"],
            }
        )
    skipped = len(items) - len(records)
    if skipped:
        log.warning(
            "robot records skipped",
            extra={"skipped": skipped, "valid": len(records), "first_invalid": first_bad},
        )
    return records, skipped


def _read_body(response: httpx.Response, deadline: float) -> bytes | str:
    """The body, or a reason: over the deadline or over the size cap, checked between chunks."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return "response body over 1 MiB"
        if time.monotonic() > deadline:
            return DEADLINE_EXCEEDED
    return bytes(body)


def fetch(url: str, timeout: float) -> FetchResult:
    """GET the Robot CPU list once, within `timeout` seconds in all."""
    deadline = time.monotonic() + timeout
    limits = httpx.Timeout(timeout)
    try:
        with (
            httpx.Client(timeout=limits, follow_redirects=False, trust_env=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.is_redirect:
                return _failure(
                    f"upstream redirected (HTTP {response.status_code}); not followed", "redirect"
                )
            if response.status_code != 200:
                return _failure(f"upstream answered HTTP {response.status_code}", "http_error")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                return _failure("response body over 1 MiB", "too_large")
            body = _read_body(response, deadline)
    except httpx.TimeoutException:
        return _failure("timed out", "timeout")
    except httpx.HTTPError as error:
        return _failure(f"connection failed ({type(error).__name__})", "connection_error")
    if isinstance(body, str):
        return _failure(body, "timeout" if body == DEADLINE_EXCEEDED else "too_large")
    try:
        data = ijson.loads(body)  # the upstream is held to I-JSON, as our own clients are
    except ijson.NotIJSON:
        return _failure("response is not JSON", "invalid_response")
    if not isinstance(data, list):
        return _failure("response is not a JSON array", "invalid_response")
    records, skipped = normalise(data)
    if data and not records:
        return _failure(f"no valid record among {len(data)}", "invalid_response")
    ROBOT_CPU_CALLS.labels("success").inc()
    return FetchResult(ok=True, records=records, skipped=skipped)
