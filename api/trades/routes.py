"""/api/v1/trades: propose, list, read, accept, reject, cancel."""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_jwt_extended import current_user

from api.openapi import Blueprint, created_links
from api.pagination import Window, page_response
from api.schemas import NoBodySchema
from api.trades import services
from api.trades.models import Status
from api.trades.schemas import (
    TradeCreateSchema,
    TradePageSchema,
    TradeQuerySchema,
    TradeSchema,
)

blp = Blueprint("trades", __name__, url_prefix="/api/v1/trades", description="Trades between survivors.")


# What the partner (and a stateful fuzzer) can do next with the trade just proposed.
CREATED_LINKS = created_links(
    "trade_id",
    {
        "GetTrade": ("getTradeById", "Read the new trade."),
        "AcceptTrade": ("postTradeAccept", "Accept the new trade (its partner or an admin)."),
        "RejectTrade": ("postTradeReject", "Reject the new trade (its partner or an admin)."),
        "CancelTrade": ("postTradeCancel", "Cancel the new trade (its proposer or an admin)."),
    },
)


@blp.route("")
class Trades(MethodView):
    @blp.arguments(TradeQuerySchema, location="query")
    @blp.response(200, TradePageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List the trades you are party to (admins: all), optionally by status.

        Any account; an account without a survivor profile sees an empty page (admins see every
        trade). Oldest first.
        """
        window = Window.of(query)
        items, total = services.list_trades(window, current_user, status=query.get("status"))
        return page_response(window, items, total)

    @blp.arguments(TradeCreateSchema)
    @blp.response(201, TradeSchema, headers={"Location": "Location"})
    @blp.alt_response(409, "Conflict")
    @blp.doc(responses={201: {"links": CREATED_LINKS}})
    def post(self, body: dict[str, Any]) -> Any:
        """Propose a trade to another survivor (your survivor offers, the partner gives the request).

        Survivor accounts only (others 403); 409 without a survivor profile. Each side names at
        least one item, 1-1000 of each; both sides must be worth the same points (water 4, food
        3, medication 2, ammunition 1) and you must hold what you offer (422). No trade with
        yourself (422); an unknown partner is 404; an infected party is 403.
        """
        trade = services.propose(current_user, body)
        return trade, {"Location": url_for("trades.TradeById", trade_id=trade.id)}


@blp.route("/<uuid:trade_id>")
class TradeById(MethodView):
    @blp.response(200, TradeSchema)
    def get(self, trade_id: uuid.UUID) -> Any:
        """Read one trade (its parties and admins).

        Anyone else gets 404, as if the trade did not exist.
        """
        return services.get_trade(current_user, trade_id)


@blp.route("/<uuid:trade_id>/accept")
class TradeAccept(MethodView):
    @blp.arguments(NoBodySchema, required=False)
    @blp.response(200, TradeSchema)
    @blp.alt_response(409, "Conflict")
    def post(self, _body: dict[str, Any], trade_id: uuid.UUID) -> Any:
        """Accept a pending trade: both sides change hands in one transaction.

        The partner or an admin; the proposer gets 403 and anyone else 404. If either party is
        now infected or no longer holds its side, it is 409: nothing moves and the trade stays
        pending. A trade that is no longer pending is 409. Takes no body, or an empty JSON object.
        """
        return services.settle(current_user, trade_id, Status.COMPLETED)


@blp.route("/<uuid:trade_id>/reject")
class TradeReject(MethodView):
    @blp.arguments(NoBodySchema, required=False)
    @blp.response(200, TradeSchema)
    @blp.alt_response(409, "Conflict")
    def post(self, _body: dict[str, Any], trade_id: uuid.UUID) -> Any:
        """Reject a pending trade.

        The partner or an admin; the proposer gets 403 and anyone else 404. A trade that is no
        longer pending is 409. Takes no body, or an empty JSON object.
        """
        return services.settle(current_user, trade_id, Status.REJECTED)


@blp.route("/<uuid:trade_id>/cancel")
class TradeCancel(MethodView):
    @blp.arguments(NoBodySchema, required=False)
    @blp.response(200, TradeSchema)
    @blp.alt_response(409, "Conflict")
    def post(self, _body: dict[str, Any], trade_id: uuid.UUID) -> Any:
        """Cancel a pending trade you proposed.

        The proposer or an admin; the partner gets 403 and anyone else 404. A trade that is no
        longer pending is 409. Takes no body, or an empty JSON object.
        """
        return services.settle(current_user, trade_id, Status.CANCELLED)
