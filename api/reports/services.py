"""Reports from the survivor totals every write keeps: one primary-key read, never a row scan."""

from __future__ import annotations

from typing import Any

from api.pagination import Window
from api.robots.services import robots_summary
from api.survivors import totals
from api.survivors.models import ITEMS, Survivor
from api.survivors.services import list_survivors


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def infection_summary() -> dict[str, Any]:
    """How many survivors are infected, as counts and percentages (0.0 when there are none)."""
    now = totals.current()
    total, infected = int(now.survivors), int(now.infected)
    return {
        "total": total,
        "infected": infected,
        "non_infected": total - infected,
        "infected_percentage": _percent(infected, total),
        "non_infected_percentage": _percent(total - infected, total),
    }


def resources() -> dict[str, Any]:
    """Average items per non-infected survivor, and the points held by infected survivors."""
    now = totals.current()
    healthy = int(now.survivors) - int(now.infected)
    return {
        "average_per_survivor": {
            item: round(int(getattr(now, item)) / healthy, 2) if healthy else 0.0 for item in ITEMS
        },
        "points_lost": int(now.points_lost),
    }


def infected_page(window: Window) -> tuple[list[Survivor], int]:
    """One page of infected survivors."""
    return list_survivors(window, infected=True)


def non_infected_page(window: Window) -> tuple[list[Survivor], int]:
    """One page of non-infected survivors."""
    return list_survivors(window, infected=False)


def robots() -> tuple[int, dict[str, Any]]:
    """Robot counts per category with their source (the robots version comes first, for the ETag).

    The robots are not rows but one stored document of at most 1 MiB, so they are counted from it.
    """
    return robots_summary()
