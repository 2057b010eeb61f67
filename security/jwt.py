"""JWTManager configured strictly, with every failure answered as 401 problem+json: the library
maps its exceptions onto the loader callbacks below, and each answers through
api/problems.token_refused with a detail of ours."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, Response, request
from flask_jwt_extended import JWTManager

from api.accounts.models import actor_name
from api.problems import CHALLENGE, token_refused
from security.sessions import session_ended
from security.tokens import well_formed

ISSUER = "resistance-api"
HEADER_TYPE = "Bearer"
AUDIENCE = "resistance-api-clients"


jwt = JWTManager()

AccountLoader = Callable[[str], Any]


# The detail of a token whose session ended (logout, theft, a password change, a disable…).
SESSION_ENDED = "The session has ended; log in again."


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None (RFC 6750 §2.1).

    The scheme is case-insensitive (RFC 9110 §11.1) and whitespace may follow it (flask-jwt-
    extended splits the same way); the token itself is a single word. Authentication, the rate
    limiter's key and the metrics token all read the header through here, so they never disagree
    about who is asking.
    """
    words = request.headers.get("Authorization", "").split()
    if len(words) != 2 or words[0].lower() != HEADER_TYPE.lower():
        return None
    return words[1]


def normalise_authorization() -> None:
    """before_request: rewrite a bearer credential to the `Bearer <token>` form flask-jwt-extended
    compares exactly, so `bearer` and `BEARER` authenticate as RFC 9110 §11.1 says they must. The
    scheme with no token at all (`Bearer `, a client whose token variable was empty) is no
    credential: answered like a missing header (RFC 6750 §3.1), not as a malformed token."""
    token = bearer_token()
    if token is not None:
        request.environ["HTTP_AUTHORIZATION"] = f"{HEADER_TYPE} {token}"
    elif request.headers.get("Authorization", "").strip().lower() == HEADER_TYPE.lower():
        del request.environ["HTTP_AUTHORIZATION"]


def configure(app: Flask) -> None:
    """Pin algorithm, issuer, audience and token location before the manager binds."""
    app.config.update(
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_ENCODE_ISSUER=ISSUER,
        JWT_DECODE_ISSUER=ISSUER,
        JWT_ENCODE_AUDIENCE=AUDIENCE,
        JWT_DECODE_AUDIENCE=AUDIENCE,
        JWT_TOKEN_LOCATION=["headers"],
        JWT_HEADER_NAME="Authorization",
        JWT_HEADER_TYPE=HEADER_TYPE,
        JWT_DECODE_LEEWAY=0,
        JWT_ERROR_MESSAGE_KEY="detail",
        JWT_COOKIE_CSRF_PROTECT=False,
    )
    for key in ("JWT_ACCESS_TOKEN_EXPIRES", "JWT_REFRESH_TOKEN_EXPIRES"):
        if isinstance(app.config[key], int):
            app.config[key] = timedelta(seconds=app.config[key])


def init_app(app: Flask, load_account: AccountLoader) -> None:
    """Bind the JWT manager; load_account(sub) returns the enabled account or None."""
    configure(app)
    jwt.init_app(app)

    @jwt.user_lookup_loader
    def _lookup(_header: dict[str, Any], claims: dict[str, Any]) -> Any:
        return load_account(claims["sub"])

    @jwt.token_in_blocklist_loader
    def _session_ended(_header: dict[str, Any], claims: dict[str, Any]) -> bool:
        # flask-jwt-extended asks this before the claims check below: a token without a session
        # id is left for that check to refuse.
        # The account's state is fetched in the same Redis round trip, for _lookup next.
        return well_formed(claims) and session_ended(
            claims["sid"], claims["iat"], also=[actor_name(claims["sub"])]
        )

    @jwt.token_verification_loader
    def _claims_ok(_header: dict[str, Any], claims: dict[str, Any]) -> bool:
        return well_formed(claims)

    @jwt.unauthorized_loader
    def _missing(_reason: str) -> Response:
        return token_refused("A bearer token is required in the Authorization header.", CHALLENGE)

    @jwt.invalid_token_loader
    def _invalid(_reason: str) -> Response:
        return token_refused("The token is malformed, wrongly signed or of the wrong type.")

    @jwt.expired_token_loader
    def _expired(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
        return token_refused("The token has expired.")

    @jwt.revoked_token_loader
    def _was_revoked(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
        return token_refused(SESSION_ENDED)

    @jwt.needs_fresh_token_loader
    def _not_fresh(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
        return token_refused("A fresh token is required.")

    @jwt.token_verification_failed_loader
    def _claims_failed(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
        return token_refused("The token's claims were refused.")

    @jwt.user_lookup_error_loader
    def _no_account(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
        return token_refused("The token's account is disabled or no longer valid.")
