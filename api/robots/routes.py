"""/api/v1/robots: the Robot CPU list, grouped for people to read, and an admin refresh."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.caching import url_etag, with_etag
from api.openapi import Blueprint
from api.pagination import link_header
from api.robots import services
from api.robots.schemas import RobotPageSchema, RobotQuerySchema, RobotRefreshSchema
from api.schemas import NoBodySchema
from security.permissions import role_required

blp = Blueprint(
    "robots", __name__, url_prefix="/api/v1/robots", description="Robots from the Robot CPU system."
)


@blp.route("")
class Robots(MethodView):
    @blp.arguments(RobotQuerySchema, location="query")
    @blp.response(200, RobotPageSchema)
    @blp.alt_response(304, description="Not modified: the If-None-Match ETag is current.", success=True)
    def get(self, query: dict[str, Any]) -> Any:
        """List robots, optionally of one category.

        Any account. Sorted by category, then model, then serial number (code-point order).
        source says where the data came from: upstream (fetched during this request), cache
        (the stored copy) or snapshot (bundled real data, while no good copy was ever fetched);
        a stale copy is refreshed by one reader while the others serve it. Carries a strong
        ETag; a current If-None-Match is answered 304 with no body.
        """
        page, page_size = query["page"], query["page_size"]
        version, body = services.robots_page(page, page_size, query.get("category"))
        link = link_header(page, page_size, body["total"])
        return with_etag(
            url_etag(services.ROBOTS, version, body["source"]), body, {"Link": link} if link else None
        )


@blp.route("/refresh")
class RobotsRefresh(MethodView):
    @role_required("admin")
    @blp.arguments(NoBodySchema, required=False)
    @blp.response(200, RobotRefreshSchema)
    @blp.alt_response(502, "BadGateway")
    def post(self, _body: dict[str, Any]) -> Any:
        """Fetch the Robot CPU list now and store it (admins only).

        Other roles get 403. The whole call is bounded in time and size, redirects are not
        followed, invalid records are skipped; when the upstream is down or answers nothing
        usable the answer is 502 and the stored data is kept.
        """
        return services.refresh()
