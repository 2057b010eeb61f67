"""Account rules: creation, login with a timing guard, role and disable changes."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from api.accounts.models import Account, Actor, Role
from api.accounts.schemas import USERNAME_RULE, is_username
from api.database import write_transaction
from api.extensions import db
from api.pagination import Window, page_of
from api.problems import ProblemError
from security.passwords import Passwords, password_problem

audit = logging.getLogger("resistance.audit")


def passwords() -> Passwords:
    """The app's hasher, built once per app with its configured cost profile."""
    return current_app.extensions["passwords"]


def _check_password(password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise ProblemError(422, "The password is not acceptable.", errors={"password": [problem]})


def create_account(username: str, password: str, role: Role | str) -> Account:
    """Create an account; 409 when the name is taken in any letter case (decided by a unique key)."""
    if not is_username(username):  # the shell command reaches here without a schema
        raise ProblemError(422, "The username is not acceptable.", errors={"username": [USERNAME_RULE]})
    _check_password(password)
    account = Account(
        username=username,
        username_key=username.lower(),
        password_hash=passwords().hash(password),
        role=Role(role),
    )
    try:
        with write_transaction() as session:
            session.add(account)
    except IntegrityError:
        raise ProblemError(409, "That username is taken.", errors={"username": ["Already taken."]}) from None
    audit.info(
        "account created",
        extra={"event": "account.created", "target": str(account.id), "role": account.role.value},
    )
    return account


def authenticate(username: str, password: str) -> Account | None:
    """The account for these credentials, or None; the same work is done either way."""
    # A name no account can have never reaches the database: a NUL byte, say, would make
    # PostgreSQL fail (a 500 where every bad login must be the same 401).
    account = None
    if is_username(username):
        account = db.session.scalar(select(Account).where(Account.username_key == username.lower()))
    if account is None:
        passwords().dummy_verify(password)
        return None
    ok, new_hash = passwords().verify(account.password_hash, password)
    if not ok or account.disabled:
        return None
    if new_hash:
        with write_transaction():
            account.password_hash = new_hash
            db.session.add(account)
    return account


# Built once: SQLAlchemy memoises a statement's cache key, so each request only binds values.
ACTOR_QUERY = select(Account.id, Account.username, Account.role, Account.token_generation).where(
    Account.id == bindparam("id"),
    Account.disabled.is_(False),
    Account.token_generation == bindparam("generation"),
)


def load_active(account_id: str, generation: Any) -> Actor | None:
    """The account a token names, if it is still enabled and the token's generation is current.

    Runs on every authenticated request: a prepared Core select of four columns, not an ORM load.
    """
    try:
        key = uuid.UUID(account_id)
    except (TypeError, ValueError):
        return None
    row = db.session.connection().execute(ACTOR_QUERY, {"id": key, "generation": generation}).first()
    return None if row is None else Actor(*row)


def list_accounts(window: Window) -> tuple[list[Account], int]:
    """One page of accounts in creation order, and the total."""
    return page_of(Account, [], window)


def update_account(actor: Actor, account_id: uuid.UUID, changes: dict[str, Any]) -> Account:
    """Change role and/or disabled; disabling kills every token issued so far."""
    with write_transaction() as session:
        account = session.get(Account, account_id, with_for_update=True)
        if account is None:
            raise ProblemError(404, "No such account.")
        if account.id == actor.id and (
            changes.get("disabled") or changes.get("role", Role.ADMIN) != Role.ADMIN
        ):
            raise ProblemError(409, "An admin cannot disable or demote their own account.")
        if "role" in changes:
            account.role = Role(changes["role"])
        if changes.get("disabled") and not account.disabled:
            account.token_generation += 1
        if "disabled" in changes:
            account.disabled = changes["disabled"]
    audit.info(
        "account changed",
        extra={
            "event": "account.changed",
            "target": str(account.id),
            "actor": str(actor.id),
            "changes": changes,
        },
    )
    return account


def ensure_admin(username: str, password: str | None) -> str | None:
    """Create the first admin when none exists; returns the generated password, if one was made."""
    exists = db.session.scalar(select(Account.id).where(Account.role == Role.ADMIN).limit(1))
    if exists is not None:
        return None
    generated = None
    if password is None:
        import secrets

        generated = password = secrets.token_urlsafe(18)
    create_account(username, password, Role.ADMIN)
    return generated
