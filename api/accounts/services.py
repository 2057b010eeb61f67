"""Account rules: creation, login with a timing guard, role and disable changes."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from api.accounts.models import Account, Role
from api.accounts.schemas import USERNAME_RULE, is_username
from api.database import write_transaction
from api.extensions import db
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


def load_active(account_id: str, generation: Any) -> Account | None:
    """The account a token names, if it is still enabled and the token's generation is current."""
    try:
        key = uuid.UUID(account_id)
    except (TypeError, ValueError):
        return None
    account = db.session.get(Account, key)
    if account is None or account.disabled or account.token_generation != generation:
        return None
    return account


def list_accounts(page: int, page_size: int) -> tuple[list[Account], int]:
    """One page of accounts in creation order, and the total."""
    total = db.session.scalar(select(func.count()).select_from(Account)) or 0
    rows = db.session.scalars(
        select(Account)
        .order_by(Account.created_at, Account.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return list(rows), total


def update_account(actor: Account, account_id: uuid.UUID, changes: dict[str, Any]) -> Account:
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
