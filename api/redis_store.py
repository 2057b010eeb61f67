"""The app's one Redis client (REDIS_URL), shared by readiness and the session check.

The limiter and the cache keep their own connections (their libraries make them); everything
else that talks to Redis goes through here, so timeouts are set once: a Redis that hangs costs
a request at most a second before it becomes a 503, never a stuck worker.
"""

from __future__ import annotations

from flask import current_app
from redis import Redis

TIMEOUT_SECONDS = 1.0


def redis_client() -> Redis | None:
    """This app's client (made on first use; connecting is lazy), or None without REDIS_URL."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    client: Redis | None = current_app.extensions.get("redis")
    if client is None:
        client = Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS)
        current_app.extensions["redis"] = client
    return client
