"""Rate limits: RATELIMIT_DEFAULT per account (per client IP when anonymous) on every /api/v1
route, and one stricter RATELIMIT_AUTH bucket per client IP shared by login, register and refresh.
A password change, which checks the current password, has a RATELIMIT_AUTH bucket of its own per
account: a stolen access token cannot guess the password at the default rate from many addresses.

A Limiter is built per app (flask-limiter keeps its storage and limits on the instance), with
limits' sliding window counter (two counters per key, whatever the limit's size) in Redis when
REDIS_URL is set, else in process memory (one worker: see config). The limit is checked after the
token is verified (it keys on the account proved) and before its 401 is answered, so a flood of
bad tokens is limited per client IP. In Redis, a limit costs one round trip per request: the
entry is taken and the window the RateLimit-* headers show is read in one pipeline
(OneTripRedisStorage).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, cast

from flask import Flask, Response, g, has_request_context, request
from flask_limiter import ApplicationLimit, Limiter, RequestLimit
from limits.storage import RedisStorage
from redis import Redis
from redis.exceptions import NoScriptError
from werkzeug.middleware.proxy_fix import ProxyFix

from security.permissions import authenticated_account, view_mark, view_marker

API_PREFIX = "/api/v1/"
ONE_TRIP_SCHEME = "resistance+"


class OneTripRedisStorage(RedisStorage):
    """limits' Redis storage, with the sliding window read back in the round trip that acquires.

    flask-limiter takes an entry (limits' acquire script), then asks for the window of the same
    key to fill the headers (limits' window script): two round trips. Here both of limits' own
    scripts go to Redis in one redis-py pipeline, and the window is kept in the request's `g` for
    that one read; any other read (or one outside a request) goes to Redis. The sliding window
    counter keeps two counters per key whatever the limit: O(1) memory and time.
    Registered under the scheme `resistance+redis://` (limits picks storages by scheme).
    """

    STORAGE_SCHEME = [ONE_TRIP_SCHEME + "redis", ONE_TRIP_SCHEME + "rediss"]

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri.removeprefix(ONE_TRIP_SCHEME), **options)

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        keys = [
            self.prefixed_key(self._previous_window_key(key)),
            self.prefixed_key(self._current_window_key(key)),
        ]
        scripts = (self.lua_acquire_sliding_window, self.lua_sliding_window)
        connection = cast(Redis, self.get_connection())
        pipeline = connection.pipeline(transaction=False)
        pipeline.evalsha(scripts[0].sha, len(keys), *keys, limit, expiry, amount)
        pipeline.evalsha(scripts[1].sha, len(keys), *keys, expiry)
        acquired, window = pipeline.execute(raise_on_error=False)
        if isinstance(acquired, NoScriptError) or isinstance(window, NoScriptError):
            for script in scripts:  # a restarted or flushed Redis forgot them: load them again
                script.sha = connection.script_load(script.script)
            if isinstance(acquired, NoScriptError):  # nothing was taken: take it now
                return self.acquire_sliding_window_entry(key, limit, expiry, amount)
        if isinstance(acquired, Exception):
            raise acquired
        if has_request_context() and not isinstance(window, Exception):
            g.setdefault("_limit_windows", {})[key] = _sliding_window(window, expiry)
        return bool(acquired)

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        if has_request_context():
            window: tuple[int, float, int, float] | None = g.get("_limit_windows", {}).pop(key, None)
            if window is not None:
                return window
        return super().get_sliding_window(key, expiry)


def _sliding_window(raw: list[Any], expiry: int) -> tuple[int, float, int, float]:
    """limits' window script's answer as RedisStorage.get_sliding_window gives it: (previous
    count, seconds it has left, current count, seconds it has left).

    Read in the round trip that made the counter, its TTL is still exactly two windows, which
    limits' reset (TTL modulo the window) would read as "resets now" (RateLimit-Reset: 0 on a
    fresh bucket); a millisecond less is what any later read sees, and it reads as a whole window.
    """
    current_ttl_ms = max(0, float(raw[3] or 0))
    if current_ttl_ms == 2 * expiry * 1000:
        current_ttl_ms -= 1
    return (
        int(raw[0] or 0),
        max(0, float(raw[1] or 0)) / 1000,
        int(raw[2] or 0),
        current_ttl_ms / 1000,
    )


AUTH_SCOPE, PASSWORD_SCOPE = "auth", "password"


auth_rate_limited = view_mark("_rate_scope", AUTH_SCOPE)
"""Mark a view as part of the strict per-IP authentication bucket (RATELIMIT_AUTH)."""

password_rate_limited = view_mark("_rate_scope", PASSWORD_SCOPE)
"""Mark a view that checks the current password: RATELIMIT_AUTH per account."""


def client_ip() -> str:
    """The socket peer, or the X-Forwarded-For hop TRUSTED_PROXIES says to trust (ProxyFix)."""
    return request.remote_addr or "unknown"


def account_or_ip() -> str:
    """Per account when the request proved one (security.permissions.identify ran before the
    limiter), else per client IP: a token that failed counts as anonymous."""
    account = authenticated_account()
    return "ip:" + client_ip() if account is None else "account:" + account


UNMATCHED = "<unmatched>"


def request_identity() -> str:
    """What flask-limiter limits a request as: its endpoint, or UNMATCHED for a 404/405 (which
    flask-limiter would otherwise leave unlimited, so probing unknown paths cost nothing)."""
    return request.endpoint or UNMATCHED


def _not_api() -> bool:
    return not request.path.startswith(API_PREFIX)


def _outside(scope: str) -> Callable[[], bool]:
    """exempt_when for a scoped bucket: every request but those to a view marked with `scope`."""
    return lambda: request.endpoint is None or view_marker("_rate_scope", None) != scope


def _seconds_until(moment: float) -> int:
    return max(0, math.ceil(moment - time.time()))


def response_headers(limiter: Limiter) -> Callable[[Response], Response]:
    """after_request: RateLimit-Limit/-Remaining/-Reset (draft-ietf-httpapi-ratelimit-headers)
    of the limit nearest to refusing, and Retry-After on a 429 (RFC 9110 §10.2.3)."""

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
    """Build this app's limiter; flask-limiter registers its check as a before_request hook here,
    so api/pipeline.py calls this at the check's place in the order."""
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
        strategy="sliding-window-counter",
        # With Redis, the app's one client's pool (api/redis_store.py); the URI only picks the
        # storage class then (limits reads no address from it when given a pool).
        storage_uri=ONE_TRIP_SCHEME + "redis://" if redis_url else "memory://",
        storage_options={"connection_pool": app.extensions["redis"].connection_pool} if redis_url else {},
        key_prefix=config.get("RATELIMIT_KEY_PREFIX", "resistance"),
        request_identifier=request_identity,
        headers_enabled=False,
        swallow_errors=False,
    )
    limiter.init_app(app)
    return limiter
