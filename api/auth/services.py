"""Login, refresh rotation and logout: the token lifecycle of one account."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app

from api.accounts.models import Actor
from api.accounts.services import authenticate
from api.database import write_transaction
from api.problems import ProblemError
from security.jwt import CHALLENGE, INVALID_TOKEN_CHALLENGE
from security.tokens import decode_refresh_token, issue_pair, revoke

audit = logging.getLogger("resistance.audit")


def require_registration_open() -> None:
    """403 when the operator has closed self-registration (ALLOW_REGISTRATION=false)."""
    if not current_app.config["ALLOW_REGISTRATION"]:
        raise ProblemError(403, "Registration is closed on this server.")


def login(username: str, password: str) -> dict[str, Any]:
    """A token pair for good credentials; one identical 401 for every kind of bad ones."""
    account = authenticate(username, password)
    if account is None:
        audit.info("login failed", extra={"event": "auth.login_failed"})
        raise ProblemError(401, "Invalid username or password.", headers={"WWW-Authenticate": CHALLENGE})
    audit.info("login", extra={"event": "auth.login", "account_id": str(account.id)})
    return issue_pair(account)


def rotate(account: Actor, claims: dict[str, Any]) -> dict[str, Any]:
    """Trade a refresh token for a new pair; the used one dies, and only one caller may use it."""
    with write_transaction():
        first_use = revoke(claims["jti"], claims["exp"])
    if not first_use:  # a concurrent request used it between the blocklist check and here
        raise ProblemError(
            401, "The token has been revoked.", headers={"WWW-Authenticate": INVALID_TOKEN_CHALLENGE}
        )
    return issue_pair(account)


def logout(account: Actor, claims: dict[str, Any], refresh_token: str | None) -> None:
    """Revoke the access token used and, when given, the account's refresh token."""
    refresh_claims = None
    if refresh_token is not None:
        refresh_claims = decode_refresh_token(refresh_token)
        if refresh_claims is None or refresh_claims["sub"] != str(account.id):
            raise ProblemError(
                422,
                "refresh_token is not a valid refresh token of this account.",
                errors={"refresh_token": ["Not a valid refresh token of this account."]},
            )
    with write_transaction():
        revoke(claims["jti"], claims["exp"])
        if refresh_claims is not None:
            revoke(refresh_claims["jti"], refresh_claims["exp"])
    audit.info("logout", extra={"event": "auth.logout", "account_id": str(account.id)})
