"""Token schemas for login, refresh and logout."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from api.accounts.schemas import ROLES
from api.schemas import BaseSchema, uuid_field

JWT_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"


class LoginSchema(BaseSchema):
    """Credentials. Loosely bounded on purpose: a malformed username is the same 401 as a wrong one."""

    username = ma.fields.String(
        required=True, validate=validate.Length(max=256), metadata={"maxLength": 256, "pattern": "^.*$"}
    )
    password = ma.fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(max=1024),
        metadata={"format": "password", "maxLength": 1024},
    )


class TokenPairSchema(BaseSchema):
    """A fresh access + refresh token pair."""

    access_token = ma.fields.String(metadata={"maxLength": 4096, "pattern": JWT_PATTERN})
    refresh_token = ma.fields.String(metadata={"maxLength": 4096, "pattern": JWT_PATTERN})
    token_type = ma.fields.String(metadata={"enum": ["Bearer"]})
    expires_in = ma.fields.Integer(metadata={"format": "int32", "minimum": 1, "maximum": 86400})


class LogoutSchema(BaseSchema):
    """Optionally name the refresh token to revoke with the access token."""

    refresh_token = ma.fields.String(
        validate=validate.Length(max=4096), metadata={"maxLength": 4096, "pattern": JWT_PATTERN}
    )


class MeSchema(BaseSchema):
    """Who the token belongs to, and its survivor profile if any."""

    id = uuid_field()
    username = ma.fields.String(metadata={"maxLength": 32, "pattern": r"^[A-Za-z0-9._-]{3,32}$"})
    role = ma.fields.String(metadata={"enum": ROLES})
    survivor_id = uuid_field(allow_none=True)
