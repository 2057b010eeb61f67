"""Account rules: creation, login with a timing guard, role and disable changes."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from api import mirror
from api.accounts.models import Account, Actor, Role, actor_name
from api.accounts.schemas import USERNAME_RULE, is_username
from api.database import mark_stale, utcnow, write_transaction
from api.extensions import db
from api.pagination import Window, page_of
from api.problems import ProblemError
from api.survivors.models import Survivor
from security.passwords import Passwords, password_problem
from security.sessions import EndReason, end_sessions

audit = logging.getLogger("resistance.audit")


def passwords() -> Passwords:
    """The app's hasher, built once per app with its configured cost profile."""
    return current_app.extensions["passwords"]


def check_password_rules(password: str, field: str = "password") -> None:
    """422 naming `field` when the password breaks a rule (length, the common-password list)."""
    problem = password_problem(password)
    if problem:
        raise ProblemError(422, "The password is not acceptable.", errors={field: [problem]})


def create_account(username: str, password: str, role: Role | str) -> Account:
    """Create an account; 409 when the name is taken in any letter case (decided by a unique key)."""
    if not is_username(username):  # the shell command reaches here without a schema
        raise ProblemError(422, "The username is not acceptable.", errors={"username": [USERNAME_RULE]})
    check_password_rules(password)
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


def authenticate(username: str, password: str) -> tuple[uuid.UUID, str] | None:
    """The account id for these credentials and the hash they were verified against, or None;
    the same work is done either way.

    The hash goes with the id so that what follows (a session started, security/sessions.py)
    happens only if the password is still that one: a change, a reset or a disable committed
    while Argon2 ran is never undone by a login that began before it.
    """
    # A name no account can have never reaches the database: a NUL byte, say, would make
    # PostgreSQL fail (a 500 where every bad login must be the same 401).
    account = None
    if is_username(username):
        account = db.session.scalar(select(Account).where(Account.username_key == username.lower()))
    if account is None:
        passwords().dummy_verify(password)
        return None
    account_id, verified = account.id, account.password_hash
    ok, new_hash = passwords().verify(verified, password)
    if not ok or account.disabled:
        return None
    if new_hash:  # stronger parameters: store the new hash, unless the password changed meanwhile
        with write_transaction():
            if not replace_password_hash(account_id, verified, new_hash):
                return None
        verified = new_hash
    return account_id, verified


def replace_password_hash(account_id: uuid.UUID, expected: str, new_hash: str) -> bool:
    """Compare-and-set the stored hash (inside a write transaction): False, and nothing written,
    when it is no longer `expected` (another change won the race)."""
    replaced = db.session.execute(
        update(Account)
        .where(Account.id == account_id, Account.password_hash == expected)
        .values(password_hash=new_hash, updated_at=utcnow())
        .returning(Account.id)
    ).first()
    return replaced is not None


# Built once: SQLAlchemy memoises a statement's cache key, so each request only binds values.
# The outer join brings the survivor profile's id (account_id is unique: at most one row).
ACTOR_QUERY = (
    select(Account.id, Account.username, Account.role, Survivor.id.label("survivor_id"))
    .select_from(Account)
    .outerjoin(Survivor, Survivor.account_id == Account.id)
    .where(Account.id == bindparam("id"), Account.disabled.is_(False))
)


def load_active(account_id: str) -> Actor | None:
    """The account a token names, if it is still enabled (its session was checked before).

    Runs on every authenticated request: from the Redis mirror when REDIS_URL is set (fetched
    in the session check's MGET, api/mirror.py), else a prepared Core select of four columns, not
    an ORM load; the only look-up of the account's survivor profile a request needs
    (Actor.survivor_id). Every write that changes what it returns declares it (mark_stale).
    `account_id` is the token's `sub`, a canonical UUID (security.tokens.well_formed refused any
    other before this runs).
    """
    key = uuid.UUID(account_id)

    def load() -> Actor | None:
        row = db.session.connection().execute(ACTOR_QUERY, {"id": key}).first()
        return None if row is None else Actor(*row)

    return mirror.read(actor_name(account_id), load, _encode_actor, lambda raw: _decode_actor(key, raw))


def _encode_actor(actor: Actor | None) -> str:
    """[username, role, survivor id or null], or null for a disabled or missing account."""
    if actor is None:
        return json.dumps(None)
    survivor_id = None if actor.survivor_id is None else str(actor.survivor_id)
    return json.dumps([actor.username, actor.role.value, survivor_id])


def _decode_actor(account_id: uuid.UUID, raw: bytes) -> Actor | None:
    state = json.loads(raw)
    if state is None:
        return None
    username, role, survivor_id = state
    return Actor(account_id, username, Role(role), None if survivor_id is None else uuid.UUID(survivor_id))


def list_accounts(window: Window) -> tuple[list[Account], int]:
    """One page of accounts in creation order, and the total."""
    return page_of(Account, [], window)


def update_account(actor: Actor, account_id: uuid.UUID, changes: dict[str, Any]) -> Account:
    """Change role, disabled and/or password (an admin's reset).

    Disabling, and a new password, end every session of the account in the same transaction:
    every token issued so far is dead at once, and stays dead after re-enabling.
    """
    if "password" in changes:
        check_password_rules(changes["password"])
        new_hash = passwords().hash(changes["password"])
    with write_transaction() as session:
        account = session.get(Account, account_id, with_for_update=True)
        if account is None:
            raise ProblemError(404, "No such account.")
        mark_stale(actor_name(str(account.id)))
        if account.id == actor.id and (
            changes.get("disabled") or changes.get("role", Role.ADMIN) != Role.ADMIN
        ):
            raise ProblemError(409, "An admin cannot disable or demote their own account.")
        if account.id == actor.id and "password" in changes:
            # ASVS V2.1.6: changing one's own password takes the current one (POST /auth/password),
            # so a stolen access token alone cannot take the account over.
            raise ProblemError(409, "Change your own password with POST /api/v1/auth/password.")
        if "role" in changes:
            account.role = Role(changes["role"])
        if changes.get("disabled"):
            end_sessions(account.id, EndReason.ACCOUNT_DISABLED)
        if "disabled" in changes:
            account.disabled = changes["disabled"]
        if "password" in changes:
            account.password_hash = new_hash
            end_sessions(account.id, EndReason.PASSWORD_RESET)
    logged = {name: value for name, value in changes.items() if name != "password"}
    audit.info(
        "account changed",
        extra={
            "event": "account.changed",
            "target": str(account.id),
            "actor": str(actor.id),
            "changes": logged,
        },
    )
    if "password" in changes:
        audit.info(
            "password reset",
            extra={"event": "password.reset", "target": str(account.id), "actor": str(actor.id)},
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
