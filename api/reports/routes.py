"""/api/v1/reports: infection, infected / non-infected lists, resources, robots."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.caching import url_etag, versioned, with_etag
from api.openapi import Blueprint
from api.pagination import Window, page_response
from api.reports import services
from api.reports.schemas import InfectionReportSummarySchema, ResourcesReportSchema
from api.robots.schemas import RobotsReportSchema
from api.robots.services import ROBOTS
from api.schemas import CursorPageQuerySchema
from api.survivors.schemas import SurvivorPageSchema

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Reports.")


@blp.route("/infection")
class InfectionReport(MethodView):
    @versioned
    @blp.response(200, InfectionReportSummarySchema)
    @blp.alt_response(304, description="Not modified: the If-None-Match ETag is current.", success=True)
    def get(self) -> Any:
        """Report how many survivors are infected.

        Any account. Percentages to 2 decimals, both 0.0 when there are no survivors; counted
        in the database. Carries a strong ETag; a current If-None-Match is answered 304.
        """
        return services.infection_summary()


@blp.route("/infected-survivors")
class InfectedSurvivors(MethodView):
    @blp.arguments(CursorPageQuerySchema, location="query")
    @versioned
    @blp.response(200, SurvivorPageSchema)
    @blp.alt_response(304, description="Not modified: the If-None-Match ETag is current.", success=True)
    def get(self, query: dict[str, Any]) -> Any:
        """List infected survivors.

        Any account. A page in a stable order with a strong ETag; a current If-None-Match is
        answered 304.
        """
        window = Window.of(query)
        items, total = services.infected_page(window)
        return page_response(window, items, total)


@blp.route("/non-infected-survivors")
class NonInfectedSurvivors(MethodView):
    @blp.arguments(CursorPageQuerySchema, location="query")
    @versioned
    @blp.response(200, SurvivorPageSchema)
    @blp.alt_response(304, description="Not modified: the If-None-Match ETag is current.", success=True)
    def get(self, query: dict[str, Any]) -> Any:
        """List non-infected survivors.

        Any account. A page in a stable order with a strong ETag; a current If-None-Match is
        answered 304.
        """
        window = Window.of(query)
        items, total = services.non_infected_page(window)
        return page_response(window, items, total)


@blp.route("/resources")
class ResourcesReport(MethodView):
    @versioned
    @blp.response(200, ResourcesReportSchema)
    @blp.alt_response(304, description="Not modified: the If-None-Match ETag is current.", success=True)
    def get(self) -> Any:
        """Report average resources per healthy survivor and the points lost to infection.

        Any account. Averages over non-infected survivors (2 decimals, 0.0 when there are
        none); points_lost is what infected survivors hold. Carries a strong ETag; a current
        If-None-Match is answered 304.
        """
        return services.resources()


@blp.route("/robots")
class RobotsReport(MethodView):
    @blp.response(200, RobotsReportSchema)
    @blp.alt_response(304, description="Not modified: the If-None-Match ETag is current.", success=True)
    def get(self) -> Any:
        """Report how many robots there are of each category.

        Any account. by_category always has both Flying and Land; source and fetched_at are
        those of the robots list (a stale copy is refreshed once, the snapshot is served while
        no good copy was ever fetched). Carries a strong ETag; a current If-None-Match is
        answered 304.
        """
        version, body = services.robots()
        return with_etag(url_etag(ROBOTS, version, body["source"]), body)
