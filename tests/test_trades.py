"""Trades through the HTTP interface (docs/api.md, Trades): proposal rules, settling, visibility, the audit
trail, caching and the invariants no trade may break."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import select

from api.extensions import db
from api.trades.models import TradeEvent
from tests.conftest import Factory, assert_problem, cursors_of, random_uuid

URL = "/api/v1/trades"
SURVIVORS = "/api/v1/survivors"
RESOURCES = "/api/v1/reports/resources"
LINK = re.compile(r'\s*<([^>]+)>;\s*rel="(\w+)"\s*')
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
TRADE_KEYS = {"id", "proposer_id", "partner_id", "offer", "request", "status", "created_at", "updated_at"}
ITEMS = ("water", "food", "medication", "ammunition")
POINTS = {"water": 4, "food": 3, "medication": 2, "ammunition": 1}
ACTIONS = ("accept", "reject", "cancel")
OUTCOMES = {"accept": "completed", "reject": "rejected", "cancel": "cancelled"}
# Who may take each action besides an admin, and who is refused with 403.
ALLOWED = {"accept": "partner", "reject": "partner", "cancel": "proposer"}
REFUSED = {"accept": "proposer", "reject": "proposer", "cancel": "partner"}
STRANGERS = ["survivor", "observer", "no-profile"]
MALFORMED_IDS = ["123", "not-a-uuid", random_uuid() + "0", random_uuid()[:-1]]
# The default Factory survivor holds water 3, food 2, medication 1, ammunition 10 (30 points).
DEFAULT_HOLDINGS = {"water": 3, "food": 2, "medication": 1, "ammunition": 10}


def trade_url(trade_id: str, action: str | None = None) -> str:
    return f"{URL}/{trade_id}/{action}" if action else f"{URL}/{trade_id}"


def settle(client: Any, survivor: dict[str, Any], trade: dict[str, Any], action: str = "accept") -> Any:
    """survivor's owner takes `action` on trade."""
    return client.post(trade_url(trade["id"], action), headers=survivor["owner"]["headers"])


def settled(
    client: Any, survivor: dict[str, Any], trade: dict[str, Any], action: str = "accept"
) -> dict[str, Any]:
    """settle(), which must succeed; the trade as it now stands."""
    response = settle(client, survivor, trade, action)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def holdings(client: Any, admin: dict[str, Any], survivor_id: str) -> dict[str, int]:
    """A survivor's item counts, read as an admin (an infected survivor's inventory is locked to others)."""
    response = client.get(f"{SURVIVORS}/{survivor_id}/inventory", headers=admin["headers"])
    assert response.status_code == 200, response.get_json()
    return {item: response.get_json()[item] for item in ITEMS}


def moved(before: dict[str, int], gives: dict[str, int], takes: dict[str, int]) -> dict[str, int]:
    """Holdings after giving `gives` and taking `takes`."""
    return {item: before[item] - gives.get(item, 0) + takes.get(item, 0) for item in ITEMS}


# Both parties' holdings after the default trade (1 water for 4 ammunition) completed.
AFTER_DEFAULT_TRADE = (
    moved(DEFAULT_HOLDINGS, {"water": 1}, {"ammunition": 4}),
    moved(DEFAULT_HOLDINGS, {"ammunition": 4}, {"water": 1}),
)


def stranger_headers(make: Factory, kind: str) -> dict[str, str]:
    """Headers of an account that is no party to any trade made so far."""
    if kind == "survivor":
        return make.survivor()["owner"]["headers"]
    return make.account("observer" if kind == "observer" else "survivor")["headers"]


def give_away(make: Factory, survivor: dict[str, Any], item: str, count: int) -> None:
    """survivor trades `count` of `item` to a fresh survivor for ammunition of the same worth."""
    worth = count * POINTS[item]
    taker = make.survivor(inventory={"ammunition": worth})
    trade = make.trade(survivor, taker, {item: count}, {"ammunition": worth})
    settled(make.client, taker, trade)


def parse_links(header: str | None) -> dict[str, dict[str, str]]:
    """RFC 8288 Link header -> {rel: query of its url}."""
    links = {}
    for part in (header or "").split(","):
        if part:
            match = LINK.fullmatch(part)
            assert match, header
            url, rel = match.groups()
            assert url.startswith(f"{URL}?")  # a relative reference: never the request's Host
            links[rel] = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    return links


@dataclass
class Deal:
    """Two survivors, an admin and a pending trade between them (1 water for 4 ammunition)."""

    client: Any
    proposer: dict[str, Any]
    partner: dict[str, Any]
    admin: dict[str, Any]
    trade: dict[str, Any]

    def headers(self, who: str) -> dict[str, str]:
        return self.admin["headers"] if who == "admin" else getattr(self, who)["owner"]["headers"]

    def act(self, action: str, who: str, trade: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """`who` ("proposer", "partner" or "admin") takes `action` on this deal's trade (or `trade`)."""
        target = trade or self.trade
        return self.client.post(trade_url(target["id"], action), headers=self.headers(who), **kwargs)

    def read(self) -> dict[str, Any]:
        response = self.client.get(trade_url(self.trade["id"]), headers=self.admin["headers"])
        assert response.status_code == 200
        return response.get_json()

    def holdings(self) -> tuple[dict[str, int], dict[str, int]]:
        return (
            holdings(self.client, self.admin, self.proposer["id"]),
            holdings(self.client, self.admin, self.partner["id"]),
        )

    def assert_untouched(self) -> None:
        """The trade is still pending and neither party's items moved."""
        assert self.read()["status"] == "pending"
        assert self.holdings() == (DEFAULT_HOLDINGS, DEFAULT_HOLDINGS)


@pytest.fixture
def deal(client, make, admin) -> Deal:
    proposer, partner = make.survivor(), make.survivor()
    return Deal(client, proposer, partner, admin, make.trade(proposer, partner))


def events_of(app: Any, trade_id: str) -> list[TradeEvent]:
    with app.app_context():
        rows = db.session.scalars(
            select(TradeEvent)
            .where(TradeEvent.trade_id == uuid.UUID(trade_id))
            .order_by(TradeEvent.created_at)
        ).all()
        db.session.expunge_all()
    return list(rows)


# --- propose ---------------------------------------------------------------------------------


def test_propose_trade_returns_201_with_location_and_body(client, make):
    proposer, partner = make.survivor(), make.survivor()
    response = make.propose(proposer, partner, {"water": 1}, {"ammunition": 4})
    assert response.status_code == 201
    created = response.get_json()
    assert set(created) == TRADE_KEYS
    assert uuid.UUID(created["id"]).version == 4
    assert (created["proposer_id"], created["partner_id"]) == (proposer["id"], partner["id"])
    assert (created["offer"], created["request"], created["status"]) == (
        {"water": 1},
        {"ammunition": 4},
        "pending",
    )
    assert RFC3339_UTC.match(created["created_at"]) and RFC3339_UTC.match(created["updated_at"])
    assert response.headers["Location"].endswith(trade_url(created["id"]))
    assert response.headers["Cache-Control"] == "no-store"
    again = client.get(response.headers["Location"], headers=partner["owner"]["headers"])
    assert again.status_code == 200
    assert again.get_json() == created


def test_propose_trade_shows_only_the_named_items(make):
    proposer, partner = make.survivor(), make.survivor()
    offer = {"water": 2, "medication": 1, "ammunition": 3}
    request = {"food": 3, "medication": 2}
    created = make.trade(proposer, partner, offer, request)
    assert (created["offer"], created["request"]) == (offer, request)


def test_propose_trade_moves_no_items(client, make, admin):
    proposer, partner = make.survivor(), make.survivor()
    make.trade(proposer, partner)
    assert holdings(client, admin, proposer["id"]) == DEFAULT_HOLDINGS
    assert holdings(client, admin, partner["id"]) == DEFAULT_HOLDINGS


def test_propose_trade_offering_exactly_what_is_held_is_201(make):
    proposer, partner = make.survivor(), make.survivor()
    offer = dict(DEFAULT_HOLDINGS)  # everything, 30 points
    assert make.propose(proposer, partner, offer, {"ammunition": 30}).status_code == 201


def test_propose_trade_need_not_find_the_request_held(make):
    # Only the offer must be held at proposal; the partner's side is checked at acceptance.
    proposer, partner = make.survivor(), make.survivor(inventory={})
    assert make.propose(proposer, partner, {"water": 1}, {"ammunition": 4}).status_code == 201


def test_propose_trade_to_an_unlinked_survivor_is_201(client, make, admin):
    unlinked = client.post(SURVIVORS, json=make.survivor_body(), headers=admin["headers"]).get_json()
    proposer = make.survivor()
    assert make.propose(proposer, unlinked, {"water": 1}, {"ammunition": 4}).status_code == 201


@pytest.mark.parametrize("role", ["observer", "admin"])
def test_propose_trade_by_non_survivor_account_is_403(client, make, role):
    partner = make.survivor()
    account = make.account(role)
    body = {"partner_id": partner["id"], "offer": {"water": 1}, "request": {"ammunition": 4}}
    assert_problem(client.post(URL, json=body, headers=account["headers"]), 403)
    assert client.get(URL, headers=account["headers"]).get_json()["total"] == 0


def test_propose_trade_without_profile_is_409(client, make):
    partner = make.survivor()
    account = make.account("survivor")
    body = {"partner_id": partner["id"], "offer": {"water": 1}, "request": {"ammunition": 4}}
    assert_problem(
        client.post(URL, json=body, headers=account["headers"]),
        409,
        detail="Register your survivor profile before trading.",
    )


@pytest.mark.parametrize("spelling", [str.lower, str.upper])
def test_propose_trade_with_yourself_is_422(client, make, spelling):
    survivor = make.survivor()
    body = {"partner_id": spelling(survivor["id"]), "offer": {"water": 1}, "request": {"ammunition": 4}}
    problem = assert_problem(client.post(URL, json=body, headers=survivor["owner"]["headers"]), 422)
    assert problem["errors"] == {"partner_id": ["Cannot trade with yourself."]}


@pytest.mark.parametrize(
    ("offer", "asked"),
    [
        ({"water": 1}, {"ammunition": 3}),
        ({"water": 1}, {"ammunition": 5}),
        ({"food": 1}, {"medication": 1}),
        ({"water": 1, "food": 1}, {"ammunition": 6}),
    ],
)
def test_propose_trade_with_unequal_points_is_422(make, offer, asked):
    proposer, partner = make.survivor(), make.survivor()
    problem = assert_problem(make.propose(proposer, partner, offer, asked), 422)
    assert list(problem["errors"]) == ["request"]


@pytest.mark.parametrize(
    ("offer", "asked"),
    [
        ({"water": 1}, {"ammunition": 4}),
        ({"food": 2}, {"medication": 3}),
        ({"medication": 1, "ammunition": 1}, {"food": 1}),
        ({"water": 1, "food": 1, "medication": 1, "ammunition": 1}, {"ammunition": 10}),
    ],
)
def test_propose_trade_with_equal_points_is_201(make, offer, asked):
    proposer, partner = make.survivor(), make.survivor()
    assert make.propose(proposer, partner, offer, asked).status_code == 201


def test_propose_trade_with_unknown_partner_is_404(make):
    proposer = make.survivor()
    assert_problem(make.propose(proposer, {"id": random_uuid()}, {"water": 1}, {"ammunition": 4}), 404)


@pytest.mark.parametrize("infected", ["proposer", "partner"])
def test_propose_trade_with_infected_party_is_403(client, make, infected):
    parties = {"proposer": make.survivor(), "partner": make.survivor()}
    make.infect(parties[infected])
    response = make.propose(parties["proposer"], parties["partner"], {"water": 1}, {"ammunition": 4})
    assert_problem(response, 403)
    assert client.get(URL, headers=parties["proposer"]["owner"]["headers"]).get_json()["total"] == 0


def test_propose_trade_offering_items_not_held_is_422(make):
    proposer, partner = make.survivor(), make.survivor()
    response = make.propose(proposer, partner, {"water": 4, "food": 3, "medication": 1}, {"ammunition": 27})
    problem = assert_problem(response, 422)
    assert set(problem["errors"]) == {"offer.water", "offer.food"}
    assert problem["errors"]["offer.water"] == ["You hold 3."]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"offer": {}}, "offer"),
        ({"request": {}}, "request"),
        ({"offer": {"water": 0}}, "offer.water"),
        ({"offer": {"water": 1001}}, "offer.water"),
        ({"offer": {"water": -1}}, "offer.water"),
        ({"offer": {"water": "1"}}, "offer.water"),
        ({"offer": {"water": 1.5}}, "offer.water"),
        ({"offer": {"water": None}}, "offer.water"),
        ({"offer": {"water": True}}, "offer.water"),
        ({"request": {"ammunition": 0}}, "request.ammunition"),
        ({"request": {"ammunition": 1001}}, "request.ammunition"),
        ({"request": {"gold": 4}}, "request.gold"),
        ({"offer": {"water": 1, "gold": 1}}, "offer.gold"),
        ({"offer": [{"water": 1}]}, "offer"),
        ({"offer": "water"}, "offer"),
        ({"offer": None}, "offer"),
        ({"note": "fair deal"}, "note"),
        ({"proposer_id": "self"}, "proposer_id"),
        ({"status": "completed"}, "status"),
        ({"partner_id": "not-a-uuid"}, "partner_id"),
        ({"partner_id": 5}, "partner_id"),
        ({"partner_id": None}, "partner_id"),
    ],
)
def test_propose_trade_invalid_body_is_422(client, make, change, path):
    proposer, partner = make.survivor(), make.survivor()
    body = {"partner_id": partner["id"], "offer": {"water": 1}, "request": {"ammunition": 4}, **change}
    problem = assert_problem(client.post(URL, json=body, headers=proposer["owner"]["headers"]), 422)
    assert list(problem["errors"]) == [path]
    assert client.get(URL, headers=proposer["owner"]["headers"]).get_json()["total"] == 0


@pytest.mark.parametrize("field", ["partner_id", "offer", "request"])
def test_propose_trade_missing_field_is_422(client, make, field):
    proposer, partner = make.survivor(), make.survivor()
    body = {"partner_id": partner["id"], "offer": {"water": 1}, "request": {"ammunition": 4}}
    del body[field]
    problem = assert_problem(client.post(URL, json=body, headers=proposer["owner"]["headers"]), 422)
    assert list(problem["errors"]) == [field]


@pytest.mark.parametrize("quantity", [1, 1000])
def test_propose_trade_quantity_bounds_are_accepted(make, quantity):
    proposer = make.survivor(inventory={"ammunition": 1000})
    partner = make.survivor()
    created = make.trade(proposer, partner, {"ammunition": quantity}, {"ammunition": quantity})
    assert created["offer"] == created["request"] == {"ammunition": quantity}


def test_propose_trade_without_token_is_401(client, make):
    partner = make.survivor()
    body = {"partner_id": partner["id"], "offer": {"water": 1}, "request": {"ammunition": 4}}
    assert_problem(client.post(URL, json=body), 401)


def test_propose_trade_without_json_content_type_is_415(client, make):
    proposer = make.survivor()
    response = client.post(URL, data="{}", content_type="text/plain", headers=proposer["owner"]["headers"])
    assert_problem(response, 415)


# --- propose: which rule wins when two clash ---------------------------------------------------


def test_propose_trade_without_profile_and_with_unequal_points_is_409(client, make):
    account = make.account("survivor")
    body = {"partner_id": random_uuid(), "offer": {"water": 1}, "request": {"ammunition": 1}}
    assert_problem(
        client.post(URL, json=body, headers=account["headers"]),
        409,
        detail="Register your survivor profile before trading.",
    )


def test_propose_trade_with_yourself_and_unequal_points_is_422_on_partner(make):
    survivor = make.survivor()
    problem = assert_problem(make.propose(survivor, survivor, {"water": 1}, {"ammunition": 1}), 422)
    assert list(problem["errors"]) == ["partner_id"]


def test_propose_trade_with_unequal_points_to_unknown_partner_is_422(make):
    proposer = make.survivor()
    problem = assert_problem(make.propose(proposer, {"id": random_uuid()}, {"water": 1}, {"food": 1}), 422)
    assert list(problem["errors"]) == ["request"]


def test_propose_trade_by_infected_proposer_to_unknown_partner_is_404(make):
    proposer = make.survivor()
    make.infect(proposer)
    assert_problem(make.propose(proposer, {"id": random_uuid()}, {"water": 1}, {"ammunition": 4}), 404)


def test_propose_trade_to_infected_partner_offering_items_not_held_is_403(make):
    proposer, partner = make.survivor(), make.survivor()
    make.infect(partner)
    assert_problem(make.propose(proposer, partner, {"water": 5}, {"ammunition": 20}), 403)


# --- accept ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["partner", "admin"])
def test_accept_trade_completes_and_moves_both_sides(deal, who):
    response = deal.act("accept", who)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == TRADE_KEYS
    assert {key: body[key] for key in ("id", "status", "offer", "request", "created_at")} == {
        **{key: deal.trade[key] for key in ("id", "offer", "request", "created_at")},
        "status": "completed",
    }
    assert RFC3339_UTC.match(body["updated_at"]) and body["updated_at"] >= deal.trade["updated_at"]
    assert response.headers["Cache-Control"] == "no-store"
    assert deal.read() == body
    assert deal.holdings() == AFTER_DEFAULT_TRADE


def test_accept_trade_with_several_items_on_each_side(client, make, admin):
    proposer, partner = make.survivor(), make.survivor()
    offer, request = {"water": 2, "medication": 1}, {"food": 2, "ammunition": 4}
    trade = make.trade(proposer, partner, offer, request)
    settled(client, partner, trade)
    assert holdings(client, admin, proposer["id"]) == {
        "water": 1,
        "food": 4,
        "medication": 0,
        "ammunition": 14,
    }
    assert holdings(client, admin, partner["id"]) == {"water": 5, "food": 0, "medication": 2, "ammunition": 6}


def test_accept_trade_of_the_same_item_on_both_sides_changes_nothing(client, make, admin):
    proposer, partner = make.survivor(), make.survivor()
    trade = make.trade(proposer, partner, {"ammunition": 10}, {"ammunition": 10})
    assert settled(client, partner, trade)["status"] == "completed"
    assert (
        holdings(client, admin, proposer["id"]) == holdings(client, admin, partner["id"]) == DEFAULT_HOLDINGS
    )


@pytest.mark.parametrize("kwargs", [{}, {"json": {}}], ids=["no body", "empty object"])
@pytest.mark.parametrize("action", ACTIONS)
def test_settle_trade_without_body_or_with_empty_object_is_200(deal, action, kwargs):
    response = deal.act(action, ALLOWED[action], **kwargs)
    assert response.status_code == 200
    assert response.get_json()["status"] == OUTCOMES[action]


@pytest.mark.parametrize("body", [{"reason": "no"}, {"status": "completed"}, {"trade_id": "x"}])
@pytest.mark.parametrize("action", ACTIONS)
def test_settle_trade_with_unknown_field_is_422(deal, action, body):
    problem = assert_problem(deal.act(action, ALLOWED[action], json=body), 422)
    assert list(problem["errors"]) == list(body)
    deal.assert_untouched()


@pytest.mark.parametrize("action", ACTIONS)
def test_settle_trade_with_body_that_is_not_an_object_is_422(deal, action):
    assert_problem(deal.act(action, ALLOWED[action], json=["accept"]), 422)
    deal.assert_untouched()


@pytest.mark.parametrize("action", ACTIONS)
def test_settle_trade_by_party_in_the_wrong_role_is_403(deal, action):
    problem = assert_problem(deal.act(action, REFUSED[action]), 403)
    assert problem["detail"] == f"Only the trade's {ALLOWED[action]} (or an admin) may do this."
    deal.assert_untouched()


@pytest.mark.parametrize("action", ACTIONS)
def test_settle_trade_by_party_demoted_to_observer_is_403(deal, action):
    # Observers are read-only, even one still linked to the profile that is party to the trade.
    who = ALLOWED[action]
    demoted = deal.client.patch(
        f"/api/v1/accounts/{getattr(deal, who)['owner']['id']}",
        json={"role": "observer"},
        headers=deal.admin["headers"],
    )
    assert demoted.status_code == 200
    assert_problem(deal.act(action, who), 403)
    deal.assert_untouched()


@pytest.mark.parametrize("kind", STRANGERS)
@pytest.mark.parametrize("action", ACTIONS)
def test_settle_trade_by_stranger_is_404(deal, make, action, kind):
    response = deal.client.post(trade_url(deal.trade["id"], action), headers=stranger_headers(make, kind))
    assert_problem(response, 404)
    deal.assert_untouched()


@pytest.mark.parametrize("who", ["partner", "admin"])
@pytest.mark.parametrize("action", ACTIONS)
def test_settle_unknown_trade_is_404(deal, action, who):
    assert_problem(deal.client.post(trade_url(random_uuid(), action), headers=deal.headers(who)), 404)
    deal.assert_untouched()


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
@pytest.mark.parametrize("action", ACTIONS)
def test_settle_malformed_trade_id_is_404(deal, action, bad_id):
    assert_problem(deal.client.post(trade_url(bad_id, action), headers=deal.admin["headers"]), 404)


@pytest.mark.parametrize("action", ACTIONS)
def test_settle_trade_without_token_is_401(deal, action):
    assert_problem(deal.client.post(trade_url(deal.trade["id"], action)), 401)
    deal.assert_untouched()


@pytest.mark.parametrize("second", ACTIONS)
@pytest.mark.parametrize("first", ACTIONS)
def test_settle_trade_that_is_not_pending_is_409(deal, first, second):
    assert deal.act(first, ALLOWED[first]).status_code == 200
    after_first = deal.holdings()
    for who in (ALLOWED[second], "admin"):
        problem = assert_problem(deal.act(second, who), 409)
        assert OUTCOMES[first] in problem["detail"]
    assert deal.read()["status"] == OUTCOMES[first]
    assert deal.holdings() == after_first  # a completed trade never moves items twice


def test_settle_trade_not_pending_by_wrong_party_is_403(deal):
    # The role is checked before the status.
    assert deal.act("reject", "partner").status_code == 200
    assert_problem(deal.act("accept", "proposer"), 403)


@pytest.mark.parametrize("position", ["first", "second"])
@pytest.mark.parametrize("cause", ["no longer holds", "is infected"])
@pytest.mark.parametrize("party", ["proposer", "partner"])
def test_accept_trade_when_a_party_cannot_give_is_409_and_nothing_moves(
    client, make, admin, party, cause, position
):
    # The parties are locked and moved in ascending id order: `position` makes the failing party
    # the first one moved (nothing moved yet) or the second (the first's move must roll back).
    low, high = sorted((make.survivor(), make.survivor()), key=lambda s: uuid.UUID(s["id"]))
    failing, other = (low, high) if position == "first" else (high, low)
    parties = {party: failing, ("partner" if party == "proposer" else "proposer"): other}
    offer, request = {"water": 1, "medication": 1}, {"food": 2}
    trade = make.trade(parties["proposer"], parties["partner"], offer, request)
    if cause == "is infected":
        make.infect(failing)
    else:
        item = "water" if party == "proposer" else "food"
        give_away(make, failing, item, DEFAULT_HOLDINGS[item])
    before = {s["id"]: holdings(client, admin, s["id"]) for s in (low, high)}
    for headers in (parties["partner"]["owner"]["headers"], admin["headers"]):
        problem = assert_problem(client.post(trade_url(trade["id"], "accept"), headers=headers), 409)
        assert problem["detail"].startswith(f"The {party} {cause}")
    assert {s["id"]: holdings(client, admin, s["id"]) for s in (low, high)} == before
    assert client.get(trade_url(trade["id"]), headers=admin["headers"]).get_json() == trade
    assert [event.event for event in events_of(make.app, trade["id"])] == ["proposed"]


def test_accept_trade_after_the_proposer_traded_its_offer_away_is_409(client, make, admin):
    proposer, first, second = make.survivor(), make.survivor(), make.survivor()
    everything = {"water": 3}
    to_first = make.trade(proposer, first, everything, {"ammunition": 12})
    to_second = make.trade(proposer, second, everything, {"ammunition": 7, "food": 1, "medication": 1})
    settled(client, second, to_second)
    assert_problem(settle(client, first, to_first), 409)
    assert holdings(client, admin, first["id"]) == DEFAULT_HOLDINGS
    assert holdings(client, admin, proposer["id"])["water"] == 0
    assert client.get(trade_url(to_first["id"]), headers=admin["headers"]).get_json()["status"] == "pending"


def test_accept_trade_the_partner_never_held_is_409_until_it_does(client, make, admin):
    proposer, partner = make.survivor(), make.survivor(inventory={"water": 1})
    trade = make.trade(proposer, partner, {"water": 1}, {"ammunition": 4})
    assert_problem(settle(client, partner, trade), 409)
    # The partner receives ammunition in another trade; now it holds its side and can accept.
    supplier = make.survivor()
    supply = make.trade(supplier, partner, {"ammunition": 4}, {"water": 1})
    settled(client, partner, supply)
    settled(client, partner, trade)
    assert holdings(client, admin, partner["id"]) == {"water": 1, "food": 0, "medication": 0, "ammunition": 0}


@pytest.mark.parametrize("action", ["reject", "cancel"])
def test_reject_or_cancel_trade_with_an_infected_party_is_200(deal, make, action):
    # Only acceptance moves items: an infected party's pending trades can still be closed.
    make.infect(deal.proposer)
    make.infect(deal.partner)
    assert deal.act(action, ALLOWED[action]).get_json()["status"] == OUTCOMES[action]


# --- reject and cancel -----------------------------------------------------------------------


@pytest.mark.parametrize("action", ["reject", "cancel"])
@pytest.mark.parametrize("by_admin", [False, True], ids=["party", "admin"])
def test_reject_or_cancel_trade_closes_it_and_moves_nothing(deal, action, by_admin):
    response = deal.act(action, "admin" if by_admin else ALLOWED[action])
    assert response.status_code == 200
    body = response.get_json()
    assert body == {**deal.trade, "status": OUTCOMES[action], "updated_at": body["updated_at"]}
    assert deal.read() == body
    assert deal.holdings() == (DEFAULT_HOLDINGS, DEFAULT_HOLDINGS)


# --- read ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["proposer", "partner", "admin"])
def test_read_trade_by_party_or_admin_is_200(deal, who):
    response = deal.client.get(trade_url(deal.trade["id"]), headers=deal.headers(who))
    assert response.status_code == 200
    assert response.get_json() == deal.trade
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("kind", STRANGERS)
def test_read_trade_by_anyone_else_is_404(deal, make, kind):
    headers = stranger_headers(make, kind)
    response = deal.client.get(trade_url(deal.trade["id"]), headers=headers)
    problem = assert_problem(response, 404)
    assert response.headers["Cache-Control"] == "no-store"
    # Told exactly what a trade that does not exist tells.
    unknown = assert_problem(deal.client.get(trade_url(random_uuid()), headers=headers), 404)
    volatile = {"instance": None, "request_id": None}
    assert {**problem, **volatile} == {**unknown, **volatile}


@pytest.mark.parametrize("trade_id", [random_uuid(), *MALFORMED_IDS])
def test_read_unknown_or_malformed_trade_is_404(client, admin, trade_id):
    assert_problem(client.get(trade_url(trade_id), headers=admin["headers"]), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", ""),
        ("PUT", ""),
        ("PATCH", ""),
        ("GET", "/accept"),
        ("PUT", "/cancel"),
        ("DELETE", "/reject"),
    ],
)
def test_trade_route_with_wrong_method_is_405(deal, method, path):
    url = trade_url(deal.trade["id"]) + path
    assert_problem(deal.client.open(url, method=method, headers=deal.headers("admin")), 405)
    deal.assert_untouched()


def test_read_trade_without_token_is_401(deal):
    assert_problem(deal.client.get(trade_url(deal.trade["id"])), 401)


# --- list ------------------------------------------------------------------------------------


def listed(client: Any, headers: dict[str, str], query: str = "") -> list[str]:
    response = client.get(f"{URL}?{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["total"] == len(body["items"])
    return [item["id"] for item in body["items"]]


def test_list_trades_shows_the_trades_you_are_party_to(client, make, admin):
    a, b, c = make.survivor(), make.survivor(), make.survivor()
    ab, ca, bc = make.trade(a, b), make.trade(c, a), make.trade(b, c)
    assert listed(client, a["owner"]["headers"]) == [ab["id"], ca["id"]]
    assert listed(client, b["owner"]["headers"]) == [ab["id"], bc["id"]]
    assert listed(client, c["owner"]["headers"]) == [ca["id"], bc["id"]]
    assert listed(client, admin["headers"]) == [ab["id"], ca["id"], bc["id"]]
    body = client.get(URL, headers=a["owner"]["headers"]).get_json()
    assert body["items"][0] == ab
    assert (body["page"], body["page_size"], body["total"]) == (1, 20, 2)


@pytest.mark.parametrize("kind", ["observer", "no-profile"])
def test_list_trades_without_a_profile_is_an_empty_page(deal, make, kind):
    response = deal.client.get(URL, headers=stranger_headers(make, kind))
    assert response.status_code == 200
    assert response.get_json() == {"items": [], "page": 1, "page_size": 20, "total": 0}
    assert "Link" not in response.headers


def test_list_trades_empty_for_a_survivor_in_no_trade(deal, make):
    assert listed(deal.client, stranger_headers(make, "survivor")) == []


@pytest.mark.parametrize("status", ["pending", "completed", "rejected", "cancelled"])
def test_list_trades_filters_by_status(client, make, admin, status):
    proposer, partner = make.survivor(), make.survivor()
    trades = {}
    for action in (None, *ACTIONS):
        trade = make.trade(proposer, partner)
        if action:
            settled(client, proposer if action == "cancel" else partner, trade, action)
        trades[OUTCOMES.get(action or "", "pending")] = trade["id"]
    for headers in (proposer["owner"]["headers"], partner["owner"]["headers"], admin["headers"]):
        response = client.get(f"{URL}?status={status}", headers=headers).get_json()
        assert [item["id"] for item in response["items"]] == [trades[status]]
        assert response["items"][0]["status"] == status
    assert len(listed(client, admin["headers"])) == 4


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("status=done", "status"),
        ("status=PENDING", "status"),
        ("status=", "status"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
    ],
)
def test_list_trades_invalid_query_value_is_422(client, make, query, path):
    survivor = make.survivor()
    problem = assert_problem(client.get(f"{URL}?{query}", headers=survivor["owner"]["headers"]), 422)
    assert list(problem["errors"]) == [path]


def test_list_trades_pages_in_a_stable_order_with_links(client, make):
    proposer, partner = make.survivor(), make.survivor()
    created = [make.trade(proposer, partner)["id"] for _ in range(5)]
    headers = partner["owner"]["headers"]
    seen, links = [], []
    for page in (1, 2, 3):
        response = client.get(f"{URL}?page={page}&page_size=2", headers=headers)
        body = response.get_json()
        assert (body["page"], body["page_size"], body["total"]) == (page, 2, 5)
        seen += [item["id"] for item in body["items"]]
        links.append(parse_links(response.headers.get("Link")))
    assert seen == created
    assert [cursors_of(page_links) for page_links in links] == [
        {"next": ("after", created[1])},
        {"next": ("after", created[3])},
        {"prev": ("before", created[4])},
    ]
    assert links == [
        {"next": {"page": "2", "page_size": "2"}},
        {"prev": {"page": "1", "page_size": "2"}, "next": {"page": "3", "page_size": "2"}},
        {"prev": {"page": "2", "page_size": "2"}},
    ]
    past = client.get(f"{URL}?page=4&page_size=2", headers=headers).get_json()
    assert (past["items"], past["total"]) == ([], 5)


def test_list_trades_link_header_keeps_the_status_filter(client, make):
    proposer, partner = make.survivor(), make.survivor()
    for _ in range(3):
        make.trade(proposer, partner)
    response = client.get(f"{URL}?status=pending&page_size=2", headers=proposer["owner"]["headers"])
    links = parse_links(response.headers.get("Link"))
    assert list(cursors_of(links)) == ["next"]
    assert links == {"next": {"status": "pending", "page": "2", "page_size": "2"}}


def test_list_trades_without_token_is_401(client):
    assert_problem(client.get(URL), 401)


# --- the audit trail -------------------------------------------------------------------------


def test_accept_trade_records_proposed_and_completed_events(app, deal):
    assert deal.act("accept", "partner").status_code == 200
    events = events_of(app, deal.trade["id"])
    assert [event.event for event in events] == ["proposed", "completed"]
    assert [str(event.actor_account_id) for event in events] == [
        deal.proposer["owner"]["id"],
        deal.partner["owner"]["id"],
    ]
    for event in events:
        assert (str(event.proposer_id), str(event.partner_id)) == (deal.proposer["id"], deal.partner["id"])
        assert (event.offer, event.request) == ({"water": 1}, {"ammunition": 4})
        assert event.created_at.tzinfo is not None
    assert events[0].created_at <= events[1].created_at


@pytest.mark.parametrize("action", ACTIONS)
def test_settle_trade_by_admin_records_the_admin_as_actor(app, deal, action):
    assert deal.act(action, "admin").status_code == 200
    last = events_of(app, deal.trade["id"])[-1]
    assert (last.event, str(last.actor_account_id)) == (OUTCOMES[action], deal.admin["id"])


def test_refused_actions_record_no_event(app, deal, make):
    make.infect(deal.partner)
    assert_problem(deal.act("accept", "partner"), 409)
    assert_problem(deal.act("cancel", "partner"), 403)
    assert_problem(deal.act("accept", "partner", json={"x": 1}), 422)
    assert [event.event for event in events_of(app, deal.trade["id"])] == ["proposed"]


def test_refused_proposal_records_no_trade_nor_event(app, make):
    proposer, partner = make.survivor(), make.survivor()
    assert_problem(make.propose(proposer, partner, {"water": 9}, {"ammunition": 36}), 422)
    with app.app_context():
        assert db.session.scalars(select(TradeEvent)).all() == []


def test_trade_actions_write_audit_log_lines(deal, make, caplog):
    with caplog.at_level(logging.INFO, logger="resistance.audit"):
        second = make.trade(deal.proposer, deal.partner)
        assert deal.act("accept", "partner").status_code == 200
        assert_problem(deal.act("accept", "partner"), 409)
        assert deal.act("cancel", "admin", trade=second).status_code == 200
    lines = [
        (record.event, record.trade_id, record.account_id)
        for record in caplog.records
        if record.name == "resistance.audit" and getattr(record, "event", "").startswith("trade.")
    ]
    assert lines == [
        ("trade.proposed", second["id"], deal.proposer["owner"]["id"]),
        ("trade.completed", deal.trade["id"], deal.partner["owner"]["id"]),
        ("trade.cancelled", second["id"], deal.admin["id"]),
    ]


# --- caching and reports ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [RESOURCES, SURVIVORS, "/api/v1/reports/non-infected-survivors"])
def test_accept_trade_changes_the_etag_of_reports_and_lists(deal, observer, path):
    etag = deal.client.get(path, headers=observer["headers"]).headers["ETag"]
    assert deal.act("accept", "partner").status_code == 200
    after = deal.client.get(path, headers={**observer["headers"], "If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["ETag"] != etag


def test_accept_trade_leaves_the_averages_unchanged(deal, observer):
    # Trades move items between healthy survivors: the totals, hence the averages, stay the same.
    before = deal.client.get(RESOURCES, headers=observer["headers"]).get_json()
    assert deal.act("accept", "partner").status_code == 200
    assert deal.client.get(RESOURCES, headers=observer["headers"]).get_json() == before


@pytest.mark.parametrize("action", [None, "reject", "cancel"])
def test_propose_reject_or_cancel_leaves_the_resources_report_current(client, make, observer, action):
    proposer, partner = make.survivor(), make.survivor()
    etag = client.get(RESOURCES, headers=observer["headers"]).headers["ETag"]
    trade = make.trade(proposer, partner)
    if action:
        settled(client, partner if action == "reject" else proposer, trade, action)
    assert client.get(RESOURCES, headers={**observer["headers"], "If-None-Match": etag}).status_code == 304


def test_trade_before_infection_shows_in_the_resources_report(client, make, observer):
    healthy = make.survivor(inventory={"water": 2})
    doomed = make.survivor(inventory={"food": 4, "ammunition": 2})
    trade = make.trade(healthy, doomed, {"water": 2}, {"food": 2, "ammunition": 2})
    settled(client, doomed, trade)
    reporters = make.infect(doomed)  # three more healthy survivors with the default inventory
    body = client.get(RESOURCES, headers=observer["headers"]).get_json()
    assert body["points_lost"] == 4 * 2 + 3 * 2  # 2 water received, 2 food kept
    healthy_now = {"water": 0, "food": 2, "medication": 0, "ammunition": 2}
    holders = [healthy_now] + [DEFAULT_HOLDINGS] * len(reporters)
    assert body["average_per_survivor"] == {
        item: round(sum(h[item] for h in holders) / len(holders), 2) for item in ITEMS
    }


def test_accept_trade_changes_both_survivor_etags(deal):
    def etag(survivor: dict[str, Any]) -> str:
        return deal.client.get(f"{SURVIVORS}/{survivor['id']}", headers=deal.headers("admin")).headers["ETag"]

    before = {who: etag(getattr(deal, who)) for who in ("proposer", "partner")}
    assert deal.act("accept", "partner").status_code == 200
    for who, old in before.items():
        survivor = getattr(deal, who)
        path = f"{SURVIVORS}/{survivor['id']}"
        current = deal.client.get(path, headers={**deal.headers(who), "If-None-Match": old})
        assert current.status_code == 200
        assert current.headers["ETag"] != old
        move = {"latitude": 1, "longitude": 2}
        stale = deal.client.put(f"{path}/location", json=move, headers={**deal.headers(who), "If-Match": old})
        assert_problem(stale, 412)
        assert deal.client.get(path, headers=deal.headers(who)).get_json()["location"] == survivor["location"]


def test_accept_trade_updates_the_survivors_updated_at(deal):
    assert deal.act("accept", "partner").status_code == 200
    for survivor in (deal.proposer, deal.partner):
        stored = deal.client.get(f"{SURVIVORS}/{survivor['id']}", headers=deal.headers("admin")).get_json()
        assert stored["created_at"] == survivor["created_at"]
        assert stored["updated_at"] >= survivor["updated_at"]


# --- invariants ------------------------------------------------------------------------------


def totals(client: Any, admin: dict[str, Any], survivors: list[dict[str, Any]]) -> dict[str, int]:
    counts = [holdings(client, admin, survivor["id"]) for survivor in survivors]
    return {item: sum(count[item] for count in counts) for item in ITEMS}


def worths(client: Any, admin: dict[str, Any], survivors: list[dict[str, Any]]) -> list[int]:
    """The points each survivor's inventory is worth."""
    url = SURVIVORS + "/{}/inventory"
    return [client.get(url.format(s["id"]), headers=admin["headers"]).get_json()["points"] for s in survivors]


def test_trades_conserve_every_item_over_all_survivors(client, make, admin):
    a = make.survivor(inventory={"water": 5, "food": 1})
    b = make.survivor(inventory={"food": 6, "medication": 4})
    c = make.survivor(inventory={"ammunition": 30, "medication": 1})
    everyone = [a, b, c]
    start = totals(client, admin, everyone)
    points = worths(client, admin, everyone)
    steps = [
        (a, b, {"water": 3}, {"food": 4}, 200),
        (b, c, {"water": 2, "food": 1}, {"ammunition": 11}, 200),
        (c, a, {"ammunition": 10}, {"food": 2, "medication": 2}, 409),  # a holds no medication
        (c, a, {"ammunition": 8}, {"water": 2}, 200),
        (a, b, {"food": 5}, {"ammunition": 11, "medication": 2}, 200),
    ]
    for proposer, partner, offer, request, status in steps:
        trade = make.trade(proposer, partner, offer, request)
        response = settle(client, partner, trade)
        assert response.status_code == status, response.get_json()
        assert totals(client, admin, everyone) == start
    assert holdings(client, admin, a["id"]) == {"water": 0, "food": 0, "medication": 2, "ammunition": 19}
    assert worths(client, admin, everyone) == points  # every trade is worth the same on both sides


def run_at_once(app: Any, calls: list[tuple[str, dict[str, str]]]) -> list[int]:
    """POST every (url, headers) from its own thread, released together; statuses in order."""
    barrier = threading.Barrier(len(calls))
    statuses: list[int] = [0] * len(calls)

    def post(index: int, url: str, headers: dict[str, str]) -> None:
        client = app.test_client()
        barrier.wait()
        statuses[index] = client.post(url, headers=headers).status_code

    threads = [threading.Thread(target=post, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def test_concurrent_accepts_complete_a_trade_once(app, deal):
    accept = trade_url(deal.trade["id"], "accept")
    statuses = run_at_once(app, [(accept, deal.headers("partner")), (accept, deal.headers("admin"))] * 3)
    assert Counter(statuses) == {200: 1, 409: 5}
    assert deal.holdings() == AFTER_DEFAULT_TRADE
    assert [event.event for event in events_of(app, deal.trade["id"])] == ["proposed", "completed"]


def test_concurrent_accepts_of_one_offer_never_overdraw(app, client, make, admin):
    proposer = make.survivor()
    partners = [make.survivor() for _ in range(4)]
    trades = [make.trade(proposer, partner, {"water": 2}, {"ammunition": 8}) for partner in partners]
    calls = [
        (trade_url(trade["id"], "accept"), partner["owner"]["headers"])
        for trade, partner in zip(trades, partners, strict=True)
    ]
    statuses = run_at_once(app, calls)
    assert Counter(statuses) == {200: 1, 409: 3}  # 3 water cover one trade of 2
    assert holdings(client, admin, proposer["id"])["water"] == 1
    assert totals(client, admin, [proposer, *partners]) == {
        item: 5 * count for item, count in DEFAULT_HOLDINGS.items()
    }


def test_concurrent_accept_and_cancel_settle_a_trade_one_way(app, deal):
    accept, cancel = trade_url(deal.trade["id"], "accept"), trade_url(deal.trade["id"], "cancel")
    statuses = run_at_once(app, [(accept, deal.headers("partner")), (cancel, deal.headers("proposer"))])
    assert sorted(statuses) == [200, 409]
    outcome = "completed" if statuses[0] == 200 else "cancelled"
    assert deal.read()["status"] == outcome
    expected = AFTER_DEFAULT_TRADE if outcome == "completed" else (DEFAULT_HOLDINGS, DEFAULT_HOLDINGS)
    assert deal.holdings() == expected


def test_concurrent_crossing_trades_neither_deadlock_nor_mint(app, client, make, admin):
    # Trades in both directions between the same survivors, accepted at once: the parties are
    # locked in one order, so every accept ends in 200 or 409 (never a 500 from a deadlock).
    trio = [make.survivor(), make.survivor(), make.survivor()]
    calls = []
    for proposer, partner in [(0, 1), (1, 0), (1, 2), (2, 1), (0, 2), (2, 0)] * 2:
        trade = make.trade(trio[proposer], trio[partner])
        calls.append((trade_url(trade["id"], "accept"), trio[partner]["owner"]["headers"]))
    statuses = run_at_once(app, calls)
    assert set(statuses) <= {200, 409}
    assert statuses.count(200) >= 1
    assert totals(client, admin, trio) == {item: 3 * count for item, count in DEFAULT_HOLDINGS.items()}
    assert all(min(holdings(client, admin, s["id"]).values()) >= 0 for s in trio)
