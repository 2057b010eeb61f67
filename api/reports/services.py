"""Reports as SQL aggregates: one query each, never a row loaded into Python."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, case, cast, func, select

from api.extensions import db
from api.robots.services import robots_summary
from api.survivors.models import ITEMS, POINTS, Survivor
from api.survivors.services import list_survivors


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def infection_summary() -> dict[str, Any]:
    """How many survivors are infected, as counts and percentages (0.0 when there are none)."""
    total, infected = db.session.execute(
        select(func.count(), func.coalesce(func.sum(case((Survivor.infected, 1), else_=0)), 0))
    ).one()
    total, infected = int(total), int(infected)
    return {
        "total": total,
        "infected": infected,
        "non_infected": total - infected,
        "infected_percentage": _percent(infected, total),
        "non_infected_percentage": _percent(total - infected, total),
    }


def resources() -> dict[str, Any]:
    """Average items per non-infected survivor, and the points held by infected survivors."""
    healthy = ~Survivor.infected
    averages = [func.avg(case((healthy, getattr(Survivor, item)), else_=None)) for item in ITEMS]
    # 64-bit arithmetic throughout: on PostgreSQL a sum of int4 products overflows past 2**31.
    points = sum(POINTS[item] * cast(getattr(Survivor, item), BigInteger) for item in ITEMS)
    lost = func.coalesce(func.sum(case((Survivor.infected, points), else_=0)), 0)
    row = db.session.execute(select(*averages, cast(lost, BigInteger))).one()
    return {
        "average_per_survivor": {
            item: round(float(value), 2) if value is not None else 0.0
            for item, value in zip(ITEMS, row[:-1], strict=True)
        },
        "points_lost": int(row[-1]),
    }


def infected_page(page: int, page_size: int) -> tuple[list[Survivor], int]:
    """One page of infected survivors."""
    return list_survivors(page, page_size, infected=True)


def non_infected_page(page: int, page_size: int) -> tuple[list[Survivor], int]:
    """One page of non-infected survivors."""
    return list_survivors(page, page_size, infected=False)


def robots() -> tuple[int, dict[str, Any]]:
    """Robot counts per category with their source (the robots version comes first, for the ETag).

    The robots are not rows but one stored document of at most 1 MiB, so they are counted from it.
    """
    return robots_summary()
