"""Trade rules: fair offers, role checks, and an acceptance that can neither mint nor lose items.

Acceptance is one write transaction: the trade row is locked, then both survivors in ascending
id order (so two trades crossing the same pair cannot deadlock), then each inventory changes by
a conditional UPDATE that only matches while the survivor is healthy and still holds what it
gives. If either side does not match, everything rolls back and the trade stays pending; the
status change itself is conditional on 'pending', so a trade completes at most once even if a
lock were missed. On SQLite the immediate write transaction serialises writers instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from api.accounts.models import Actor, Role
from api.caching import SURVIVORS
from api.database import mark_changed, utcnow, write_transaction
from api.extensions import db
from api.metrics import TRADES
from api.pagination import Window, page_of
from api.problems import ProblemError
from api.survivors.models import ITEMS, Survivor, points_of, revised
from api.trades.models import Status, Trade, TradeEvent

audit = logging.getLogger("resistance.audit")

# Who may take each action besides an admin: the party named by the trade column.
ACTIONS = {
    Status.COMPLETED: "partner_id",
    Status.REJECTED: "partner_id",
    Status.CANCELLED: "proposer_id",
}
ROLE_NAMES = {"partner_id": "partner", "proposer_id": "proposer"}


def _record(session: Session, trade: Trade, actor: Actor, event: str) -> None:
    """Write the audit row in the same transaction as the change it records."""
    session.add(
        TradeEvent(
            trade_id=trade.id,
            event=event,
            actor_account_id=actor.id,
            proposer_id=trade.proposer_id,
            partner_id=trade.partner_id,
            offer=trade.offer,
            request=trade.request,
        )
    )


def _audit(trade_id: uuid.UUID, actor: Actor, event: str) -> None:
    """The audit log line and the trades_total count, once the change is committed."""
    audit.info(
        f"trade {event}",
        extra={"event": f"trade.{event}", "trade_id": str(trade_id), "account_id": str(actor.id)},
    )
    TRADES.labels(event).inc()


def _fairness_errors(offer: Mapping[str, int], request: Mapping[str, int]) -> dict[str, list[str]]:
    offered, requested = points_of(offer), points_of(request)
    if offered == requested:
        return {}
    return {
        "request": [f"Worth {requested} points, but the offer is worth {offered}: both sides must be equal."]
    }


def propose(actor: Actor, data: dict[str, Any]) -> Trade:
    """Record a pending trade from the actor's survivor to a partner, after every proposal rule."""
    if actor.role != Role.SURVIVOR:
        raise ProblemError(403, "Only survivor accounts propose trades.")
    offer, request, partner_id = data["offer"], data["request"], data["partner_id"]
    if actor.survivor_id is None:
        raise ProblemError(409, "Register your survivor profile before trading.")
    with write_transaction() as session:
        proposer = session.get_one(Survivor, actor.survivor_id, populate_existing=True)
        if partner_id == proposer.id:
            raise ProblemError(
                422,
                "A survivor cannot trade with itself.",
                errors={"partner_id": ["Cannot trade with yourself."]},
            )
        unfair = _fairness_errors(offer, request)
        if unfair:
            raise ProblemError(422, "Both sides of a trade must be worth the same points.", errors=unfair)
        partner = session.get(Survivor, partner_id)
        if partner is None:
            raise ProblemError(404, "No such partner survivor.")
        if proposer.infected or partner.infected:
            raise ProblemError(403, "Infected survivors cannot trade.")
        short = {
            f"offer.{item}": [f"You hold {getattr(proposer, item)}."]
            for item, count in offer.items()
            if getattr(proposer, item) < count
        }
        if short:
            raise ProblemError(422, "You do not hold the items you offer.", errors=short)
        trade = Trade(proposer_id=proposer.id, partner_id=partner.id, **Trade.columns(offer, request))
        session.add(trade)
        session.flush()
        _record(session, trade, actor, "proposed")
    _audit(trade.id, actor, "proposed")
    return trade


def _own_survivor(actor: Actor) -> uuid.UUID | None:
    """The actor's survivor id (an admin acts as no party)."""
    return None if actor.role == Role.ADMIN else actor.survivor_id


def _visible(actor: Actor, own: uuid.UUID | None, trade: Trade | None) -> Trade:
    """The trade if the actor is a party (`own` is its survivor id) or an admin; anyone else is
    told it does not exist."""
    if trade is not None and (
        actor.role == Role.ADMIN or (own is not None and own in (trade.proposer_id, trade.partner_id))
    ):
        return trade
    raise ProblemError(404, "No such trade.")


def get_trade(actor: Actor, trade_id: uuid.UUID) -> Trade:
    """A trade its parties and admins may read; 404 for anyone else."""
    return _visible(actor, _own_survivor(actor), db.session.get(Trade, trade_id))


def list_trades(window: Window, actor: Actor, status: str | None = None) -> tuple[list[Trade], int]:
    """One page of the trades the actor's survivor is party to (admins: all), oldest first."""
    where = [] if status is None else [Trade.status == Status(status)]
    if actor.role != Role.ADMIN:
        own = actor.survivor_id
        if own is None:
            return [], 0
        where.append(or_(Trade.proposer_id == own, Trade.partner_id == own))
    return page_of(Trade, where, window)


def _exchange(
    session: Session, survivor_id: uuid.UUID, gives: Mapping[str, int], takes: Mapping[str, int]
) -> bool:
    """Move one party's items; matches (True) only while it is healthy and holds all it gives."""
    statement = (
        update(Survivor)
        .where(
            Survivor.id == survivor_id,
            Survivor.infected.is_(False),
            *(getattr(Survivor, item) >= count for item, count in gives.items()),
        )
        .values(
            {
                **{
                    item: getattr(Survivor, item) - gives.get(item, 0) + takes.get(item, 0)
                    for item in ITEMS
                    if item in gives or item in takes
                },
                **revised(),
            }
        )
        .returning(Survivor.id)
    )
    return session.execute(statement).first() is not None


def _complete(session: Session, trade: Trade) -> None:
    """Swap both sides, locking the two survivors in ascending id order; 409 if either cannot."""
    moves = {
        trade.proposer_id: ("proposer", trade.offer, trade.request),
        trade.partner_id: ("partner", trade.request, trade.offer),
    }
    for survivor_id in sorted(moves):
        party, gives, takes = moves[survivor_id]
        # FOR NO KEY UPDATE: excludes other writers of the row but not the key-share locks that
        # inserting a trade or report referencing this survivor takes, so those cannot deadlock.
        survivor = session.scalars(
            select(Survivor)
            .where(Survivor.id == survivor_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        ).one()
        if not _exchange(session, survivor_id, gives, takes):
            reason = "is infected" if survivor.infected else "no longer holds the items it gives"
            raise ProblemError(409, f"The {party} {reason}: nothing moved and the trade stays pending.")
    mark_changed(SURVIVORS)  # the resources report changed


def settle(actor: Actor, trade_id: uuid.UUID, outcome: Status) -> Trade:
    """Accept, reject or cancel a pending trade, as its party in the right role or as an admin."""
    with write_transaction() as session:
        own = _own_survivor(actor)
        locked = session.get(Trade, trade_id, with_for_update=True, populate_existing=True)
        trade = _visible(actor, own, locked)
        party = ACTIONS[outcome]
        # Observers are read-only even when linked to a profile (a survivor demoted by an admin).
        acts_as_party = actor.role == Role.SURVIVOR and own == getattr(trade, party)
        if actor.role != Role.ADMIN and not acts_as_party:
            raise ProblemError(403, f"Only the trade's {ROLE_NAMES[party]} (or an admin) may do this.")
        # The status check is itself conditional: whatever the locks, only one caller can move a
        # trade out of 'pending', and a failed exchange below rolls this back with everything else.
        moved = session.execute(
            update(Trade)
            .where(Trade.id == trade.id, Trade.status == Status.PENDING)
            .values(status=outcome, updated_at=utcnow())
            .returning(Trade.id)
        ).first()
        if moved is None:
            raise ProblemError(409, f"The trade is already {trade.status.value}.")
        if outcome == Status.COMPLETED:
            _complete(session, trade)
        _record(session, trade, actor, outcome.value)
    _audit(trade_id, actor, outcome.value)
    return trade
