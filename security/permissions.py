"""Secure by default: every endpoint needs an access token unless marked otherwise; role checks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request
from flask_jwt_extended import current_user, verify_jwt_in_request

from api.problems import ProblemError

F = TypeVar("F", bound=Callable[..., Any])

ACCESS, REFRESH, PUBLIC = "access", "refresh", "public"
# Endpoints of libraries we do not decorate ourselves.
PUBLIC_ENDPOINTS = frozenset({"api-docs.openapi_json"})


def view_mark(name: str, value: Any) -> Callable[[F], F]:
    """A decorator that sets marker `name` on a view (function or MethodView method), for
    view_marker to read on the matched view of a request."""

    def decorate(function: F) -> F:
        setattr(function, name, value)
        return function

    return decorate


public = view_mark("_auth_mode", PUBLIC)
"""Mark a view (function or MethodView method) as open to anonymous callers."""

refresh_token_required = view_mark("_auth_mode", REFRESH)
"""Mark a view that takes a refresh token instead of an access token."""


def view_marker(name: str, default: Any) -> Any:
    """A marker set on the matched view (function or MethodView method), else default."""
    view: Any = current_app.view_functions[request.endpoint]  # type: ignore[index]
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        method = request.method.lower()
        view = getattr(view_class, "get" if method == "head" else method, None)
    return getattr(view, name, default)


def auth_mode() -> str | None:
    """How the matched endpoint authenticates; None when no endpoint matched (404/405 follow)."""
    endpoint = request.endpoint
    if endpoint is None:
        return None
    if endpoint in PUBLIC_ENDPOINTS:
        return PUBLIC
    return view_marker("_auth_mode", ACCESS)


def identify() -> None:
    """before_request: verify the token the matched endpoint takes, once, before the rate limiter.

    flask-jwt-extended checks everything a token must pass (signature, expiry, type, claims, its
    session, its account) in one verify_jwt_in_request; the limiter then keys on the account it
    proved (authenticated_account) and require_authentication answers a failure after the limit,
    so a flood of bad tokens is still limited per client IP and a 429 still wins over a 401.
    """
    mode = auth_mode()
    if mode not in (ACCESS, REFRESH):
        return
    try:
        verified = verify_jwt_in_request(refresh=mode == REFRESH)
    except Exception as failure:  # answered by require_authentication, after the rate limit
        g.authentication_failure = failure
        return
    if verified is not None:  # None: a method that needs no token (OPTIONS, JWT_EXEMPT_METHODS)
        g.authenticated_account = verified[1]["sub"]


def authenticated_account() -> str | None:
    """The account id (the token's `sub`) this request proved, else None (anonymous, a public
    route, or a token that failed)."""
    return g.get("authenticated_account")


def require_authentication() -> None:
    """before_request: the 401 (or outage) identify met, now that the rate limit has passed;
    nothing has read the body yet, so 401 wins over 413/415/422."""
    failure = g.pop("authentication_failure", None)
    if failure is not None:
        raise failure


def require_role(*roles: str) -> None:
    """403 unless the current account has one of the roles."""
    if current_user.role not in roles:
        raise ProblemError(403, "Your role does not allow this.")


def role_required(*roles: str) -> Callable[[F], F]:
    """Decorate a view so only the given roles may call it (authentication already happened)."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            require_role(*roles)
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
