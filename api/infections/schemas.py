"""Infection report schemas."""

from __future__ import annotations

import marshmallow as ma

from api.schemas import BaseSchema, ResponseSchema, uuid_field


class InfectionReportInSchema(BaseSchema):
    """Admins name the reporting survivor; survivor accounts send no body."""

    reporter_id = uuid_field(metadata={"description": "Admins only: the reporting survivor."})


class InfectionReportSchema(ResponseSchema):
    """Where the reported survivor stands after this report."""

    survivor_id = uuid_field()
    reporter_id = uuid_field()
    infection_reports = ma.fields.Integer(metadata={"format": "int32", "minimum": 0})
    infected = ma.fields.Boolean()
