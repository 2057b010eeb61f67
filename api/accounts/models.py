"""Accounts: who may sign in, with which role."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from sqlalchemy import Boolean, Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from api import mirror
from api.database import Timestamps, UUIDPrimaryKey
from api.extensions import db


class Role(enum.StrEnum):
    """admin: everything; survivor: acts as its own profile; observer: reads only."""

    ADMIN = "admin"
    SURVIVOR = "survivor"
    OBSERVER = "observer"


class Account(UUIDPrimaryKey, Timestamps, db.Model):  # type: ignore[name-defined,misc]
    """A login. username_key is the lower-cased name that uniqueness and login match on."""

    __tablename__ = "accounts"

    username: Mapped[str] = mapped_column(String(32), nullable=False)
    username_key: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="account_role", values_callable=lambda roles: [r.value for r in roles]),
        nullable=False,
    )
    # Disabling also ends every session (security/sessions.py), so tokens issued before a
    # disable stay dead after the account is enabled again.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated account as a request acts with it: read once per request, from its Redis
    mirror or in one light query (no ORM object to build, nothing to expire or refresh after a
    commit; accounts.services.load_active), never written through.
    Has the attribute names of Account that services read from an actor.

    survivor_id is the account's survivor profile as that query found it, None without one: the
    one place a request learns it (a profile's account never changes once set). A profile the
    request itself creates (POST /survivors) is not on it; nothing after the creation reads it.
    """

    id: uuid.UUID
    username: str
    role: Role
    survivor_id: uuid.UUID | None


def actor_name(account_id: str) -> str:
    """The Redis mirror's name for the actor of account `account_id` (a token's `sub`), which
    every write that changes the actor declares stale (api/mirror.py)."""
    return mirror.ACCOUNT + account_id
