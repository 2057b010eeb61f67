"""Account schemas: what clients send and what they get back (never a hash)."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import validate

from api.accounts.models import Role
from api.schemas import (
    BaseSchema,
    CursorPageQuerySchema,
    ResponseSchema,
    UTCDateTimeField,
    enum_field,
    page_schema,
    uuid_field,
)
from security.passwords import MAX_LENGTH, MIN_LENGTH

USERNAME_PATTERN = r"^[A-Za-z0-9._-]{3,32}$"
USERNAME_RULE = "Use 3-32 characters of A-Z a-z 0-9 . _ -"
ROLES = [role.value for role in Role]
ROLE_SCHEMA = "Role"
_USERNAME_RE = re.compile(USERNAME_PATTERN)


def is_username(value: str) -> bool:
    """True for a well-formed username: the whole string, so "ada\n" is not a second "ada"."""
    # validate.Regexp uses re.match, where $ also matches before a trailing newline.
    return _USERNAME_RE.fullmatch(value) is not None


def _validate_username(value: str) -> None:
    if not is_username(value):
        raise ma.ValidationError(USERNAME_RULE)


class StrictBoolean(ma.fields.Boolean):
    """JSON true or false only: marshmallow's truthy sets would also take 1 and 0 (1 == True)."""

    def _deserialize(self, value: Any, *_args: Any, **_kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def username_field() -> ma.fields.String:
    """3-32 characters of A-Z a-z 0-9 . _ -"""
    return ma.fields.String(
        required=True,
        validate=_validate_username,
        metadata={"minLength": 3, "maxLength": 32, "pattern": USERNAME_PATTERN},
    )


def password_field(required: bool = True) -> ma.fields.String:
    """12-128 characters; the common-password rule runs in the service."""
    return ma.fields.String(
        required=required,
        load_only=True,
        validate=validate.Length(MIN_LENGTH, MAX_LENGTH),
        metadata={"format": "password", "minLength": MIN_LENGTH, "maxLength": MAX_LENGTH},
    )


class RegisterSchema(BaseSchema):
    """Self-registration: always a survivor account."""

    username = username_field()
    password = password_field()


class AccountCreateSchema(RegisterSchema):
    """An admin creates an account with any role."""

    role = enum_field(ROLE_SCHEMA, ROLES, required=True)


class AccountUpdateSchema(BaseSchema):
    """Role change, disable/enable, and a password reset (which ends every session)."""

    role = enum_field(ROLE_SCHEMA, ROLES)
    disabled = StrictBoolean()
    password = password_field(required=False)


class AccountSchema(ResponseSchema):
    """An account as clients see it."""

    id = uuid_field(dump_only=True)
    username = ma.fields.String(metadata={"maxLength": 32, "pattern": USERNAME_PATTERN})
    role = enum_field(ROLE_SCHEMA, ROLES)
    disabled = ma.fields.Boolean()
    created_at = UTCDateTimeField()


class RegisteredSchema(ResponseSchema):
    """The body of 201 from register: {"id","username","role","created_at"}."""

    id = uuid_field(dump_only=True)
    username = ma.fields.String(metadata={"maxLength": 32, "pattern": USERNAME_PATTERN})
    role = enum_field(ROLE_SCHEMA, ROLES)
    created_at = UTCDateTimeField()


AccountPageSchema = page_schema(AccountSchema, "AccountPage")
AccountQuerySchema = CursorPageQuerySchema
