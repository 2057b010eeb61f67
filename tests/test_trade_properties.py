"""Trades as a state machine: random proposals, answers and infections against a model of the rules.

Hypothesis drives the in-process HTTP client through random sequences of proposals (fair or
not, held or not), accepts, rejects and cancels by random actors (the right party, the wrong
one, an admin, a survivor who is not a party, an account without a profile), infection
reports, and reads. A plain model predicts every status code from the rules (docs/api.md, Trades) and
what each call changes; after every step the database must match the model exactly: every
inventory, every infection flag, every trade's status and audit trail — so the total of each
item over the survivors never changes, no inventory goes negative, a completed trade moved
exactly its items, and a refused accept moved nothing.

The conftest empties the tables after each *test*, not each example, so every example makes
its own survivors and only ever looks at them.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from flask import Flask
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from api.extensions import db
from api.survivors.models import ITEMS, POINTS, Survivor
from api.trades.models import Trade, TradeEvent
from tests.conftest import Factory, assert_totals_match

THRESHOLD = 3  # INFECTION_THRESHOLD's default, which the test app uses
SETTINGS = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is reproducible
    database=None,  # and nothing written into the working tree
)

Items = dict[str, int]

holdings = st.fixed_dictionaries({item: st.integers(0, 10) for item in ITEMS})
side = st.dictionaries(st.sampled_from(ITEMS), st.integers(1, 3), min_size=1, max_size=2)


def points(items: Items) -> int:
    return sum(POINTS[item] * count for item, count in items.items())


@st.composite
def worth(draw: st.DrawFn, total: int) -> Items:
    """Items worth exactly `total` points (a total of 1 or more)."""
    items: Items = {}
    remaining = total
    while remaining:
        item = draw(st.sampled_from([item for item in ITEMS if POINTS[item] <= remaining]))
        count = draw(st.integers(1, min(3, remaining // POINTS[item])))
        items[item] = items.get(item, 0) + count
        remaining -= count * POINTS[item]
    return items


@st.composite
def fair_sides(draw: st.DrawFn) -> tuple[Items, Items]:
    """An offer and a request worth the same points (the request may name the same items)."""
    offer = draw(side)
    return offer, draw(worth(points(offer)))


@st.composite
def held_offer(draw: st.DrawFn, inventory: Items) -> Items:
    """An offer of 1-2 items the inventory holds (any side at all when it holds nothing)."""
    held = [item for item in ITEMS if inventory[item]]
    if not held:
        return draw(side)
    names = draw(st.lists(st.sampled_from(held), min_size=1, max_size=2, unique=True))
    return {item: draw(st.integers(1, min(3, inventory[item]))) for item in names}


# Mostly fair by construction; a quarter drawn independently (mostly unfair, now and then fair).
sides = st.one_of(fair_sides(), fair_sides(), fair_sides(), st.tuples(side, side))


def holds(inventory: Items, items: Items) -> bool:
    return all(inventory[item] >= count for item, count in items.items())


def after_exchange(inventory: Items, gives: Items, takes: Items) -> Items:
    return {item: inventory[item] - gives.get(item, 0) + takes.get(item, 0) for item in ITEMS}


@dataclass
class TradeModel:
    id: str
    proposer: int
    partner: int
    offer: Items
    request: Items
    status: str = "pending"


# Who may act besides an admin, by action; and the status each action leads to.
ROLE_FOR = {"accept": "partner", "reject": "partner", "cancel": "proposer"}
OUTCOME = {"accept": "completed", "reject": "rejected", "cancel": "cancelled"}
ACTORS = ["proposer", "partner", "admin", "outsider", "no-profile"]
# For accept / reject / cancel: mostly the party whose move it is, now and then anyone else.
SETTLERS = ["right party"] * 4 + ["wrong party", "admin", "outsider", "no-profile"]
# Who proposes to whom: mostly two different survivors.
PAIRINGS = ["two survivors"] * 8 + ["with itself", "no profile"]


class TradeMachine(RuleBasedStateMachine):
    """The model: survivors' items and infection, and the trades between them."""

    # Bound per test (see the test below): the fixtures of the running test, and survivors from
    # outside every example who report the example's survivors (never reported themselves).
    app: Flask
    make: Factory
    admin: dict[str, Any]
    outside_reporters: list[dict[str, Any]]

    trades = Bundle("trades")

    def __init__(self) -> None:
        super().__init__()
        self.survivors: list[dict[str, Any]] = []
        self.held: list[Items] = []
        self.infected: list[bool] = []
        self.reported_by: list[set[int | str]] = []  # an example survivor's index, an outsider's id
        self.reports: list[int] = []
        self.trade_models: list[TradeModel] = []
        self.start_totals: Items = {}
        self.no_profile: dict[str, Any] = {}

    # ----------------------------------------------------------------- helpers

    def client_call(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
        response = getattr(self.make.client, method)(path, headers=headers, **kwargs)
        assert response.status_code < 500, (response.status_code, response.get_data(as_text=True))
        return response

    def headers_of(self, index: int) -> dict[str, str]:
        return self.survivors[index]["owner"]["headers"]

    def actor_headers(self, actor: str, trade: TradeModel, data: st.DataObject) -> dict[str, str]:
        if actor == "admin":
            return self.admin["headers"]
        if actor == "no-profile":
            return self.no_profile["headers"]
        if actor == "outsider":
            others = [i for i in range(len(self.survivors)) if i not in (trade.proposer, trade.partner)]
            return self.headers_of(data.draw(st.sampled_from(others), label="outsider"))
        return self.headers_of(trade.proposer if actor == "proposer" else trade.partner)

    @staticmethod
    def expect(response: Any, allowed: set[int], context: Any) -> int:
        status = response.status_code
        assert status in allowed, (status, sorted(allowed), context, response.get_data(as_text=True))
        if status >= 400:
            assert response.mimetype == "application/problem+json"
            assert response.get_json()["status"] == status
        return status

    # ------------------------------------------------------------------- rules

    @initialize(target=trades, inventories=st.lists(holdings, min_size=4, max_size=6), data=st.data())
    def create_survivors(self, inventories: list[Items], data: st.DataObject) -> Any:
        for inventory in inventories:
            self.survivors.append(self.make.survivor(inventory=inventory))
            self.held.append(dict(inventory))
            self.infected.append(False)
            self.reported_by.append(set())
            self.reports.append(0)
        self.start_totals = {item: sum(held[item] for held in self.held) for item in ITEMS}
        self.no_profile = self.make.account("survivor")
        # A few fair proposals of held items to start from, so that answers get going early.
        seeded = [self.held_proposal(data) for _ in range(data.draw(st.integers(1, 3), label="seeded"))]
        return multiple(*(index for index in seeded if index is not None))

    @rule(target=trades, data=st.data(), chosen=sides)
    def propose(self, data: st.DataObject, chosen: tuple[Items, Items]) -> Any:
        """Any sides between any two survivors (or one with itself, or from an account without one)."""
        pairing = data.draw(st.sampled_from(PAIRINGS), label="pairing")
        partner, proposer = self.pair(data)
        if pairing == "with itself":
            proposer = partner
        index = self.proposal(proposer, partner, *chosen, no_profile=pairing == "no profile")
        return multiple() if index is None else index

    @rule(target=trades, data=st.data())
    def propose_held(self, data: st.DataObject) -> Any:
        """A fair proposal of items the proposer holds: 201 unless a party is infected."""
        index = self.held_proposal(data)
        return multiple() if index is None else index

    def pair(self, data: st.DataObject) -> tuple[int, int]:
        """Two different survivors."""
        first, second = data.draw(st.permutations(range(len(self.survivors))), label="partner, proposer")[:2]
        return first, second

    def held_proposal(self, data: st.DataObject) -> int | None:
        partner, proposer = self.pair(data)
        offer = data.draw(held_offer(self.held[proposer]), label="offer")
        return self.proposal(proposer, partner, offer, data.draw(worth(points(offer)), label="request"))

    def proposal(
        self, proposer: int, partner: int, offer: Items, request: Items, no_profile: bool = False
    ) -> int | None:
        """POST the proposal and check the status against the model; the new trade's index when 201."""
        headers = self.no_profile["headers"] if no_profile else self.headers_of(proposer)
        body = {"partner_id": self.survivors[partner]["id"], "offer": offer, "request": request}
        response = self.client_call("post", "/api/v1/trades", headers, json=body)

        if no_profile:
            allowed = {409} if points(offer) == points(request) else {409, 422}
        else:
            errors = set()
            if proposer == partner:
                errors.add(422)
            if points(offer) != points(request):
                errors.add(422)
            if self.infected[proposer] or self.infected[partner]:
                errors.add(403)
            if not holds(self.held[proposer], offer):
                errors.add(422)
            allowed = errors or {201}
        if self.expect(response, allowed, ("propose", proposer, partner, offer, request)) != 201:
            return None
        trade = response.get_json()
        assert trade["status"] == "pending"
        assert (trade["proposer_id"], trade["partner_id"]) == (
            self.survivors[proposer]["id"],
            self.survivors[partner]["id"],
        )
        assert (trade["offer"], trade["request"]) == (offer, request)
        self.trade_models.append(TradeModel(trade["id"], proposer, partner, offer, request))
        return len(self.trade_models) - 1

    @rule(
        trade_index=trades,
        action=st.sampled_from(["accept", "accept", "reject", "cancel"]),
        settler=st.sampled_from(SETTLERS),
        data=st.data(),
    )
    def settle(self, trade_index: int, action: str, settler: str, data: st.DataObject) -> None:
        trade = self.trade_models[trade_index]
        actor = settler
        if settler in ("right party", "wrong party"):
            other = {"partner": "proposer", "proposer": "partner"}
            actor = ROLE_FOR[action] if settler == "right party" else other[ROLE_FOR[action]]
        headers = self.actor_headers(actor, trade, data)
        response = self.client_call("post", f"/api/v1/trades/{trade.id}/{action}", headers)

        p, q = trade.proposer, trade.partner
        if actor in ("outsider", "no-profile"):
            allowed = {404}  # not a party: as if the trade did not exist
        else:
            errors = set()
            if actor != "admin" and actor != ROLE_FOR[action]:
                errors.add(403)
            if trade.status != "pending":
                errors.add(409)
            if errors:
                allowed = errors
            elif action == "accept":
                possible = (
                    not self.infected[p]
                    and not self.infected[q]
                    and holds(self.held[p], trade.offer)
                    and holds(self.held[q], trade.request)
                )
                allowed = {200} if possible else {409}
            else:
                allowed = {200}
        if self.expect(response, allowed, (action, actor, trade, self.held[p], self.held[q])) != 200:
            return  # the invariant checks that nothing changed
        body = response.get_json()
        assert (body["id"], body["status"]) == (trade.id, OUTCOME[action])
        trade.status = OUTCOME[action]
        if action == "accept":
            self.held[p] = after_exchange(self.held[p], trade.offer, trade.request)
            self.held[q] = after_exchange(self.held[q], trade.request, trade.offer)

    @rule(trade_index=trades, by_admin=st.booleans(), data=st.data())
    def accept(self, trade_index: int, by_admin: bool, data: st.DataObject) -> None:
        """The common case, drawn more often: the partner (or an admin) accepts."""
        self.settle(trade_index, "accept", "admin" if by_admin else "right party", data)

    @rule(trade_index=trades, actor=st.sampled_from(ACTORS), data=st.data())
    def read_trade(self, trade_index: int, actor: str, data: st.DataObject) -> None:
        trade = self.trade_models[trade_index]
        headers = self.actor_headers(actor, trade, data)
        response = self.client_call("get", f"/api/v1/trades/{trade.id}", headers)
        if self.expect(response, {404} if actor in ("outsider", "no-profile") else {200}, actor) == 200:
            body = response.get_json()
            assert body["status"] == trade.status
            assert (body["offer"], body["request"]) == (trade.offer, trade.request)

    @rule(data=st.data(), status=st.sampled_from([None, "pending", "completed", "rejected", "cancelled"]))
    def list_trades(self, data: st.DataObject, status: str | None) -> None:
        index = data.draw(st.integers(0, len(self.survivors) - 1), label="lister")
        query = {"page_size": 100, **({"status": status} if status else {})}
        response = self.client_call("get", "/api/v1/trades", self.headers_of(index), query_string=query)
        self.expect(response, {200}, "list")
        expected = [
            t.id
            for t in self.trade_models
            if index in (t.proposer, t.partner) and (status is None or t.status == status)
        ]
        body = response.get_json()
        assert sorted(item["id"] for item in body["items"]) == sorted(expected)
        assert body["total"] == len(expected)
        stamps = [item["created_at"] for item in body["items"]]
        assert stamps == sorted(stamps)  # oldest first (to the second the body shows)

    @rule(data=st.data())
    def report(self, data: st.DataObject) -> None:
        count = len(self.survivors)
        reporter = data.draw(st.integers(0, count - 1), label="reporter")
        target = data.draw(st.integers(0, count - 1), label="target")
        path = f"/api/v1/survivors/{self.survivors[target]['id']}/infection-reports"
        response = self.client_call("post", path, self.headers_of(reporter))
        if reporter == target:
            allowed = {422}
        elif self.infected[reporter]:
            allowed = {403}
        elif reporter in self.reported_by[target]:
            allowed = {200}
        else:
            allowed = {201}
        if self.expect(response, allowed, ("report", reporter, target)) == 201:
            self.reported_by[target].add(reporter)
            self.reports[target] += 1
            self.infected[target] = self.infected[target] or self.reports[target] >= THRESHOLD
        if response.status_code in (200, 201):
            body = response.get_json()
            assert body["infection_reports"] == self.reports[target]
            assert body["infected"] == self.infected[target]

    @rule(data=st.data())
    def infect(self, data: st.DataObject) -> None:
        """The outside reporters all report one survivor: infected for good (a repeat counts nothing)."""
        target = data.draw(st.integers(0, len(self.survivors) - 1), label="infected")
        path = f"/api/v1/survivors/{self.survivors[target]['id']}/infection-reports"
        for reporter in self.outside_reporters:
            response = self.client_call("post", path, reporter["owner"]["headers"])
            first = reporter["id"] not in self.reported_by[target]
            self.expect(response, {201} if first else {200}, ("infect", target))
            self.reported_by[target].add(reporter["id"])
            self.reports[target] += first
        self.infected[target] = True
        assert response.get_json()["infection_reports"] == self.reports[target]

    @rule(data=st.data(), reader=st.sampled_from(["owner", "other", "admin"]))
    def read_inventory(self, data: st.DataObject, reader: str) -> None:
        index = data.draw(st.integers(0, len(self.survivors) - 1), label="inventory of")
        if reader == "admin":
            headers = self.admin["headers"]
        elif reader == "owner":
            headers = self.headers_of(index)
        else:
            headers = self.headers_of((index + 1) % len(self.survivors))
        path = f"/api/v1/survivors/{self.survivors[index]['id']}/inventory"
        response = self.client_call("get", path, headers)
        allowed = {403} if self.infected[index] and reader != "admin" else {200}
        if self.expect(response, allowed, ("inventory", index, reader)) == 200:
            body = response.get_json()
            assert {item: body[item] for item in ITEMS} == self.held[index]
            assert body["points"] == points(self.held[index])

    # -------------------------------------------------------------- invariant

    @invariant()
    def database_matches_the_model(self) -> None:
        if not self.survivors:
            return
        ids = [uuid.UUID(survivor["id"]) for survivor in self.survivors]
        trade_ids = [uuid.UUID(trade.id) for trade in self.trade_models]
        with self.app.app_context():
            columns = (Survivor.id, Survivor.infected, *(getattr(Survivor, item) for item in ITEMS))
            found = db.session.execute(select(*columns).where(Survivor.id.in_(ids)))
            rows = {str(row[0]): row[1:] for row in found}
            statuses = {
                str(trade_id): status.value
                for trade_id, status in db.session.execute(
                    select(Trade.id, Trade.status).where(Trade.id.in_(trade_ids))
                )
            }
            events = Counter(
                (str(trade_id), event)
                for trade_id, event in db.session.execute(
                    select(TradeEvent.trade_id, TradeEvent.event).where(TradeEvent.trade_id.in_(trade_ids))
                )
            )
            db.session.remove()
        assert_totals_match(self.app)  # the counters the writes keep equal a recount, every step

        stored = [dict(zip(ITEMS, rows[survivor["id"]][1:], strict=True)) for survivor in self.survivors]
        totals = {item: sum(items[item] for items in stored) for item in ITEMS}
        assert totals == self.start_totals, "trades minted or lost items"
        assert all(count >= 0 for items in stored for count in items.values()), stored
        assert stored == self.held, "inventories differ from the model"
        assert [bool(rows[survivor["id"]][0]) for survivor in self.survivors] == self.infected
        assert statuses == {trade.id: trade.status for trade in self.trade_models}
        for trade in self.trade_models:
            expected = {(trade.id, "proposed"): 1}
            if trade.status != "pending":
                expected[(trade.id, trade.status)] = 1  # one terminal event: completed at most once
            assert {key: n for key, n in events.items() if key[0] == trade.id} == expected


def test_trades_keep_every_invariant_under_random_operations(
    app: Flask, make: Factory, admin: dict[str, Any]
) -> None:
    outside = [make.survivor() for _ in range(THRESHOLD)]
    bound = {"app": app, "make": make, "admin": admin, "outside_reporters": outside}
    machine = type("BoundTradeMachine", (TradeMachine,), bound)
    run_state_machine_as_test(machine, settings=SETTINGS)
