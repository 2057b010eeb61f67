"""/api/v1/survivors: register, list, read, move, inventory."""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_jwt_extended import current_user

from api.caching import if_match_allows, versioned, with_etag
from api.openapi import Blueprint, created_links
from api.pagination import Window, page_response
from api.survivors import services
from api.survivors.schemas import (
    InventorySchema,
    LocationSchema,
    SurvivorCreateSchema,
    SurvivorPageSchema,
    SurvivorQuerySchema,
    SurvivorSchema,
)

blp = Blueprint(
    "survivors", __name__, url_prefix="/api/v1/survivors", description="Survivors and inventories."
)


# What a client (and a stateful fuzzer) can do next with the survivor just made.
CREATED_LINKS = created_links(
    "survivor_id",
    {
        "GetSurvivor": ("getSurvivorById", "Read the new survivor."),
        "MoveSurvivor": ("putSurvivorLocation", "Record the new survivor's location."),
        "GetInventory": ("getSurvivorInventory", "Read the new survivor's inventory."),
        "ReportInfection": ("postInfectionReports", "Report the new survivor as infected."),
    },
)


@blp.route("")
class Survivors(MethodView):
    @blp.arguments(SurvivorQuerySchema, location="query")
    @versioned
    @blp.response(200, SurvivorPageSchema)
    @blp.alt_response(304, description="Not modified: the If-None-Match ETag is current.", success=True)
    def get(self, query: dict[str, Any]) -> Any:
        """List survivors, optionally only the infected or non-infected.

        Any account. A page in a stable order with a strong ETag; a current If-None-Match is
        answered 304 with no body.
        """
        window = Window.of(query)
        items, total = services.list_survivors(window, infected=query.get("infected"))
        return page_response(window, items, total)

    @blp.arguments(SurvivorCreateSchema)
    @blp.response(201, SurvivorSchema, headers={"Location": "Location", "ETag": "ETag"})
    @blp.alt_response(409, "Conflict")
    @blp.doc(responses={201: {"links": CREATED_LINKS}})
    def post(self, body: dict[str, Any]) -> Any:
        """Register a survivor (a survivor account: itself, once; an admin: an unlinked profile).

        A survivor account's second profile is 409; observers get 403. The 201 carries the new
        survivor's Location and ETag. Inventory is set here only: later it changes by trades.
        """
        survivor = services.create_survivor(current_user, body)
        location = url_for("survivors.SurvivorById", survivor_id=survivor.id)
        return survivor, {"Location": location, "ETag": survivor.etag}


@blp.route("/<uuid:survivor_id>")
class SurvivorById(MethodView):
    @blp.response(200, SurvivorSchema)
    @blp.alt_response(304, description="Not modified: the If-None-Match ETag is current.", success=True)
    def get(self, survivor_id: uuid.UUID) -> Any:
        """Read one survivor.

        Any account. Carries a strong ETag; a current If-None-Match is answered 304 with no
        body. A malformed id is 404.
        """
        survivor = services.get_survivor(survivor_id)
        return with_etag(survivor.etag, survivor)


@blp.route("/<uuid:survivor_id>/location")
class SurvivorLocation(MethodView):
    @blp.arguments(LocationSchema)
    @blp.response(200, SurvivorSchema)
    @blp.alt_response(412, "PreconditionFailed")
    def put(self, body: dict[str, float], survivor_id: uuid.UUID) -> Any:
        """Record a survivor's new location (the survivor itself or an admin); honours If-Match.

        Other accounts get 403. With If-Match, a stale ETag is 412 and nothing is written; the
        200 carries the survivor's new ETag.
        """
        survivor = services.move(current_user, survivor_id, body, if_match_allows)
        return survivor, {"ETag": survivor.etag}


@blp.route("/<uuid:survivor_id>/inventory")
class SurvivorInventory(MethodView):
    @blp.response(200, InventorySchema)
    def get(self, survivor_id: uuid.UUID) -> Any:
        """Read a survivor's inventory (locked once infected, except for admins).

        Any account, but an infected survivor's inventory is 403 for everyone except admins.
        """
        return services.inventory_of(current_user, survivor_id)
