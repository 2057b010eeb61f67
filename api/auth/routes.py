"""/api/v1/auth: register, login, refresh, logout, me, password change and sessions."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from flask import request
from flask.views import MethodView
from flask_jwt_extended import current_user, get_jwt

from api.accounts.models import Role
from api.accounts.schemas import RegisteredSchema, RegisterSchema
from api.accounts.services import create_account
from api.auth import services
from api.auth.schemas import (
    LoginSchema,
    LogoutSchema,
    MeSchema,
    PasswordChangeSchema,
    SessionPageSchema,
    SessionQuerySchema,
    TokenPairSchema,
)
from api.openapi import REFRESH_SCHEME, Blueprint
from api.pagination import Window, page_response
from api.schemas import NoBodySchema
from security.limiter import auth_rate_limited, password_rate_limited
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

        Public. Starts a new session (GET /api/v1/auth/sessions lists it). Usernames match
        case-insensitively; bad credentials, a malformed username and a disabled account all get
        the same 401. Strict per-IP RATELIMIT_AUTH bucket.
        """
        return services.login(body["username"], body["password"], request.headers.get("User-Agent"))


# OpenAPI link: what a client (and a stateful fuzzer) can do with a listed session.
SESSION_LINKS = {
    "EndSession": {
        "operationId": "deleteSessionById",
        "parameters": {"session_id": "$response.body#/items/0/id"},
        "description": "End the first listed session.",
    },
}


@blp.route("/refresh")
class Refresh(MethodView):
    @auth_rate_limited
    @refresh_token_required
    @blp.doc(security=[{REFRESH_SCHEME: []}])
    @blp.arguments(NoBodySchema, required=False)
    @blp.response(200, TokenPairSchema)
    def post(self, _body: dict[str, Any]) -> Any:
        """Rotate the session's token pair with its refresh token.

        Send the refresh token (not the access token, 401) as the bearer token. The used refresh
        token dies: presented again it is 401, and it means it was stolen (RFC 9700 §4.14.2):
        the whole session ends. Only the token the last refresh replaced, back within
        REFRESH_REUSE_GRACE seconds, is taken for a concurrent refresh of the same holder
        instead: 401, the session lives, exactly one new pair exists. Strict per-IP
        RATELIMIT_AUTH bucket.
        """
        return services.refresh(current_user, get_jwt())


@blp.route("/logout")
class Logout(MethodView):
    @blp.arguments(LogoutSchema(partial=True), required=False)
    @blp.response(204)
    def post(self, body: dict[str, Any]) -> None:
        """End the session of the access token used.

        Any account. Every token of the session (access and refresh) is 401 from then on, on
        every replica. A refresh_token of the account, when given, ends its session too.
        """
        services.logout(current_user, get_jwt(), (body or {}).get("refresh_token"))


@blp.route("/password")
class Password(MethodView):
    @password_rate_limited
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    @blp.alt_response(409, "Conflict")
    def post(self, body: dict[str, Any]) -> None:
        """Change your own password.

        Any account. The current password is required (403 when wrong); the new one follows the
        registration rules (422). Every other session of the account ends; this one stays. A
        RATELIMIT_AUTH bucket per account. 409 when the password changed meanwhile.
        """
        services.change_password(current_user, get_jwt(), body["current_password"], body["new_password"])


@blp.route("/sessions")
class Sessions(MethodView):
    @blp.arguments(SessionQuerySchema, location="query")
    @blp.response(200, SessionPageSchema)
    @blp.doc(responses={200: {"links": SESSION_LINKS}})
    def get(self, query: dict[str, Any]) -> Any:
        """List your live sessions.

        Any account. One entry per login that has neither ended nor expired, oldest first;
        `current` marks the session of the token used.
        """
        window = Window.of(query)
        items, total = services.list_sessions(window, current_user, get_jwt())
        return page_response(window, items, total)

    @blp.arguments(NoBodySchema, required=False)
    @blp.response(204)
    def delete(self, _body: dict[str, Any]) -> None:
        """End every session but this one.

        Any account. Their tokens are 401 from then on, on every replica.
        """
        services.end_other_sessions(current_user, get_jwt())


@blp.route("/sessions/<uuid:session_id>")
class SessionById(MethodView):
    @blp.arguments(NoBodySchema, required=False)
    @blp.response(204)
    def delete(self, _body: dict[str, Any], session_id: uuid.UUID) -> None:
        """End one of your sessions (this one too, if named).

        Any account. Another account's session, or one that has ended, is 404.
        """
        services.end_session(current_user, session_id)


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
            "survivor_id": current_user.survivor_id,
        }
