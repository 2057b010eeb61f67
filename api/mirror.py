"""State read on every request, mirrored in Redis so a cached read needs no database round trip.

With REDIS_URL, an account's state (the actor a token acts as) and the data versions (the ETags
and cached bodies of lists and reports) are answered from Redis, in the same MGET as the rest of
what a request asks there. Without it they are read from the database, as before. The mirror
obeys two rules: once a write's response is sent, no reader anywhere sees what it replaced; and a
Redis that lost its data (a restart without persistence) answers nothing it did not get from the
database afterwards. For each mirrored name (`account:<id>`, `version:survivors`) Redis holds:

- `resistance:mirror:<name>`: the value as the database last had it; a TTL of MIRROR_SECONDS
  bounds how long a change made outside the API (SQL typed by hand) goes unseen;
- `resistance:writing:<name>`: how many writes of it are committing now.

A write declares the names it changes (api/database.py: write_transaction's data sets, and
mark_stale). Right before COMMIT it deletes each value and counts itself in, in one MULTI: a Redis
that cannot take that rolls the write back (503), so nothing changes in the database that Redis
would go on denying. After COMMIT it deletes the value again and counts itself out.

A reader trusts a value only when no write of it is counted in; otherwise, or when there is no
value, it reads the database. When there was neither a value nor a write, it stores what it read,
under WATCH of both keys (redis-py's optimistic transaction): a write that counted itself in after
the WATCH makes the store fail, so a value read before a COMMIT is never stored after it; a write
that counted itself in before the WATCH is seen by it. A write whose count-out failed (Redis went
away after its COMMIT) leaves its count in: readers use the database until the count expires
(WRITING_SECONDS), and its value was deleted before the COMMIT.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flask import g
from redis import RedisError, ResponseError, WatchError

from api.redis_store import MIRROR_VALUE_KEY, MIRROR_WRITING_KEY, redis_client

log = logging.getLogger(__name__)

T = TypeVar("T")

VALUE_KEY = MIRROR_VALUE_KEY
WRITING_KEY = MIRROR_WRITING_KEY
# A mirrored value is read again from the database at least this often (seconds).
MIRROR_SECONDS = 300
# A write is counted in from right before its COMMIT to right after it; a count that was never
# taken out (the process died, Redis went away) stops sending readers to the database after this.
WRITING_SECONDS = 60

ACCOUNT = "account:"
VERSION = "version:"


def keys(*names: str) -> list[str]:
    """The two keys of each name, in the order read() takes their values: [writing, value, …]."""
    return [key for name in names for key in (WRITING_KEY + name, VALUE_KEY + name)]


def remember(names: Sequence[str], fetched: Sequence[Any]) -> None:
    """Keep the values of keys(*names), read by this request in a larger MGET, for read()."""
    remembered = g.setdefault("mirror_fetched", {})
    for index, name in enumerate(names):
        remembered[name] = fetched[2 * index : 2 * index + 2]


def _idle(writing: bytes | None) -> bool:
    """No write of the name is committing (a count that went back to 0, or none at all); a count
    that is not an integer is taken as a write in progress (the database answers)."""
    if writing is None:
        return True
    try:
        return int(writing) <= 0
    except ValueError:
        return False


def read(
    name: str,
    load: Callable[[], T],
    encode: Callable[[T], str],
    decode: Callable[[bytes], T],
    fetched: Sequence[Any] | None = None,
) -> T:
    """The value of `name`: from Redis when it can be trusted, else `load()` from the database.

    `fetched` is [writing, value] when the caller already read keys(name) in a larger MGET (or
    remembered them earlier in the request); else they are read here. Without REDIS_URL, always
    load(). Raises RedisError when Redis fails (the request is a 503, never an answer from a
    mirror that could not be checked).
    """
    client = redis_client()
    if client is None:
        return load()
    if fetched is None:
        fetched = g.get("mirror_fetched", {}).pop(name, None) or client.mget(keys(name))
    writing: Any
    value: Any
    writing, value = fetched
    if not _idle(writing):
        return load()
    if value is not None:
        try:
            return decode(value)
        except Exception:  # any value it cannot read is no value: dropped, then read again
            log.warning("dropped a mirrored value that could not be decoded", extra={"mirror": name})
            client.delete(VALUE_KEY + name)
    return _fill(client, name, load, encode)


def _fill(client: Any, name: str, load: Callable[[], T], encode: Callable[[T], str]) -> T:
    """load() and store it, unless a write counted itself in or stored a value since the WATCH."""
    writing_key, value_key = keys(name)
    with client.pipeline() as pipeline:
        pipeline.watch(writing_key, value_key)
        writing, value = pipeline.mget(writing_key, value_key)
        loaded = load()
        if _idle(writing) and value is None:
            pipeline.multi()
            pipeline.set(value_key, encode(loaded), ex=MIRROR_SECONDS)
            try:
                pipeline.execute()
            except WatchError:  # a write began: it deletes the value itself; store nothing
                pass
    return loaded


def _counting(client: Any, names: Sequence[str], step: int) -> Any:
    """One MULTI that deletes each name's value and moves its write count by `step`."""
    pipeline = client.pipeline(transaction=True)
    for name in names:
        writing_key, value_key = keys(name)
        pipeline.delete(value_key)
        pipeline.incrby(writing_key, step)
        pipeline.expire(writing_key, WRITING_SECONDS)
    return pipeline


def count_in(names: Sequence[str]) -> Callable[[], None] | None:
    """Before COMMIT: delete each value and count the write in, in one MULTI; the count-out to
    call after COMMIT (or after a rollback), or None without REDIS_URL. Raises RedisError: the
    caller rolls the write back. A count that is not an integer (a corrupt key) is replaced."""
    client = redis_client()
    if client is None:
        return None
    try:
        _counting(client, names, 1).execute()
    except ResponseError:  # INCRBY refused a count that is not an integer: the values are gone
        log.warning("replaced a write count that was not an integer", extra={"mirror": list(names)})
        client.delete(*(WRITING_KEY + name for name in names))
        _counting(client, names, 1).execute()
    return lambda: _count_out(client, names)


def _count_out(client: Any, names: Sequence[str]) -> None:
    """Delete each value again and count the write out. A Redis that fails here is logged, not
    raised: the write is done, and its count, left in, keeps readers on the database until it
    expires."""
    try:
        _counting(client, names, -1).execute()
    except RedisError as error:
        log.warning(
            "a write could not be counted out of the Redis mirror (%s): readers use the database "
            "until its count expires",
            type(error).__name__,
        )
