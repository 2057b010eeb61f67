"""Report schemas."""

from __future__ import annotations

import marshmallow as ma

from api.schemas import ResponseSchema

PERCENT = {"format": "double", "minimum": 0, "maximum": 100}


class InfectionReportSummarySchema(ResponseSchema):
    """Counts and percentages of infected and non-infected survivors."""

    total = ma.fields.Integer(metadata={"format": "int64", "minimum": 0})
    infected = ma.fields.Integer(metadata={"format": "int64", "minimum": 0})
    non_infected = ma.fields.Integer(metadata={"format": "int64", "minimum": 0})
    infected_percentage = ma.fields.Float(metadata=PERCENT)
    non_infected_percentage = ma.fields.Float(metadata=PERCENT)


class AveragesSchema(ResponseSchema):
    """Average of each item per non-infected survivor."""

    water = ma.fields.Float(metadata={"format": "double", "minimum": 0})
    food = ma.fields.Float(metadata={"format": "double", "minimum": 0})
    medication = ma.fields.Float(metadata={"format": "double", "minimum": 0})
    ammunition = ma.fields.Float(metadata={"format": "double", "minimum": 0})


class ResourcesReportSchema(ResponseSchema):
    """Averages over the non-infected, and the points held by the infected."""

    average_per_survivor = ma.fields.Nested(AveragesSchema)
    points_lost = ma.fields.Integer(metadata={"format": "int64", "minimum": 0})
