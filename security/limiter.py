"""Rate limits: RATELIMIT_DEFAULT per account (per client IP when anonymous) on every /api/v1
route, and one stricter RATELIMIT_AUTH bucket per client IP shared by login, register and refresh.
A password change, which checks the current password, has a RATELIMIT_AUTH bucket of its own per
account: a stolen access token cannot guess the password at the default rate from many addresses.

A Limiter is built per app (flask-limiter keeps its storage and limits on the instance), with a
moving window in Redis when REDIS_URL is set, else in process memory (one worker: see config).
Limits are checked before authentication, so a flood of bad tokens is limited per client IP too.
In Redis, a limit costs one round trip per request: the script that takes an entry also reads
the window the RateLimit-* headers show (OneTripRedisStorage).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask_jwt_extended import decode_token
from flask_limiter import ApplicationLimit, Limiter, RequestLimit
from limits.storage import RedisStorage
from werkzeug.middleware.proxy_fix import ProxyFix

from security.jwt import bearer_token
from security.permissions import view_mark, view_marker

API_PREFIX = "/api/v1/"
REDIS_TIMEOUT_SECONDS = 1
ONE_TRIP_SCHEME = "resistance+"


class OneTripRedisStorage(RedisStorage):
    """limits' Redis storage, with the moving window read in the same script that acquires.

    flask-limiter takes an entry, then asks for the window of the same key to fill the headers:
    two scripts, two round trips. Here the acquiring script returns the window as well, kept in
    the request's `g` for that one read; any other read (or one outside a request) goes to Redis.
    Registered under the scheme `resistance+redis://` (limits picks storages by scheme).
    """

    STORAGE_SCHEME = [ONE_TRIP_SCHEME + "redis", ONE_TRIP_SCHEME + "rediss"]
    SCRIPT_ACQUIRE_AND_WINDOW = (Path(__file__).parent / "lua" / "acquire_and_window.lua").read_bytes()

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri.removeprefix(ONE_TRIP_SCHEME), **options)

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.lua_acquire_and_window = self.get_connection().register_script(self.SCRIPT_ACQUIRE_AND_WINDOW)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        timestamp = time.time()
        result = self.lua_acquire_and_window([self.prefixed_key(key)], [timestamp, limit, expiry, amount])
        window = (float(result[1]), int(result[2])) if len(result) == 3 else (timestamp, 0)
        if has_request_context():
            g.setdefault("_limit_windows", {})[key] = window
        return bool(result[0])

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        if has_request_context():
            window: tuple[float, int] | None = g.get("_limit_windows", {}).pop(key, None)
            if window is not None:
                return window
        return super().get_moving_window(key, limit, expiry)


AUTH_SCOPE, PASSWORD_SCOPE = "auth", "password"


auth_rate_limited = view_mark("_rate_scope", AUTH_SCOPE)
"""Mark a view as part of the strict per-IP authentication bucket (RATELIMIT_AUTH)."""

password_rate_limited = view_mark("_rate_scope", PASSWORD_SCOPE)
"""Mark a view that checks the current password: RATELIMIT_AUTH per account."""


def client_ip() -> str:
    """The socket peer, or the X-Forwarded-For hop TRUSTED_PROXIES says to trust (ProxyFix)."""
    return request.remote_addr or "unknown"


def account_or_ip() -> str:
    """Per account when the request carries a validly signed token, else per client IP.

    Only the signature and claims are checked here (no database): authentication proper
    follows, and a token that fails there still counted against its account.
    """
    token = bearer_token()
    if token is not None:
        try:
            return "account:" + str(decode_token(token)["sub"])
        except Exception:  # any bad token is simply anonymous for limiting purposes
            pass
    return "ip:" + client_ip()


def _not_api() -> bool:
    return not request.path.startswith(API_PREFIX)


def _outside(scope: str) -> Callable[[], bool]:
    """exempt_when for a scoped bucket: every request but those to a view marked with `scope`."""
    return lambda: request.endpoint is None or view_marker("_rate_scope", None) != scope


def _seconds_until(moment: float) -> int:
    return max(0, math.ceil(moment - time.time()))


def _headers(limiter: Limiter) -> Callable[[Response], Response]:
    def add(response: Response) -> Response:
        limits: list[RequestLimit] = limiter.current_limits
        if not limits:
            return response
        breached = [limit for limit in limits if limit.breached]
        shown = breached[0] if breached else min(limits, key=lambda limit: limit.remaining)
        reset = min(_seconds_until(shown.reset_at), shown.limit.get_expiry())
        response.headers["RateLimit-Limit"] = str(shown.limit.amount)
        response.headers["RateLimit-Remaining"] = str(max(0, shown.remaining))
        response.headers["RateLimit-Reset"] = str(reset)
        if response.status_code == 429:
            response.headers["Retry-After"] = str(max(1, reset))
        return response

    return add


def init_app(app: Flask) -> Limiter:
    """Build this app's limiter and register its check (call where it belongs in the hook order)."""
    config = app.config
    if config["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config["TRUSTED_PROXIES"])  # type: ignore[method-assign]
    redis_url = config.get("REDIS_URL")
    limiter = Limiter(
        key_func=account_or_ip,
        application_limits=[
            ApplicationLimit(
                config["RATELIMIT_DEFAULT"],
                key_function=account_or_ip,
                scope="default",
                exempt_when=_not_api,
            ),
            ApplicationLimit(
                config["RATELIMIT_AUTH"],
                key_function=lambda: "ip:" + client_ip(),
                scope=AUTH_SCOPE,
                exempt_when=_outside(AUTH_SCOPE),
            ),
            ApplicationLimit(
                config["RATELIMIT_AUTH"],
                key_function=account_or_ip,
                scope=PASSWORD_SCOPE,
                exempt_when=_outside(PASSWORD_SCOPE),
            ),
        ],
        # flask-limiter would also read RATELIMIT_DEFAULT as a per-route default limit: our
        # default is the one application-wide bucket above, so that reading is switched off.
        default_limits_exempt_when=lambda: True,
        strategy="moving-window",
        storage_uri=ONE_TRIP_SCHEME + redis_url if redis_url else "memory://",
        storage_options=(
            {"socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}
            if redis_url
            else {}
        ),
        key_prefix=config.get("RATELIMIT_KEY_PREFIX", "resistance"),
        headers_enabled=False,
        swallow_errors=False,
    )
    limiter.init_app(app)
    app.after_request(_headers(limiter))
    return limiter
