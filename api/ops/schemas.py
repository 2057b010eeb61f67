"""Bodies of /healthz and /readyz."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from api.openapi import ProblemSchema
from api.schemas import BaseSchema


class HealthSchema(BaseSchema):
    """Liveness: the process answers."""

    status = ma.fields.String(required=True, validate=validate.OneOf(["ok"]))


class ReadyChecksSchema(BaseSchema):
    """Each dependency when all are ready: Redis is "disabled" when REDIS_URL is unset."""

    database = ma.fields.String(required=True, validate=validate.OneOf(["ok"]))
    redis = ma.fields.String(required=True, validate=validate.OneOf(["ok", "disabled"]))


class ReadySchema(BaseSchema):
    """Readiness: every dependency answered."""

    status = ma.fields.String(required=True, validate=validate.OneOf(["ok"]))
    checks = ma.fields.Nested(ReadyChecksSchema, required=True)


class FailedChecksSchema(BaseSchema):
    """Each dependency when one (or more) is not ready."""

    database = ma.fields.String(required=True, validate=validate.OneOf(["ok", "failed"]))
    redis = ma.fields.String(required=True, validate=validate.OneOf(["ok", "failed", "disabled"]))


class NotReadyProblemSchema(ProblemSchema):
    """The 503 problem document, with the same checks member."""

    class Meta:
        unknown = ma.RAISE
        exclude = ("errors",)

    checks = ma.fields.Nested(FailedChecksSchema, required=True)
