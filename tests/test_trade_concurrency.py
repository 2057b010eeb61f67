"""Trades raced against a real gunicorn: however the requests interleave, no item is minted or lost.

Each scenario fires its requests at the same instant (tests/server.py `at_once`) against one
gunicorn per mode — one worker with threads, three worker processes — on the suite's database
(tests/races.py). Accounts, survivors and pending trades are made in-process through the
Factory (same database as the server); only the racing requests go over HTTP. Afterwards the
database itself is read: every item's total over the scenario's survivors is what it was, no
inventory is negative, and each trade's status and audit trail match the responses. The `live`
fixture fails the test on any 5xx, traceback or 'database is locked' in the server's output.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import select

from api.extensions import db
from api.survivors.models import ITEMS, Survivor
from api.trades.models import Trade, TradeEvent
from tests import races
from tests.conftest import Factory
from tests.server import Call, GunicornServer, assert_no_server_errors, at_once, statuses

pytestmark = pytest.mark.gunicorn

# The shared fixtures (tests/races.py), bound here: one gunicorn per mode for this module, and
# the clean-log check after every test.
server = races.server
live = races.live

Inventory = dict[str, int]
WATER_FOR_AMMO = ({"water": 1}, {"ammunition": 4})  # 4 points each side
# Fair sides (equal points) for the storm: some swap an item for itself, some need several items.
FAIR_SIDES = [
    WATER_FOR_AMMO,
    ({"ammunition": 4}, {"water": 1}),
    ({"food": 2}, {"medication": 3}),
    ({"medication": 2}, {"water": 1}),
    ({"water": 2, "food": 1}, {"medication": 2, "ammunition": 7}),
    ({"food": 1}, {"food": 1}),
    ({"ammunition": 3}, {"food": 1}),
]


def inventory(water: int = 0, food: int = 0, medication: int = 0, ammunition: int = 0) -> Inventory:
    return {"water": water, "food": food, "medication": medication, "ammunition": ammunition}


def inventories(app: Flask, survivors: Iterable[dict[str, Any]]) -> dict[str, Inventory]:
    """Each survivor's items as the database holds them now, by survivor id."""
    ids = [uuid.UUID(survivor["id"]) for survivor in survivors]
    with app.app_context():
        rows = db.session.execute(
            select(Survivor.id, *(getattr(Survivor, item) for item in ITEMS)).where(Survivor.id.in_(ids))
        ).all()
        db.session.remove()
    assert len(rows) == len(ids)
    return {str(row[0]): dict(zip(ITEMS, row[1:], strict=True)) for row in rows}


def infected(app: Flask, survivor: dict[str, Any]) -> bool:
    with app.app_context():
        value = db.session.scalar(select(Survivor.infected).where(Survivor.id == uuid.UUID(survivor["id"])))
        db.session.remove()
    return bool(value)


def totals(holdings: dict[str, Inventory]) -> Inventory:
    return {item: sum(items[item] for items in holdings.values()) for item in ITEMS}


def assert_conserved(before: dict[str, Inventory], after: dict[str, Inventory]) -> None:
    """Trades only move items: every total is unchanged and nobody holds less than nothing."""
    assert totals(after) == totals(before), (before, after)
    negative = {sid: items for sid, items in after.items() if min(items.values()) < 0}
    assert not negative, negative


def trade_statuses(app: Flask, trades: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Each trade's stored status, by trade id."""
    ids = [uuid.UUID(trade["id"]) for trade in trades]
    with app.app_context():
        rows = db.session.execute(select(Trade.id, Trade.status).where(Trade.id.in_(ids))).all()
        db.session.remove()
    return {str(trade_id): status.value for trade_id, status in rows}


def trade_events(app: Flask, trades: Iterable[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """The audit trail of these trades: how many rows of each (trade id, event)."""
    ids = [uuid.UUID(trade["id"]) for trade in trades]
    with app.app_context():
        rows = db.session.execute(
            select(TradeEvent.trade_id, TradeEvent.event).where(TradeEvent.trade_id.in_(ids))
        )
        counted = Counter((str(trade_id), event) for trade_id, event in rows)
        db.session.remove()
    return counted


def act(trade: dict[str, Any], action: str, account: dict[str, Any]) -> Call:
    """A call that POSTs /trades/{id}/{action} as `account` (an account dict or a survivor's owner)."""
    headers = account.get("owner", account)["headers"]
    return lambda client: client.post(f"/api/v1/trades/{trade['id']}/{action}", headers=headers)


def report(reporter: dict[str, Any], target: dict[str, Any]) -> Call:
    """A call in which reporter's account reports target as infected."""
    headers = reporter["owner"]["headers"]
    return lambda client: client.post(f"/api/v1/survivors/{target['id']}/infection-reports", headers=headers)


def moved(holdings: Inventory, gives: dict[str, int], takes: dict[str, int]) -> Inventory:
    """holdings after giving `gives` and taking `takes`."""
    return {item: holdings[item] - gives.get(item, 0) + takes.get(item, 0) for item in ITEMS}


def assert_refused(response: httpx.Response) -> None:
    """A 409 problem: the race was lost, cleanly."""
    assert response.status_code == 409, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 409


def assert_completed(response: httpx.Response, trade: dict[str, Any]) -> None:
    assert response.status_code == 200, (response.status_code, response.text)
    body = response.json()
    assert (body["id"], body["status"]) == (trade["id"], "completed")
    assert (body["offer"], body["request"]) == (trade["offer"], trade["request"])


def test_six_partners_accept_at_once_three_water_completes_three(
    live: GunicornServer, app: Flask, make: Factory
):
    proposer = make.survivor(inventory=inventory(water=3))
    partners = [make.survivor(inventory=inventory(ammunition=4)) for _ in range(6)]
    trades = [make.trade(proposer, partner, *WATER_FOR_AMMO) for partner in partners]
    everyone = [proposer, *partners]
    before = inventories(app, everyone)

    responses = at_once(
        live, [act(trade, "accept", partner) for trade, partner in zip(trades, partners, strict=True)]
    )

    assert_no_server_errors(responses)
    assert statuses(responses) == {200: 3, 409: 3}
    after = inventories(app, everyone)
    assert_conserved(before, after)
    assert after[proposer["id"]] == inventory(water=0, ammunition=12)
    stored = trade_statuses(app, trades)
    events = trade_events(app, trades)
    for response, trade, partner in zip(responses, trades, partners, strict=True):
        if response.status_code == 200:
            assert_completed(response, trade)
            assert after[partner["id"]] == inventory(water=1)
            assert stored[trade["id"]] == "completed"
            assert events[(trade["id"], "completed")] == 1
        else:
            assert_refused(response)
            assert after[partner["id"]] == before[partner["id"]]  # nothing moved
            assert stored[trade["id"]] == "pending"  # and the trade can still be acted on
            assert events[(trade["id"], "completed")] == 0
    assert Counter(stored.values()) == {"completed": 3, "pending": 3}


def test_one_trade_accepted_four_times_at_once_completes_once(
    live: GunicornServer, app: Flask, make: Factory, admin: dict[str, Any]
):
    proposer = make.survivor(inventory=inventory(water=5, food=1))
    partner = make.survivor(inventory=inventory(ammunition=20, medication=1))
    trade = make.trade(proposer, partner, *WATER_FOR_AMMO)
    before = inventories(app, [proposer, partner])

    responses = at_once(
        live,
        [act(trade, "accept", partner), act(trade, "accept", admin)] * 2,
    )

    assert_no_server_errors(responses)
    assert statuses(responses) == {200: 1, 409: 3}
    (winner,) = (r for r in responses if r.status_code == 200)
    assert_completed(winner, trade)
    for loser in (r for r in responses if r.status_code != 200):
        assert_refused(loser)
        assert "already completed" in loser.json()["detail"]
    after = inventories(app, [proposer, partner])
    assert_conserved(before, after)
    assert after[proposer["id"]] == moved(before[proposer["id"]], *WATER_FOR_AMMO)  # moved once, not twice
    assert after[partner["id"]] == moved(before[partner["id"]], WATER_FOR_AMMO[1], WATER_FOR_AMMO[0])
    assert trade_statuses(app, [trade]) == {trade["id"]: "completed"}
    assert trade_events(app, [trade]) == {(trade["id"], "proposed"): 1, (trade["id"], "completed"): 1}


def test_crosswise_trades_around_a_ring_accepted_at_once_all_complete(
    live: GunicornServer, app: Flask, make: Factory
):
    """Each neighbour pair trades both ways at once: every accept locks the same pair of rows.

    With the survivors locked in proposer/partner order, A→B and B→A would deadlock; in id order
    they queue. Holdings are ample, so every trade completes and the two directions cancel out.
    """
    ring = [make.survivor(inventory=inventory(water=10, food=3, ammunition=40)) for _ in range(4)]
    before = inventories(app, ring)
    for _round in range(3):
        pairs = [(ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring))]
        trades = []
        calls: list[Call] = []
        for one, other in pairs:
            for proposer, partner in ((one, other), (other, one)):
                trade = make.trade(proposer, partner, *WATER_FOR_AMMO)
                trades.append(trade)
                calls.append(act(trade, "accept", partner))

        responses = at_once(live, calls)

        assert_no_server_errors(responses)
        assert statuses(responses) == {200: len(calls)}
        for response, trade in zip(responses, trades, strict=True):
            assert_completed(response, trade)
        assert inventories(app, ring) == before  # each pair swapped both ways: back where it began
        assert set(trade_statuses(app, trades).values()) == {"completed"}
        completed = Counter(event for (_, event), n in trade_events(app, trades).items() for _ in range(n))
        assert completed["completed"] == len(trades)


def test_crosswise_trades_on_tight_holdings_end_as_one_order_or_the_other(
    live: GunicornServer, app: Flask, make: Factory
):
    """A holds 1 water and no ammunition, B 1 water and 4 ammunition; A→B and B→A race.

    A→B (A's water for B's ammunition) can always complete. B→A needs the 4 ammunition A only
    has after A→B: it completes if it runs second and is 409 if it runs first. Either way the
    state is exactly one of the two serial orders.
    """
    pairs = [
        (
            make.survivor(inventory=inventory(water=1)),
            make.survivor(inventory=inventory(water=1, ammunition=4)),
        )
        for _ in range(4)
    ]
    trades = [(make.trade(a, b, *WATER_FOR_AMMO), make.trade(b, a, *WATER_FOR_AMMO)) for a, b in pairs]
    everyone = [survivor for pair in pairs for survivor in pair]
    before = inventories(app, everyone)
    calls: list[Call] = []
    for (a, b), (a_to_b, b_to_a) in zip(pairs, trades, strict=True):
        calls += [act(a_to_b, "accept", b), act(b_to_a, "accept", a)]

    responses = at_once(live, calls)

    assert_no_server_errors(responses)
    after = inventories(app, everyone)
    assert_conserved(before, after)
    stored = trade_statuses(app, [trade for pair in trades for trade in pair])
    for index, ((a, b), (a_to_b, b_to_a)) in enumerate(zip(pairs, trades, strict=True)):
        first, second = responses[2 * index], responses[2 * index + 1]
        assert_completed(first, a_to_b)
        assert stored[a_to_b["id"]] == "completed"
        if second.status_code == 200:
            assert_completed(second, b_to_a)
            assert stored[b_to_a["id"]] == "completed"
            assert after[a["id"]] == before[a["id"]]
            assert after[b["id"]] == before[b["id"]]
        else:
            assert_refused(second)
            assert stored[b_to_a["id"]] == "pending"
            assert after[a["id"]] == inventory(ammunition=4)
            assert after[b["id"]] == inventory(water=2)


def test_accept_racing_the_infecting_report_either_completes_or_moves_nothing(
    live: GunicornServer, app: Flask, make: Factory
):
    """A party has two reports; its third arrives with the partner's accept.

    Whichever commits first decides: the trade completes (and the party is infected right
    after), or the accept finds an infected party and is 409 with nothing moved. Each case is
    run with the proposer, the partner, and the proposer reported by the partner itself.
    """
    cases = []
    variants = (("proposer", "fresh"), ("partner", "fresh"), ("proposer", "partner"))
    for target_role, reporter_role in variants * 2:
        parties = {
            "proposer": make.survivor(inventory=inventory(water=2, food=1)),
            "partner": make.survivor(inventory=inventory(ammunition=8, medication=1)),
        }
        trade = make.trade(parties["proposer"], parties["partner"], *WATER_FOR_AMMO)
        target = parties[target_role]
        make.infect(target, reporters=2)
        reporter = parties["partner"] if reporter_role == "partner" else make.survivor()
        cases.append((parties, trade, target, reporter))
    everyone = [survivor for parties, *_ in cases for survivor in parties.values()]
    before = inventories(app, everyone)
    calls: list[Call] = []
    for parties, trade, target, reporter in cases:
        calls += [act(trade, "accept", parties["partner"]), report(reporter, target)]

    responses = at_once(live, calls)

    assert_no_server_errors(responses)
    after = inventories(app, everyone)
    assert_conserved(before, after)
    stored = trade_statuses(app, [trade for _, trade, *_ in cases])
    events = trade_events(app, [trade for _, trade, *_ in cases])
    for index, (parties, trade, target, _reporter) in enumerate(cases):
        accepted, reported = responses[2 * index], responses[2 * index + 1]
        assert reported.status_code == 201, reported.text
        assert reported.json()["infected"] is True
        assert infected(app, target)
        proposer, partner = parties["proposer"], parties["partner"]
        if accepted.status_code == 200:
            assert_completed(accepted, trade)
            assert stored[trade["id"]] == "completed"
            assert events[(trade["id"], "completed")] == 1
            assert after[proposer["id"]] == moved(before[proposer["id"]], *WATER_FOR_AMMO)
            assert after[partner["id"]] == moved(before[partner["id"]], WATER_FOR_AMMO[1], WATER_FOR_AMMO[0])
        else:
            assert_refused(accepted)
            assert "infected" in accepted.json()["detail"]
            assert stored[trade["id"]] == "pending"
            assert events[(trade["id"], "completed")] == 0
            assert after[proposer["id"]] == before[proposer["id"]]
            assert after[partner["id"]] == before[partner["id"]]


def test_accept_reject_and_cancels_racing_on_one_trade_exactly_one_wins(
    live: GunicornServer, app: Flask, make: Factory, admin: dict[str, Any]
):
    """Per trade at once: the partner accepts and rejects, the proposer and an admin cancel."""
    actions = [("accept", "partner"), ("cancel", "proposer"), ("reject", "partner"), ("cancel", "admin")]
    outcome_of = {"accept": "completed", "cancel": "cancelled", "reject": "rejected"}
    cases = []
    for _ in range(3):
        proposer = make.survivor(inventory=inventory(water=1))
        partner = make.survivor(inventory=inventory(ammunition=4))
        actors = {"proposer": proposer, "partner": partner, "admin": admin}
        cases.append((actors, make.trade(proposer, partner)))
    everyone = [survivor for actors, _ in cases for survivor in (actors["proposer"], actors["partner"])]
    before = inventories(app, everyone)
    calls = [act(trade, action, actors[who]) for actors, trade in cases for action, who in actions]

    responses = at_once(live, calls)

    assert_no_server_errors(responses)
    after = inventories(app, everyone)
    assert_conserved(before, after)
    stored = trade_statuses(app, [trade for _, trade in cases])
    events = trade_events(app, [trade for _, trade in cases])
    for index, (actors, trade) in enumerate(cases):
        mine = responses[index * len(actions) : (index + 1) * len(actions)]
        assert statuses(mine) == {200: 1, 409: len(actions) - 1}, [r.text for r in mine]
        (action, who), winner = next(
            ((done, r) for done, r in zip(actions, mine, strict=True) if r.status_code == 200)
        )
        for loser in (r for r in mine if r.status_code != 200):
            assert_refused(loser)
        outcome = outcome_of[action]
        assert winner.json()["status"] == outcome
        assert stored[trade["id"]] == outcome
        terminal = {event: n for (trade_id, event), n in events.items() if trade_id == trade["id"]}
        assert terminal == {"proposed": 1, outcome: 1}
        proposer, partner = actors["proposer"]["id"], actors["partner"]["id"]
        if outcome == "completed":
            assert after[proposer] == inventory(ammunition=4)
            assert after[partner] == inventory(water=1)
        else:
            assert after[proposer] == before[proposer]
            assert after[partner] == before[partner]


def test_a_storm_of_overlapping_accepts_moves_exactly_the_completed_trades(
    live: GunicornServer, app: Flask, make: Factory
):
    """Many trades over a few survivors, in every direction, all accepted at once by their partners.

    Holdings are short enough that some must fail. Whatever the order, each survivor ends with
    its starting items plus exactly the moves of the trades that answered 200 — a lost or doubled
    update anywhere would break that sum — and every refused trade is still pending.
    """
    rng = random.Random(20261126)  # the same storm on every run
    start = inventory(water=2, food=2, medication=2, ammunition=4)
    crowd = [make.survivor(inventory=start) for _ in range(5)]
    trades: list[tuple[dict[str, Any], int, int]] = []
    for _ in range(14):
        proposer, partner = rng.sample(range(len(crowd)), 2)
        offer, request = rng.choice(FAIR_SIDES)  # every offer is within `start`: the proposals are valid
        trades.append((make.trade(crowd[proposer], crowd[partner], offer, request), proposer, partner))
    before = inventories(app, crowd)

    responses = at_once(live, [act(trade, "accept", crowd[partner]) for trade, _, partner in trades])

    assert_no_server_errors(responses)
    assert 200 in statuses(responses)
    expected = {survivor["id"]: dict(before[survivor["id"]]) for survivor in crowd}
    for response, (trade, proposer, partner) in zip(responses, trades, strict=True):
        if response.status_code == 200:
            assert_completed(response, trade)
            p, q = crowd[proposer]["id"], crowd[partner]["id"]
            expected[p] = moved(expected[p], trade["offer"], trade["request"])
            expected[q] = moved(expected[q], trade["request"], trade["offer"])
        else:
            assert_refused(response)
    after = inventories(app, crowd)
    assert_conserved(before, after)
    assert after == expected
    outcomes = {
        trade["id"]: "completed" if response.status_code == 200 else "pending"
        for response, (trade, _, _) in zip(responses, trades, strict=True)
    }
    assert trade_statuses(app, [trade for trade, _, _ in trades]) == outcomes
    events = trade_events(app, [trade for trade, _, _ in trades])
    assert set(events.values()) == {1}  # one row per event: proposed, and completed at most once
    assert {trade_id for trade_id, event in events if event == "completed"} == {
        trade_id for trade_id, outcome in outcomes.items() if outcome == "completed"
    }
