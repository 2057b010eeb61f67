"""HTTP caching and the server-side cache, both keyed by a version the database keeps.

Every write to survivor data bumps one counter row in the same transaction (write_transaction
does it, for the data sets the write declares: api/database.py). A list or report's
ETag is that version plus the representation (route and validated query), so a 304 costs one
read of the version and no serialising, and its rendered body is cached with the version it was
rendered at: a copy older than the last write is never served, by any worker or replica. Single
survivors use their own row version. Cached bodies are JSON (never pickle), in Redis when
REDIS_URL is set; the version is then read from its Redis mirror (api/mirror.py) in the same
MGET as the cached body, and the database is not asked at all.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from cachelib.serializers import JSONSerializer
from flask import Flask, Response, request
from flask_caching import Cache
from sqlalchemy import BigInteger, String, bindparam, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from api import mirror
from api.arguments import canonical_url, validated_query
from api.extensions import db
from api.redis_store import redis_client

CACHE_CONTROL = "private, no-cache"
SURVIVORS = "survivors"
CACHE_SECONDS = 300
# Lists cache their first pages by number only (page 1..3, any page_size, each filter value).
CACHED_PAGES = 3

cache = Cache()


class DataVersion(db.Model):  # type: ignore[name-defined,misc]
    """A counter per data set, bumped by every write that changes its representations."""

    __tablename__ = "data_versions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)


def bump(session: Session, name: str) -> None:
    """Invalidate every cached representation of `name`.

    write_transaction's alone to call, last before its commit, for the data sets the block
    declared: services declare (write_transaction(changes=...), mark_changed), never bump.
    """
    session.execute(
        update(DataVersion).where(DataVersion.name == name).values(version=DataVersion.version + 1)
    )


# Built once (read on every list GET): SQLAlchemy memoises its cache key; each call binds a name.
VERSION_QUERY = select(DataVersion.version).where(DataVersion.name == bindparam("name"))


def current_version(name: str = SURVIVORS, fetched: Sequence[Any] | None = None) -> int:
    """The data set's version as committed now: from the Redis mirror when REDIS_URL is set and
    no write of it is committing (`fetched`: its two mirror keys, if already read), else from the
    database (api/mirror.py)."""

    def load() -> int:
        return db.session.connection().execute(VERSION_QUERY, {"name": name}).scalar() or 0

    return mirror.read(mirror.VERSION + name, load, str, int, fetched)


def _version_and_cached(key: str | None) -> tuple[int, Any]:
    """The survivors' version and the body cached under `key` (None: not cacheable), in one
    Redis MGET when REDIS_URL is set (the version's mirror keys and the cached body)."""
    client = redis_client()
    if client is None:
        return current_version(), None if key is None else cache.get(key)
    backend: Any = cache.cache
    names = mirror.keys(mirror.VERSION + SURVIVORS)
    fetched = client.mget([*names, backend.key_prefix + key] if key is not None else names)
    cached = None
    if key is not None:
        with contextlib.suppress(ValueError):  # not JSON: no entry (the render overwrites it)
            cached = backend.serializer.loads(fetched[2])
    return current_version(SURVIVORS, fetched[:2]), cached


def _usable(cached: Any, version: int) -> bool:
    """A cached entry of this version, in the shape versioned() stores; anything else (an older
    release's shape, a corrupt write) is no entry, and the render overwrites it."""
    return (
        isinstance(cached, dict)
        and cached.get("version") == version
        and isinstance(cached.get("body"), str)
        and isinstance(cached.get("link"), str | None)
    )


class _JSONCacheSerializer(JSONSerializer):
    """cachelib's JSON serializer, quiet about a missing key (Redis answers None)."""

    def loads(self, bvalue: Any, *args: Any, **kwargs: Any) -> Any:
        return None if bvalue is None else super().loads(bvalue, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Bind the cache: Redis when REDIS_URL is set (shared by all), else this process's memory."""
    redis_url = app.config.get("REDIS_URL")
    config: dict[str, Any] = {"CACHE_DEFAULT_TIMEOUT": CACHE_SECONDS, "CACHE_KEY_PREFIX": "resistance:"}
    if redis_url:
        # The app's one client (api/redis_store.py): cachelib takes a client as its host.
        config.update(CACHE_TYPE="RedisCache", CACHE_REDIS_HOST=app.extensions["redis"])
    else:
        config.update(CACHE_TYPE="SimpleCache", CACHE_THRESHOLD=2000)  # above the ~1,500 keys there are
    cache.init_app(app, config=config)
    for backend in app.extensions["cache"].values():
        backend.serializer = _JSONCacheSerializer()


def _not_modified(etag: str) -> Response | None:
    """A 304 for a client whose copy is current (If-None-Match compares weakly), else None."""
    if request.if_none_match.contains_weak(etag.strip('"')):
        return Response(status=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
    return None


def with_etag(etag: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    """Answer 304 when the client's copy is current, else the body with its ETag (and headers)."""
    not_modified = _not_modified(etag)
    if not_modified is not None:
        return not_modified
    return body, {**(headers or {}), "ETag": etag, "Cache-Control": CACHE_CONTROL}


def representation_digest() -> str:
    """This representation's name hashed short: the route, its path ids and its validated query,
    each written one way (api/arguments.py). Part of ETags and of cached bodies' keys, so neither
    can be varied by Host, by a parameter the schema did not accept, or by spelling."""
    return hashlib.sha256(canonical_url().encode()).hexdigest()[:16]


def url_etag(name: str, version: int, *parts: str, digest: str | None = None) -> str:
    """A strong ETag from a data set's version, the representation (its `digest`, if already
    made) and whatever else shapes the body."""
    return '"' + ".".join([name, str(version), *parts, digest or representation_digest()]) + '"'


def _cacheable() -> bool:
    """Only the first CACHED_PAGES pages by number: every other page is a cursor away anyway."""
    query = validated_query()
    return query.get("after") is None and query.get("before") is None and query.get("page", 1) <= CACHED_PAGES


def versioned(view: Callable[..., Response]) -> Callable[..., Response]:
    """For a GET whose body depends only on survivor data and its validated arguments (lists,
    reports).

    Goes outside @blp.response and inside @blp.arguments (an invalid query is 422 before any
    304). Authentication has already run (before_request), and the body is the same for every
    account, so one cached copy may serve them all. A body is cached under its representation
    alone, with the version it was rendered at inside: a newer version overwrites it, so the
    store holds at most one body per representation — a set bounded by the routes' arguments
    (about 1,500 entries, ~25 MB at most), whatever clients send and however often data changes.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        digest = representation_digest()
        key = f"view:{digest}"
        cacheable = _cacheable()
        version, cached = _version_and_cached(key if cacheable else None)
        etag = url_etag(SURVIVORS, version, digest=digest)
        not_modified = _not_modified(etag)
        if not_modified is not None:
            return not_modified
        if _usable(cached, version):
            response = Response(cached["body"], mimetype="application/json")
            if cached["link"]:
                response.headers["Link"] = cached["link"]
        else:
            response = view(*args, **kwargs)
            # The version was read before the body: a write committing in between may show in
            # the body, named by the older version. That errs one way only: the newer version
            # answers a revalidation with 200, never a 304 that keeps a stale body.
            if response.status_code == 200 and cacheable:
                body = response.get_data(as_text=True)
                cache.set(key, {"version": version, "body": body, "link": response.headers.get("Link")})
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = CACHE_CONTROL
        return response

    return wrapper


def if_match_allows(etag: str) -> bool:
    """True when there is no If-Match, or it names this ETag (or *)."""
    if "If-Match" not in request.headers:
        return True
    return request.if_match.contains(etag.strip('"'))
