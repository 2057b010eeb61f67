"""/api/v1/survivors: register, list, read, move, inventory."""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_jwt_extended import current_user
from flask_smorest import Blueprint

from api.caching import body_etag, if_match_allows, with_etag
from api.pagination import paginated
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


@blp.route("")
class Survivors(MethodView):
    @body_etag
    @blp.arguments(SurvivorQuerySchema, location="query")
    @blp.response(200, SurvivorPageSchema)
    @blp.alt_response(304, description="Not modified: the If-None-Match ETag is current.", success=True)
    def get(self, query: dict[str, Any]) -> Any:
        """List survivors, optionally only the infected or non-infected."""
        return paginated(services.list_survivors, query, infected=query.get("infected"))

    @blp.arguments(SurvivorCreateSchema)
    @blp.response(201, SurvivorSchema)
    @blp.alt_response(409, "Conflict")
    def post(self, body: dict[str, Any]) -> Any:
        """Register a survivor (a survivor account: itself, once; an admin: an unlinked profile)."""
        survivor = services.create_survivor(current_user, body)
        location = url_for("survivors.SurvivorById", survivor_id=survivor.id)
        return survivor, {"Location": location, "ETag": survivor.etag}


@blp.route("/<uuid:survivor_id>")
class SurvivorById(MethodView):
    @blp.response(200, SurvivorSchema)
    @blp.alt_response(304, description="Not modified: the If-None-Match ETag is current.", success=True)
    def get(self, survivor_id: uuid.UUID) -> Any:
        """Read one survivor."""
        survivor = services.get_survivor(survivor_id)
        return with_etag(survivor.etag, survivor)


@blp.route("/<uuid:survivor_id>/location")
class SurvivorLocation(MethodView):
    @blp.arguments(LocationSchema)
    @blp.response(200, SurvivorSchema)
    @blp.alt_response(412, "PreconditionFailed")
    def put(self, body: dict[str, float], survivor_id: uuid.UUID) -> Any:
        """Record a survivor's new location (the survivor itself or an admin); honours If-Match."""
        survivor = services.move(current_user, survivor_id, body, if_match_allows)
        return survivor, {"ETag": survivor.etag}


@blp.route("/<uuid:survivor_id>/inventory")
class SurvivorInventory(MethodView):
    @blp.response(200, InventorySchema)
    def get(self, survivor_id: uuid.UUID) -> Any:
        """Read a survivor's inventory (locked once infected, except for admins)."""
        return services.inventory_of(current_user, survivor_id)
