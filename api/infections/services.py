"""The infection rule, closed by the database: a unique pair and an atomic counter."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from api.accounts.models import Actor, Role
from api.caching import SURVIVORS
from api.database import insert_ignore, mark_changed, utcnow, write_transaction
from api.infections.models import InfectionReport
from api.metrics import INFECTIONS
from api.problems import ProblemError
from api.survivors import totals
from api.survivors.models import ITEMS, Survivor, revised

audit = logging.getLogger("resistance.audit")
HELD = [getattr(Survivor, item) for item in ITEMS]


def _reporter(actor: Actor, session: Any, reporter_id: uuid.UUID | None) -> Survivor:
    if actor.role == Role.SURVIVOR:
        if actor.survivor_id is None:
            raise ProblemError(409, "Register your survivor profile before reporting.")
        return session.get_one(Survivor, actor.survivor_id, populate_existing=True)
    if reporter_id is None:
        raise ProblemError(
            422, "Admins must name the reporter.", errors={"reporter_id": ["Required for admins."]}
        )
    reporter = session.get(Survivor, reporter_id)
    if reporter is None:
        raise ProblemError(
            422, "reporter_id names no survivor.", errors={"reporter_id": ["No such survivor."]}
        )
    return reporter


def report(actor: Actor, reported_id: uuid.UUID, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Record actor's report on a survivor; returns (result, counted) — counted is False for a repeat."""
    if actor.role not in (Role.SURVIVOR, Role.ADMIN):
        raise ProblemError(403, "Observers cannot report infections.")
    threshold = current_app.config["INFECTION_THRESHOLD"]
    with write_transaction() as session:
        if session.get(Survivor, reported_id) is None:
            raise ProblemError(404, "No such survivor.")
        reporter = _reporter(actor, session, body.get("reporter_id"))
        if reporter.id == reported_id:
            raise ProblemError(
                422, "A survivor cannot report itself.", errors={"survivor_id": ["Cannot report yourself."]}
            )
        if reporter.infected:
            raise ProblemError(403, "Infected survivors cannot report others.")
        if actor.role == Role.SURVIVOR and "reporter_id" in body:
            raise ProblemError(
                422, "Survivor accounts report as themselves.", errors={"reporter_id": ["Unknown field."]}
            )
        counted = insert_ignore(
            InfectionReport,
            {
                "id": uuid.uuid4(),
                "reporter_id": reporter.id,
                "reported_id": reported_id,
                "created_at": utcnow(),
            },
        )
        newly_infected = False
        if counted:
            count, infected, *held = session.execute(
                update(Survivor)
                .where(Survivor.id == reported_id)
                .values(infection_reports=Survivor.infection_reports + 1, **revised())
                .returning(Survivor.infection_reports, Survivor.infected, *HELD)
            ).one()
            # The row stays locked until the commit: this transaction alone sees it cross the
            # threshold, and the items it holds now are the ones the totals move to points lost.
            if not infected and count >= threshold:
                session.execute(update(Survivor).where(Survivor.id == reported_id).values(infected=True))
                totals.infected(session, dict(zip(ITEMS, held, strict=True)))
                infected = newly_infected = True
            mark_changed(SURVIVORS)
        else:
            count, infected = session.execute(
                select(Survivor.infection_reports, Survivor.infected).where(Survivor.id == reported_id)
            ).one()
    if newly_infected:
        audit.info("survivor infected", extra={"event": "survivor.infected", "survivor_id": str(reported_id)})
        INFECTIONS.inc()
    result = {
        "survivor_id": reported_id,
        "reporter_id": reporter.id,
        "infection_reports": count,
        "infected": infected,
    }
    return result, counted
