"""The token lifecycle of one account: login, refresh, logout, password change and its sessions.

The session rules themselves (rotation, reuse detection, ending, the per-request check) live in
security/sessions.py; this module is what each endpoint asks of them, and the audit trail.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from api.accounts.models import Account, Actor
from api.accounts.services import authenticate, check_password_rules, passwords, replace_password_hash
from api.database import utcnow, write_transaction
from api.extensions import db
from api.metrics import REFRESH_TOKEN_REUSE
from api.pagination import Window, page_of
from api.problems import CHALLENGE, INVALID_TOKEN_CHALLENGE, ProblemError
from security.jwt import SESSION_ENDED
from security.sessions import AccountSession, EndReason, Outcome, end_sessions, live_conditions
from security.sessions import rotate as rotate_session
from security.sessions import start as start_session
from security.tokens import decode_refresh_token, issue_pair

audit = logging.getLogger("resistance.audit")


# Every refused refresh is 401, but a client must tell "another request of yours got the new
# pair" (carry on with it) from "the session is over" (log in again).
REFUSED_REFRESH = {
    Outcome.CONCURRENT: "This refresh token was just used by another request of yours; use the pair it got.",
    Outcome.REUSE_DETECTED: "This refresh token was already used: the session has ended; log in again.",
    Outcome.DEAD: SESSION_ENDED,
}


def require_registration_open() -> None:
    """403 when the operator has closed self-registration (ALLOW_REGISTRATION=false)."""
    if not current_app.config["ALLOW_REGISTRATION"]:
        raise ProblemError(403, "Registration is closed on this server.")


def login(username: str, password: str, user_agent: str | None) -> dict[str, Any]:
    """A new session and its token pair for good credentials; one identical 401 for every kind
    of bad ones. A login never joins an existing session (no session fixation)."""
    verified = authenticate(username, password)
    grant = None if verified is None else start_session(*verified, user_agent)
    if verified is None or grant is None:
        audit.info("login failed", extra={"event": "auth.login_failed"})
        raise ProblemError(401, "Invalid username or password.", headers={"WWW-Authenticate": CHALLENGE})
    account_id, _hash = verified
    audit.info("login", extra={"event": "auth.login", "account_id": str(account_id)})
    return issue_pair(account_id, grant)


def refresh(account: Actor, claims: dict[str, Any]) -> dict[str, Any]:
    """Rotate the session's pair (RFC 9700 §4.14.2): the used refresh token dies; a rotated-out
    one presented again ends the session, unless it is the holder's concurrent refresh (401
    either way)."""
    rotation = rotate_session(claims["sid"], claims["jti"], account.id)
    if rotation.outcome == Outcome.REUSE_DETECTED:
        REFRESH_TOKEN_REUSE.inc()
    if rotation.grant is None:
        raise ProblemError(
            401, REFUSED_REFRESH[rotation.outcome], headers={"WWW-Authenticate": INVALID_TOKEN_CHALLENGE}
        )
    audit.info(
        "session refreshed",
        extra={"event": "session.refreshed", "account_id": str(account.id), "session_id": claims["sid"]},
    )
    return issue_pair(account.id, rotation.grant)


def logout(account: Actor, claims: dict[str, Any], refresh_token: str | None) -> None:
    """End the session of the access token used and, when a refresh token of the account is
    given (v1 clients send it), that token's session too."""
    sessions = [claims["sid"]]
    if refresh_token is not None:
        refresh_claims = decode_refresh_token(refresh_token)
        if refresh_claims is None or refresh_claims["sub"] != str(account.id):
            raise ProblemError(
                422,
                "refresh_token is not a valid refresh token of this account.",
                errors={"refresh_token": ["Not a valid refresh token of this account."]},
            )
        sessions.append(refresh_claims["sid"])
    ids = [uuid.UUID(session_id) for session_id in sessions]
    with write_transaction():
        end_sessions(account.id, EndReason.LOGOUT, AccountSession.id.in_(ids))
    audit.info("logout", extra={"event": "auth.logout", "account_id": str(account.id)})


def change_password(account: Actor, claims: dict[str, Any], current: str, new: str) -> None:
    """The holder's own password change (ASVS V2.1.5): the current password first (403 when
    wrong), then the rules of registration for the new one (422); every other session ends.

    The new hash replaces the one the current password was checked against, or nothing (409):
    a reset by an admin, or another change, between the check and the write is never undone.
    """
    stored_hash = db.session.scalar(select(Account.password_hash).where(Account.id == account.id)) or ""
    ok, _rehash = passwords().verify(stored_hash, current)
    if not ok:
        audit.info(
            "password change refused",
            extra={"event": "password.change_failed", "account_id": str(account.id)},
        )
        raise ProblemError(
            403,
            "The current password is wrong.",
            errors={"current_password": ["Does not match this account's password."]},
        )
    check_password_rules(new, "new_password")
    new_hash = passwords().hash(new)
    with write_transaction():
        if not replace_password_hash(account.id, stored_hash, new_hash):
            raise ProblemError(409, "The password was changed meanwhile; sign in again and retry.")
        end_sessions(account.id, EndReason.PASSWORD_CHANGED, keep=claims["sid"])
    audit.info("password changed", extra={"event": "password.changed", "account_id": str(account.id)})


@dataclass(frozen=True)
class SessionView:
    """A session as its holder sees it (SessionSchema): never a token id or an end reason."""

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    current: bool


def list_sessions(window: Window, account: Actor, claims: dict[str, Any]) -> tuple[list[SessionView], int]:
    """One page of the account's live sessions, oldest first, each marked `current` or not."""
    rows, total = page_of(
        AccountSession, [AccountSession.account_id == account.id, *live_conditions(utcnow())], window
    )
    current = uuid.UUID(claims["sid"])
    views = [
        SessionView(
            row.id, row.created_at, row.last_used_at, row.expires_at, row.user_agent, row.id == current
        )
        for row in rows
    ]
    return views, total


def end_session(account: Actor, session_id: uuid.UUID) -> None:
    """End one of the account's own live sessions; 404 for another account's, or none."""
    with write_transaction():
        ended = end_sessions(account.id, EndReason.ENDED_BY_HOLDER, AccountSession.id == session_id)
    if not ended:
        raise ProblemError(404, "No such session.")


def end_other_sessions(account: Actor, claims: dict[str, Any]) -> None:
    """End every live session of the account but the one of the token used."""
    with write_transaction():
        end_sessions(account.id, EndReason.ENDED_BY_HOLDER, keep=claims["sid"])
