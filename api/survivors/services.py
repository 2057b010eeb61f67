"""Survivor rules: one profile per survivor account, owner-or-admin moves, locked inventories."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from api.accounts.models import Actor, Role, actor_name
from api.caching import SURVIVORS
from api.database import mark_stale, write_transaction
from api.extensions import db
from api.pagination import Window, page_of
from api.problems import ProblemError
from api.survivors import totals
from api.survivors.models import ITEMS, Survivor, revised

SECOND_PROFILE = "This account already has a survivor profile."


def create_survivor(actor: Actor, data: dict[str, Any]) -> Survivor:
    """A survivor account registers itself once; an admin registers unlinked profiles."""
    if actor.role not in (Role.SURVIVOR, Role.ADMIN):
        raise ProblemError(403, "Observers cannot register survivors.")
    if actor.role == Role.SURVIVOR and actor.survivor_id is not None:
        raise ProblemError(409, SECOND_PROFILE)
    inventory = data.get("inventory") or {}
    survivor = Survivor(
        account_id=actor.id if actor.role == Role.SURVIVOR else None,
        name=data["name"],
        age=data["age"],
        gender=data["gender"],
        latitude=data["location"]["latitude"],
        longitude=data["location"]["longitude"],
        **{item: inventory.get(item, 0) for item in ITEMS},
    )
    try:
        with write_transaction(changes=SURVIVORS) as session:
            if survivor.account_id is not None:  # the account's actor now has a survivor_id
                mark_stale(actor_name(str(survivor.account_id)))
            session.add(survivor)
            session.flush()
            totals.registered(session, {item: getattr(survivor, item) for item in ITEMS})
    except IntegrityError:
        # account_id is unique: the database decides the race between two first profiles.
        raise ProblemError(409, SECOND_PROFILE) from None
    return survivor


def list_survivors(window: Window, infected: bool | None = None) -> tuple[list[Survivor], int]:
    """One page in registration order, optionally filtered on infection, and the total (from the
    survivor totals: nothing is counted)."""
    where = [] if infected is None else [Survivor.infected.is_(infected)]
    return page_of(Survivor, where, window, size=totals.size_of(infected))


def get_survivor(survivor_id: uuid.UUID) -> Survivor:
    """A survivor by id, or 404."""
    survivor = db.session.get(Survivor, survivor_id)
    if survivor is None:
        raise ProblemError(404, "No such survivor.")
    return survivor


def _require_owner_or_admin(actor: Actor, survivor: Survivor) -> None:
    # An observer is read-only even when still linked to a profile (a survivor demoted by an admin).
    owner = actor.role == Role.SURVIVOR and survivor.account_id == actor.id
    if actor.role != Role.ADMIN and not owner:
        raise ProblemError(403, "Only the survivor itself or an admin may do this.")


def move(
    actor: Actor,
    survivor_id: uuid.UUID,
    location: dict[str, float],
    precondition: Callable[[str], bool],
) -> Survivor:
    """Record a new location; 412 (nothing written) when precondition(current ETag) is false."""
    with write_transaction(changes=SURVIVORS) as session:
        survivor = session.get(Survivor, survivor_id, with_for_update=True, populate_existing=True)
        if survivor is None:
            raise ProblemError(404, "No such survivor.")
        _require_owner_or_admin(actor, survivor)
        if not precondition(survivor.etag):
            raise ProblemError(412, "The survivor changed since you read it; fetch it again.")
        # The loaded survivor takes the new values too (the ORM evaluates the SET clause on it).
        session.execute(
            update(Survivor)
            .where(Survivor.id == survivor.id)
            .values(latitude=location["latitude"], longitude=location["longitude"], **revised())
        )
    return survivor


def inventory_of(actor: Actor, survivor_id: uuid.UUID) -> dict[str, Any]:
    """The survivor's items; an infected survivor's inventory is locked to everyone but admins."""
    survivor = get_survivor(survivor_id)
    if survivor.infected and actor.role != Role.ADMIN:
        raise ProblemError(403, "This survivor is infected: the inventory is locked.")
    return survivor.inventory
