"""/api/v1/survivors/{id}/infection-reports."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from api.infections import services
from api.infections.schemas import InfectionReportInSchema, InfectionReportSchema
from api.openapi import Blueprint

blp = Blueprint("infections", __name__, url_prefix="/api/v1/survivors", description="Infection reports.")


@blp.route("/<uuid:survivor_id>/infection-reports")
class InfectionReports(MethodView):
    @blp.arguments(InfectionReportInSchema, required=False)
    @blp.response(201, InfectionReportSchema)
    @blp.alt_response(409, "Conflict")
    @blp.alt_response(
        200, schema=InfectionReportSchema, description="Already reported by this reporter: counted once."
    )
    def post(self, body: dict[str, Any], survivor_id: uuid.UUID) -> Any:
        """Report a survivor as infected (survivors as themselves; admins name the reporter).

        A survivor account reports as its own profile, with no body; an admin names the
        reporter with reporter_id; observers get 403. The first report by a reporter is 201, a
        repeat 200 (counted once). A survivor is infected for good once INFECTION_THRESHOLD
        distinct survivors have reported them.
        """
        result, counted = services.report(current_user, survivor_id, body or {})
        return result, 201 if counted else 200
