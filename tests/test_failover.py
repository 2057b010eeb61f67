"""A request that meets a PostgreSQL failover (README: PostgreSQL failover; issue 14): a write
reaching a node that a failover demoted is a 503 problem with Retry-After, never a 500 and never a
write, and the pool then reaches the new primary by itself. Runs on PostgreSQL in every pass,
with a database of its own made read-only the way a standby is."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask_migrate import upgrade
from sqlalchemy import make_url, select, text

from api.database import server_incarnation, utcnow
from api.extensions import db
from api.idempotency import IdempotencyKey
from tests.conftest import admin_sql, assert_problem, build_app, dispose, scratch_databases

REGISTER = "/api/v1/auth/register"


@pytest.fixture
def node() -> Iterator[tuple[str, str]]:
    """(the server's URL, a database of this test's own on it, migrated)."""
    with scratch_databases("failover") as (server, (url,)):
        migrated = build_app(url)
        with migrated.app_context():
            upgrade(directory=migrated.extensions["migrate"].directory)
        dispose(migrated)
        yield server, url


def _register(client: Any, name: str) -> Any:
    return client.post(REGISTER, json={"username": name, "password": "correct-battery-horse-42"})


def test_a_write_to_a_demoted_node_is_503_and_the_pool_finds_the_primary_again(node):
    server, url = node
    name = make_url(url).database
    app = build_app(url)
    try:
        client = app.test_client()
        assert _register(client, "before").status_code == 201  # the pool holds a writable connection
        admin_sql(server, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        admin_sql(server, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        # A failover demoted the node: new sessions are read-only, as on a standby.
        refused = _register(client, "during")
        assert_problem(refused, 503)
        assert refused.headers["Retry-After"] == "5"
        assert_problem(_register(client, "during"), 503)  # never a 500, never written
        admin_sql(server, f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        # A writable primary is reachable again: the read-only connections were dropped, not reused.
        assert _register(client, "after").status_code == 201
        assert _register(client, "during").status_code == 201  # the refused write never happened
    finally:
        dispose(app)


def test_database_url_naming_every_node_reaches_the_one_that_takes_writes(node):
    """libpq's multi-host URL with target_session_attrs=read-write: a node that is down is
    skipped, and a node that only reads is refused, so no write ever lands on a standby."""
    server, url = node
    database = make_url(url)
    hosts = f"host=127.0.0.1:1&host={database.host}:{database.port or 5432}"
    multi = f"postgresql+psycopg:///{database.database}?{hosts}&target_session_attrs=read-write"
    app = build_app(multi)
    try:
        client = app.test_client()
        assert _register(client, "through-the-second-node").status_code == 201
        admin_sql(server, f'ALTER DATABASE "{database.database}" SET default_transaction_read_only = on')
        admin_sql(
            server,
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database.database}'",
        )
        assert_problem(_register(client, "no-primary-left"), 503)
    finally:
        dispose(app)


def test_a_key_claimed_before_a_failover_is_taken_over_at_once_by_the_retry(node):
    """The drill's finding: a POST in flight when the primary's site was lost had committed its
    claim (replicated to the standby) and died with the old primary; its client's retries got
    409 until the 60 s lease ran out. A claim made on another server process is taken over at once;
    one made on this one still holds (its request may be running)."""
    _, url = node
    app = build_app(url)
    payload = json.dumps({"username": "claimed-before", "password": "correct-battery-horse-42"}).encode()
    fingerprint = hashlib.sha256(f"POST {REGISTER}\n".encode() + payload).hexdigest()
    try:
        with app.app_context():
            # Claimed by a replica whose sessions run in another TimeZone (PGTZ): the same server.
            db.session.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
            elsewhere = db.session.scalar(select(server_incarnation()))
            db.session.execute(text("SET TIME ZONE 'UTC'"))
            here = db.session.scalar(select(server_incarnation()))
            assert elsewhere == here and here.endswith("Z")
            for key, claimed_on in (
                ("on-this-server", elsewhere),
                ("on-the-lost-primary", "2026-01-01T00:00:00.000000Z"),
            ):
                db.session.add(
                    IdempotencyKey(
                        owner="ip:127.0.0.1",
                        key=key,
                        fingerprint=fingerprint,
                        claim="the-request-in-flight",
                        claimed_on=claimed_on,
                        lease_until=utcnow() + timedelta(seconds=60),
                        expires_at=utcnow() + timedelta(hours=24),
                    )
                )
            db.session.commit()
        client = app.test_client()

        def post(key: str) -> Any:
            return client.post(
                REGISTER, data=payload, content_type="application/json", headers={"Idempotency-Key": key}
            )

        held = post("on-this-server")
        assert_problem(held, 409)
        assert held.headers["Retry-After"] == "1"
        assert post("on-the-lost-primary").status_code == 201
        replayed = post("on-the-lost-primary")
        assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
        with app.app_context():
            row = db.session.get(IdempotencyKey, ("ip:127.0.0.1", "on-the-lost-primary"))
            assert row is not None and row.claimed_on == here
    finally:
        dispose(app)
