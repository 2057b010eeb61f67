"""Robot rules: the stored copy, its freshness, one refresh at a time, and the bundled snapshot.

Network calls never run inside a database transaction: the lease is taken in one short write
transaction, the upstream is called with no transaction open, and the result is stored in
another. A failed refresh keeps its lease until the lease expires, so while the upstream is down
readers retry it at most once per lease period instead of on every request.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from flask import current_app
from sqlalchemy import or_, select, update

from api.caching import current_version
from api.database import insert_ignore, utcnow, write_transaction
from api.extensions import db
from api.problems import ProblemError
from api.robots.client import CATEGORIES, FetchResult, fetch, normalise
from api.robots.models import ROW_ID, RobotCache

ROBOTS = "robots"
SNAPSHOT_FILE = "robotcpu-snapshot.json"
# How long a refresh may hold the lease beyond its own deadline before another reader may try.
LEASE_GRACE_SECONDS = 5.0

Record = dict[str, str]


def _sorted(records: list[Record]) -> list[Record]:
    """Category, then model, then serial number, in code-point order."""
    return sorted(records, key=lambda r: (r["category"], r["model"], r["serial_number"]))


@functools.cache
def snapshot_records() -> tuple[Record, ...]:
    """The bundled snapshot of real Robot CPU data, validated like any upstream answer."""
    raw = resources.files("api.robots").joinpath(SNAPSHOT_FILE).read_text(encoding="utf-8")
    records, _skipped = normalise(json.loads(raw))
    return tuple(_sorted(records))


def _stored() -> tuple[list[Record] | None, datetime | None]:
    """The stored copy and when it was fetched (None, None before the first good fetch)."""
    row = db.session.execute(
        select(RobotCache.records, RobotCache.fetched_at).where(RobotCache.id == ROW_ID)
    ).first()
    if row is None or row.records is None:
        return None, None
    return json.loads(row.records), row.fetched_at


def _take_lease(now: datetime, stale_before: datetime) -> bool:
    """Atomically claim the refresh; True for exactly one reader while the copy is stale."""
    lease = timedelta(seconds=current_app.config["ROBOT_CPU_TIMEOUT"] + LEASE_GRACE_SECONDS)
    with write_transaction() as session:
        insert_ignore(RobotCache, {"id": ROW_ID})
        claimed = session.execute(
            update(RobotCache)
            .where(
                RobotCache.id == ROW_ID,
                or_(RobotCache.refresh_started_at.is_(None), RobotCache.refresh_started_at < now - lease),
                or_(RobotCache.fetched_at.is_(None), RobotCache.fetched_at <= stale_before),
            )
            .values(refresh_started_at=now)
            .returning(RobotCache.id)
            .execution_options(synchronize_session=False)
        ).first()
    return claimed is not None


def _store(records: list[Record]) -> tuple[list[Record], datetime]:
    """Replace the stored copy, release the lease and bump the robots version, in one transaction."""
    ordered = _sorted(records)
    fetched_at = utcnow()
    with write_transaction(changes=ROBOTS) as session:
        insert_ignore(RobotCache, {"id": ROW_ID})
        session.execute(
            update(RobotCache)
            .where(RobotCache.id == ROW_ID)
            .values(records=json.dumps(ordered), fetched_at=fetched_at, refresh_started_at=None)
            .execution_options(synchronize_session=False)
        )
    return ordered, fetched_at


def _call_upstream() -> FetchResult:
    config = current_app.config
    return fetch(config["ROBOT_CPU_URL"], config["ROBOT_CPU_TIMEOUT"])


def robots_view() -> tuple[list[Record], str, datetime | None]:
    """The robots to serve now, sorted, with their source ("upstream", "cache", "snapshot") and fetch time."""
    now = utcnow()
    stale_before = now - timedelta(seconds=current_app.config["ROBOT_CACHE_TTL"])
    records, fetched_at = _stored()
    if records is not None and fetched_at is not None and fetched_at > stale_before:
        return records, "cache", fetched_at
    if _take_lease(now, stale_before):  # commits: no transaction is open during the call
        result = _call_upstream()
        if result.ok:
            records, fetched_at = _store(result.records)
            return records, "upstream", fetched_at
    # Someone else is refreshing (or just did), or the upstream failed: serve what there is.
    records, fetched_at = _stored()
    if records is None:
        return list(snapshot_records()), "snapshot", None
    return records, "cache", fetched_at


def by_category(records: list[Record]) -> dict[str, int]:
    """Counts per category; both keys always present."""
    counts = dict.fromkeys(CATEGORIES, 0)
    for record in records:
        counts[record["category"]] += 1
    return counts


def refresh() -> dict[str, Any]:
    """Fetch now (admin, CLI); 502 with the stored data kept when the upstream fails."""
    db.session.commit()  # end any read transaction: none stays open while we wait on the network
    result = _call_upstream()
    if not result.ok:
        raise ProblemError(502, f"The Robot CPU call failed: {result.reason}. The stored data is kept.")
    records, fetched_at = _store(result.records)
    return {"total": len(records), "by_category": by_category(records), "fetched_at": fetched_at}


def robots_page(page: int, page_size: int, category: str | None = None) -> tuple[int, dict[str, Any]]:
    """The robots version (read first, for the ETag) and one page of robots with source and fetch time."""
    version = current_version(ROBOTS)
    records, source, fetched_at = robots_view()
    if category is not None:
        records = [record for record in records if record["category"] == category]
    start = (page - 1) * page_size
    body = {
        "items": records[start : start + page_size],
        "page": page,
        "page_size": page_size,
        "total": len(records),
        "source": source,
        "fetched_at": fetched_at,
    }
    return version, body


def robots_summary() -> tuple[int, dict[str, Any]]:
    """The robots version (for the ETag) and the counts per category, with source and fetch time."""
    version = current_version(ROBOTS)
    records, source, fetched_at = robots_view()
    body = {
        "total": len(records),
        "by_category": by_category(records),
        "source": source,
        "fetched_at": fetched_at,
    }
    return version, body
