"""Survivor totals kept by every write, so list totals and reports never count a million rows.

Call these inside the write transaction that makes the change, after the survivor rows; the
transaction bumps the version row itself, after the block and right before its commit
(write_transaction, api/database.py). Every writer then locks survivor rows, this one row, and
the version row in that order, and no two transactions can wait on each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, Row, ScalarSelect, case, cast, func, select, update
from sqlalchemy.orm import Session

from api.extensions import db
from api.survivors.models import ITEMS, POINTS, TOTALS_ROW, Survivor, SurvivorTotals, points_of

FIELDS = ("survivors", "infected", *ITEMS, "points_lost")


def _change(session: Session, values: Mapping[str, Any]) -> None:
    session.execute(update(SurvivorTotals).where(SurvivorTotals.id == TOTALS_ROW).values(**values))


def _column(name: str) -> Any:
    return getattr(SurvivorTotals, name)


def registered(session: Session, inventory: Mapping[str, int]) -> None:
    """One more (healthy) survivor, holding `inventory`."""
    _change(
        session,
        {
            "survivors": SurvivorTotals.survivors + 1,
            **{item: _column(item) + inventory.get(item, 0) for item in ITEMS},
        },
    )


def infected(session: Session, inventory: Mapping[str, int]) -> None:
    """A healthy survivor holding `inventory` became infected: its items are now points lost."""
    _change(
        session,
        {
            "infected": SurvivorTotals.infected + 1,
            **{item: _column(item) - inventory.get(item, 0) for item in ITEMS},
            "points_lost": SurvivorTotals.points_lost + points_of(inventory),
        },
    )


def current() -> Row[Any]:
    """The totals as committed (fields: FIELDS)."""
    return db.session.execute(
        select(*(_column(name) for name in FIELDS)).where(SurvivorTotals.id == TOTALS_ROW)
    ).one()


def size_of(infected: bool | None) -> ScalarSelect[Any]:
    """How many survivors a list holds (all, the infected, the healthy) as a scalar subquery."""
    counted: Any = SurvivorTotals.survivors
    if infected is True:
        counted = SurvivorTotals.infected
    elif infected is False:
        counted = SurvivorTotals.survivors - SurvivorTotals.infected
    return select(counted).where(SurvivorTotals.id == TOTALS_ROW).scalar_subquery()


def recount(session: Session) -> dict[str, int]:
    """The same figures counted from every survivor row: the reference the counters must equal."""
    healthy = ~Survivor.infected
    items = [cast(getattr(Survivor, item), BigInteger) for item in ITEMS]
    points = sum(POINTS[item] * held for item, held in zip(ITEMS, items, strict=True))
    row = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Survivor.infected, 1), else_=0)), 0),
            *(func.coalesce(func.sum(case((healthy, held), else_=0)), 0) for held in items),
            func.coalesce(func.sum(case((Survivor.infected, points), else_=0)), 0),
        )
    ).one()
    return {name: int(value) for name, value in zip(FIELDS, row, strict=True)}


def reset(session: Session) -> None:
    """Set the counters from a full recount (after rows were written behind the app's back)."""
    _change(session, recount(session))
