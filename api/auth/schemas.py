"""Token schemas for login, refresh and logout."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from api.accounts.schemas import ROLE_SCHEMA, ROLES, password_field
from api.schemas import (
    BaseSchema,
    CursorPageQuerySchema,
    ResponseSchema,
    UTCDateTimeField,
    enum_field,
    page_schema,
    uuid_field,
)
from security.sessions import USER_AGENT_MAX_LENGTH

JWT_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"


def given_password_field() -> ma.fields.String:
    """A password to check, not to set: loosely bounded, so a short one is wrong, not malformed."""
    return ma.fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(max=1024),
        metadata={"format": "password", "maxLength": 1024},
    )


class LoginSchema(BaseSchema):
    """Credentials. Loosely bounded on purpose: a malformed username is the same 401 as a wrong one."""

    username = ma.fields.String(
        required=True, validate=validate.Length(max=256), metadata={"maxLength": 256, "pattern": "^.*$"}
    )
    password = given_password_field()


class PasswordChangeSchema(BaseSchema):
    """The holder's password change: the current password (403 when wrong) and the new one."""

    current_password = given_password_field()
    new_password = password_field()


class SessionSchema(ResponseSchema):
    """One live session (a login) of the caller; `current` marks the one of the token used."""

    id = uuid_field(dump_only=True)
    created_at = UTCDateTimeField(metadata={"description": "When the login happened."})
    last_used_at = UTCDateTimeField(
        metadata={"description": "When the session last issued tokens (login or refresh)."}
    )
    expires_at = UTCDateTimeField(
        metadata={"description": "When it ends unless refreshed (never past SESSION_MAX_AGE after login)."}
    )
    user_agent = ma.fields.String(
        allow_none=True,
        metadata={
            "maxLength": USER_AGENT_MAX_LENGTH,
            "pattern": "^[ -~]*$",
            "description": "The User-Agent of the login (printable ASCII), to tell sessions apart.",
        },
    )
    current = ma.fields.Boolean()


SessionPageSchema = page_schema(SessionSchema, "SessionPage")
SessionQuerySchema = CursorPageQuerySchema


class TokenPairSchema(ResponseSchema):
    """A fresh access + refresh token pair."""

    access_token = ma.fields.String(metadata={"maxLength": 4096, "pattern": JWT_PATTERN})
    refresh_token = ma.fields.String(metadata={"maxLength": 4096, "pattern": JWT_PATTERN})
    token_type = enum_field("TokenType", ["Bearer"])
    expires_in = ma.fields.Integer(metadata={"format": "int32", "minimum": 1, "maximum": 86400})


class LogoutSchema(BaseSchema):
    """Optionally name the refresh token to revoke with the access token."""

    refresh_token = ma.fields.String(
        validate=validate.Length(max=4096), metadata={"maxLength": 4096, "pattern": JWT_PATTERN}
    )


class MeSchema(ResponseSchema):
    """Who the token belongs to, and its survivor profile if any."""

    id = uuid_field()
    username = ma.fields.String(metadata={"maxLength": 32, "pattern": r"^[A-Za-z0-9._-]{3,32}$"})
    role = enum_field(ROLE_SCHEMA, ROLES)
    survivor_id = uuid_field(allow_none=True)
