"""Trade rules without HTTP: points, the columns a trade is stored in, fairness, the side schema."""

from __future__ import annotations

import marshmallow as ma
import pytest

from api.survivors.models import ITEMS, POINTS, points_of
from api.trades.models import MAX_QUANTITY, Status, Trade
from api.trades.schemas import STATUSES, TradeCreateSchema, TradeItemsSchema, TradeQuerySchema
from api.trades.services import _fairness_errors


@pytest.mark.parametrize(
    ("counts", "points"),
    [
        ({}, 0),
        ({"water": 1}, 4),
        ({"food": 1}, 3),
        ({"medication": 1}, 2),
        ({"ammunition": 1}, 1),
        ({"water": 3, "food": 2, "medication": 1, "ammunition": 10}, 30),
        ({"water": 0, "food": 0}, 0),
        (dict.fromkeys(ITEMS, MAX_QUANTITY), 10 * MAX_QUANTITY),
    ],
)
def test_points_of_weighs_each_item(counts, points):
    assert points_of(counts) == points


def test_points_of_uses_the_contract_weights():
    assert POINTS == {"water": 4, "food": 3, "medication": 2, "ammunition": 1}
    assert set(POINTS) == set(ITEMS)


def test_trade_columns_fill_every_item_and_sides_drop_zeros():
    columns = Trade.columns({"water": 1}, {"food": 2, "ammunition": 1})
    assert columns == {
        "offer_water": 1,
        "offer_food": 0,
        "offer_medication": 0,
        "offer_ammunition": 0,
        "request_water": 0,
        "request_food": 2,
        "request_medication": 0,
        "request_ammunition": 1,
    }
    trade = Trade(**columns)
    assert (trade.offer, trade.request) == ({"water": 1}, {"food": 2, "ammunition": 1})


def test_fairness_errors_empty_when_both_sides_are_worth_the_same():
    assert _fairness_errors({"water": 1}, {"ammunition": 4}) == {}
    assert _fairness_errors({"food": 2}, {"medication": 3}) == {}


def test_fairness_errors_name_both_worths_on_request():
    assert _fairness_errors({"water": 1}, {"food": 1}) == {
        "request": ["Worth 3 points, but the offer is worth 4: both sides must be equal."]
    }


def test_trade_statuses_are_the_contract_list():
    assert STATUSES == ["pending", "completed", "rejected", "cancelled"]
    assert [Status(value).value for value in STATUSES] == STATUSES


@pytest.mark.parametrize(
    "side",
    [
        {},
        {"water": 0},
        {"water": MAX_QUANTITY + 1},
        {"water": "1"},
        {"water": 1.0},
        {"water": True},
        {"gold": 1},
    ],
)
def test_trade_items_schema_refuses_invalid_sides(side):
    with pytest.raises(ma.ValidationError):
        TradeItemsSchema().load(side)


def test_trade_items_schema_refuses_an_empty_side_with_a_clear_message():
    with pytest.raises(ma.ValidationError) as raised:
        TradeItemsSchema().load({})
    assert raised.value.messages == {"_schema": ["Name at least one item."]}


def test_trade_create_schema_loads_the_partner_as_a_uuid():
    partner_id = "7f1c6a58-0d2b-4f43-8a3e-2b7d0c8e9a11"
    loaded = TradeCreateSchema().load(
        {"partner_id": partner_id.upper(), "offer": {"water": 1}, "request": {"ammunition": MAX_QUANTITY}}
    )
    assert str(loaded["partner_id"]) == partner_id
    assert (loaded["offer"], loaded["request"]) == ({"water": 1}, {"ammunition": MAX_QUANTITY})


def test_trade_query_schema_defaults_and_refuses_unknown_status():
    assert TradeQuerySchema().load({}) == {"page": 1, "page_size": 20}
    assert TradeQuerySchema().load({"status": "rejected"})["status"] == "rejected"
    with pytest.raises(ma.ValidationError):
        TradeQuerySchema().load({"status": "Pending"})
