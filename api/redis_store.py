"""The app's one Redis client (REDIS_URL), shared by everything that talks to Redis: the session
check, the mirror, readiness, the cache (flask-caching) and the rate limiter (limits).

One client means one connection pool, so timeouts are set once (a Redis that hangs costs a
request at most a second before it becomes a 503, never a stuck worker) and every connection is
checked the same way when it is made (below).

REDIS_URL is either one server, `redis://[[user]:password@]host:port/db` (or `rediss://`), or a
Redis Sentinel deployment, `redis+sentinel://[[user]:password@]host:port[,host:port…]/service[/db]`
(the scheme limits uses): redis-py asks the sentinels which server is the primary of `service`,
and asks again whenever a connection to it fails, so a Sentinel failover needs no restart. The
credentials are sent to the sentinels and to the Redis servers alike.

**A data set that may have missed writes is not trusted.** Redis replicates asynchronously: a
replica promoted by Sentinel lacks whatever the old primary acknowledged last, and a server
restarted without persistence lacks everything. What Redis holds copied from the database (the
mirror, the cached bodies, and the marker that says the ended sessions were loaded) could then
name a state the database left: a role taken away, a session ended. So each new connection reads
the server's replication ID (INFO replication `master_replid`, which a promotion and a restart
both change) and compares it with the one recorded in HISTORY_KEY. When they differ, one Lua
script deletes every copy (REBUILT_FROM_THE_DATABASE) and records the new ID, before the
connection serves anything: readers then go back to the database and the ended sessions are
loaded again (security/sessions.py). Rate-limit windows are not copies; a failover may lose the
last second of them, as a restart loses them all.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Flask, current_app
from redis import Redis
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
from redis.retry import Retry
from redis.sentinel import Sentinel

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 1.0
SENTINEL_SCHEME = "redis+sentinel"

# The Redis keyspace of what is copied from the database (whole keys, or prefixes).
MIRROR_VALUE_KEY = "resistance:mirror:"
MIRROR_WRITING_KEY = "resistance:writing:"
VIEW_KEY = "resistance:view:"
SESSIONS_LOADED_KEY = "resistance:sessions-loaded"
# SCAN MATCH patterns of everything the database rebuilds: forgotten after a restore (api/backup.py)
# and when a server's data set may have missed writes. Not the limits, not the ended sessions
# (they are reloaded from the database once SESSIONS_LOADED_KEY is gone).
REBUILT_FROM_THE_DATABASE = (
    MIRROR_VALUE_KEY + "*",
    MIRROR_WRITING_KEY + "*",
    VIEW_KEY + "*",
    SESSIONS_LOADED_KEY,
)
# The replication ID of the data set the copies were made in.
HISTORY_KEY = "resistance:redis-history"

# KEYS[1]: HISTORY_KEY; ARGV[1]: this server's replication ID ('' forgets unconditionally);
# ARGV[2…]: patterns. Returns 1 when the copies were forgotten. One script: atomic, one trip.
FORGET_SCRIPT = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
for i = 2, #ARGV do
  local cursor = '0'
  repeat
    local page = redis.call('SCAN', cursor, 'MATCH', ARGV[i], 'COUNT', 1000)
    cursor = page[1]
    for _, key in ipairs(page[2]) do redis.call('DEL', key) end
  until cursor == '0'
end
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""

_SERVICE_DB = re.compile(r"[A-Za-z0-9._-]{1,128}(/[0-9]{1,5})?")
_HOST_PORT = re.compile(r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+)):(?P<port>[0-9]{1,5})$")


def sentinel_parts(url: str) -> dict[str, Any]:
    """The parts of a `redis+sentinel://` URL: {"sentinels": [(host, port), …], "service": str,
    "db": int, "username": str | None, "password": str | None}. Raises ValueError naming what is
    wrong (a missing service name, a host without a port)."""
    if re.search(r"[\s\x00-\x1f\x7f?#]", url):
        raise ValueError("takes no spaces, control characters, query or fragment")
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    sentinels = []
    for item in hosts.split(","):
        match = _HOST_PORT.match(item)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise ValueError("names each sentinel as host:port, separated by commas")
        sentinels.append((match["ipv6"] or match["host"], int(match["port"])))
    service_db = parts.path.removeprefix("/").removesuffix("/")
    if not _SERVICE_DB.fullmatch(service_db):
        raise ValueError(
            "must end with /service or /service/db: the name the sentinels monitor (letters, digits,"
            " '.', '_', '-') and a database number"
        )
    service, _, db = service_db.partition("/")
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    return {
        "sentinels": sentinels,
        "service": service,
        "db": int(db) if db else 0,
        "username": unquote(username) or None,
        "password": unquote(password) or None,
    }


def _replication_id(connection: AbstractConnection) -> str:
    """The server's `master_replid`, or '' on a replica (it takes no writes, so no copies)."""
    connection.send_command("INFO", "replication")
    info: bytes = connection.read_response()  # the client never decodes responses (cachelib)
    fields = dict(line.split(":", 1) for line in info.decode().splitlines() if ":" in line)
    return fields.get("master_replid", "").strip() if fields.get("role", "").strip() == "master" else ""


def check_history(connection: AbstractConnection) -> None:
    """redis-py's hook for a new connection (redis_connect_func): its usual handshake, then the
    data set check described above. A RedisError here fails the connection (then a 503)."""
    connection.on_connect()
    replication_id = _replication_id(connection)
    if not replication_id:
        return
    connection.send_command("EVAL", FORGET_SCRIPT, 1, HISTORY_KEY, replication_id, *REBUILT_FROM_THE_DATABASE)
    if connection.read_response() == 1:
        log.warning(
            "redis data set is new to this app (a failover or a restart): its copies of the database"
            " are forgotten",
            extra={"replication_id": replication_id},
        )


def forget_copies(client: Redis) -> None:
    """Delete every copy of the database Redis holds, whatever its history (after a restore)."""
    client.eval(FORGET_SCRIPT, 1, HISTORY_KEY, "", *REBUILT_FROM_THE_DATABASE)


def make_client(url: str) -> Redis:
    """A client for REDIS_URL (one server, or the primary a Sentinel deployment names).

    No retries, for the servers nor the sentinels: a failed call is a 503 the client retries, and
    redis-py's own retries (10, by default, on a sentinel's connection) sleep in a blocking
    `time.sleep` it imported before gevent patched it, freezing the whole worker (the failover
    drill saw one frozen for 11 s a discovery while a lost site's sentinel timed out)."""
    timeouts = {"socket_timeout": TIMEOUT_SECONDS, "socket_connect_timeout": TIMEOUT_SECONDS}
    no_retries = {"retry": Retry(NoBackoff(), 0)}
    options: dict[str, Any] = {**timeouts, **no_retries, "redis_connect_func": check_history}
    if not url.startswith(SENTINEL_SCHEME + "://"):
        return Redis.from_url(url, **options)
    parts = sentinel_parts(url)
    credentials = {"username": parts["username"], "password": parts["password"]}
    sentinel = Sentinel(
        parts["sentinels"],
        sentinel_kwargs={**timeouts, **no_retries, **credentials},
        db=parts["db"],
        **credentials,
        **options,
    )
    return sentinel.master_for(parts["service"])


def init_app(app: Flask) -> None:
    """Make the app's client when REDIS_URL is set (connecting is lazy: nothing is sent yet)."""
    url = app.config.get("REDIS_URL")
    if url:
        app.extensions["redis"] = make_client(url)


def redis_client() -> Redis | None:
    """This app's client, or None without REDIS_URL."""
    client: Redis | None = current_app.extensions.get("redis")
    return client
