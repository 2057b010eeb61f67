"""/api/v1/auth: register, login, refresh, logout, me."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user, get_jwt

from api.accounts.models import Role
from api.accounts.schemas import RegisteredSchema, RegisterSchema
from api.accounts.services import create_account
from api.auth import services
from api.auth.schemas import LoginSchema, LogoutSchema, MeSchema, TokenPairSchema
from api.openapi import Blueprint
from api.survivors.services import survivor_id_of
from security.limiter import auth_rate_limited
from security.permissions import public, refresh_token_required

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and tokens.")


def registration_open(view: Callable[..., Any]) -> Callable[..., Any]:
    """403 on a closed server before the body is read: the request is refused whatever it says."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        services.require_registration_open()
        return view(*args, **kwargs)

    return wrapper


@blp.route("/register")
class Register(MethodView):
    @auth_rate_limited
    @public
    @blp.doc(security=[])
    @registration_open
    @blp.arguments(RegisterSchema)
    @blp.response(201, RegisteredSchema)
    @blp.alt_response(403, "Forbidden")
    @blp.alt_response(409, "Conflict")
    def post(self, body: dict[str, Any]) -> Any:
        """Register a survivor account.

        Public. Off when ALLOW_REGISTRATION=false (403, before the body is read); a username
        taken in any letter case is 409. Shares the strict per-IP RATELIMIT_AUTH bucket with
        login and refresh.
        """
        return create_account(body["username"], body["password"], Role.SURVIVOR)


@blp.route("/login")
class Login(MethodView):
    @auth_rate_limited
    @public
    @blp.doc(security=[])
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenPairSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Exchange credentials for an access and a refresh token.

        Public. Usernames match case-insensitively; bad credentials, a malformed username and a
        disabled account all get the same 401. Strict per-IP RATELIMIT_AUTH bucket.
        """
        return services.login(body["username"], body["password"])


@blp.route("/refresh")
class Refresh(MethodView):
    @auth_rate_limited
    @refresh_token_required
    @blp.response(200, TokenPairSchema)
    def post(self) -> Any:
        """Exchange a refresh token for a new pair; the used refresh token is revoked.

        Send the refresh token as the bearer token (an access token is refused with 401);
        presenting a used refresh token again is 401. Strict per-IP RATELIMIT_AUTH bucket.
        """
        return services.rotate(current_user, get_jwt())


@blp.route("/logout")
class Logout(MethodView):
    @blp.arguments(LogoutSchema(partial=True), required=False)
    @blp.response(204)
    def post(self, body: dict[str, Any]) -> None:
        """Revoke the access token used (and a refresh token, when given).

        Any account. Revocation takes effect at once on every replica.
        """
        services.logout(current_user, get_jwt(), (body or {}).get("refresh_token"))


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeSchema)
    def get(self) -> Any:
        """Describe the account the token belongs to.

        Any account. survivor_id is null when the account has no survivor profile.
        """
        return {
            "id": current_user.id,
            "username": current_user.username,
            "role": current_user.role,
            "survivor_id": survivor_id_of(current_user.id),
        }
