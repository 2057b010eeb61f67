"""Idempotency-Key on POSTs (draft-ietf-httpapi-idempotency-key-header; docs/api.md, Idempotency-Key).

A client that did not hear back from a POST retries it with the same `Idempotency-Key` (1–255
printable ASCII characters), through any replica, after any failover: it gets the first response
again (status, body, Location…, and `Idempotent-Replayed: true`) and nothing is done twice. The
same key with another request (method, path or body) is 422; while the first is still being
processed, 409 with Retry-After. Keys are per account (per client IP when anonymous) and kept 24
hours.

How: before the view (bodies.read_json_body has read the body), the key is claimed in a row of
its own, committed at once, so a concurrent duplicate sees it and gets 409. The request's writes
then run as SAVEPOINTs of one transaction (api/database.py join_request_transaction), and the
response is written into the claimed row in that same transaction, right before its COMMIT: the
change and its stored response exist together or not at all. A 5xx is not stored (the claim is
released: a retry does the work). A claim whose request died (the worker was killed) is taken
over by a retry after LEASE_SECONDS; the dead request, had it gone on, finds its claim gone and
commits nothing. A claim committed on a database server process that is gone since (a failover
promoted a standby, or the server restarted: `claimed_on`) is taken over at once: the request's
transaction died with that process (and were it alive, it would commit nothing, as above), so
its client's retry need not get 409s for the rest of the lease.

Login and refresh answer with a new token pair, which is never stored: they ignore the header
(a repeated login opens another session; a refresh has its own grace, security/sessions.py).
So does the admin's robots refresh, which waits on the network and is harmless to repeat.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from datetime import datetime, timedelta

from flask import Response, current_app, g, request
from sqlalchemy import Integer, String, Text, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from api.database import (
    UTCDateTime,
    abandon_request_transaction,
    finish_request_transaction,
    insert_ignore,
    join_request_transaction,
    server_incarnation,
    utcnow,
    write_transaction,
)
from api.extensions import db
from api.problems import ProblemError
from security.limiter import account_or_ip

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")
KEEP = timedelta(hours=24)
LEASE_SECONDS = 60
# What a replay repeats of the first response, besides status and body.
KEPT_HEADERS = ("Content-Type", "Location", "ETag", "Link", "Cache-Control")
# POST endpoints that ignore the header (see the module docstring).
IGNORED_ENDPOINTS = frozenset({"auth.Login", "auth.Refresh", "robots.RobotsRefresh"})

log = logging.getLogger("resistance")


class IdempotencyKey(db.Model):  # type: ignore[name-defined,misc]
    """A claimed key: its request's fingerprint, and once answered, the answer."""

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    claim: Mapped[str] = mapped_column(String(32), nullable=False)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # The database server process the claim was committed on (api/database.py server_incarnation).
    claimed_on: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True, nullable=False)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    headers: Mapped[str | None] = mapped_column(Text, nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)


def takes_key() -> bool:
    """This request is a POST to an endpoint that takes an Idempotency-Key, and sent one (a path
    or method that matched nothing takes none: its 404 or 405 follows)."""
    endpoint = request.endpoint
    return (
        request.method == "POST"
        and HEADER in request.headers
        and endpoint is not None
        and endpoint not in IGNORED_ENDPOINTS
    )


def begin() -> Response | None:
    """before_request (last, after the body is read): claim the key, or answer from it."""
    if not takes_key():
        return None
    key = request.headers[HEADER]
    if not KEY_PATTERN.fullmatch(key):
        raise ProblemError(
            400,
            "The Idempotency-Key header must be 1 to 255 printable ASCII characters.",
            errors={HEADER: ["1 to 255 printable ASCII characters."]},
        )
    owner = account_or_ip()
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode() + request.get_data())
    claimed = _claim(owner, key, digest.hexdigest())
    if isinstance(claimed, Response):
        return claimed
    g.idempotency = (owner, key, claimed)
    join_request_transaction()
    return None


def _claim(owner: str, key: str, fingerprint: str) -> str | Response:
    """Claim (owner, key) for this request: its claim token, or the stored answer to replay;
    409 while another request holds it, 422 when it was used for another request."""
    now = utcnow()
    token = uuid.uuid4().hex
    lease_until = now + timedelta(seconds=LEASE_SECONDS)
    fresh = {"fingerprint": fingerprint, "claim": token, "lease_until": lease_until}
    with write_transaction() as session:
        claimed = {"owner": owner, "key": key, "expires_at": now + KEEP, "claimed_on": server_incarnation()}
        if insert_ignore(IdempotencyKey, {**claimed, **fresh}):
            return token
        row = session.get(IdempotencyKey, (owner, key), with_for_update=True, populate_existing=True)
        if row is None or row.expires_at <= now:  # purged or expired meanwhile: a new claim
            renewed = {"expires_at": now + KEEP, "status": None, "headers": None, "body": None, **fresh}
            here = session.scalar(select(server_incarnation()))
            session.merge(IdempotencyKey(owner=owner, key=key, claimed_on=here, **renewed))
            return token
        if row.fingerprint != fingerprint:
            raise ProblemError(
                422,
                "This Idempotency-Key was already used for another request; use a new key.",
                errors={HEADER: ["Already used for another request."]},
            )
        if row.status is not None:
            return _replay(row)
        here = session.scalar(select(server_incarnation()))  # only a claim still open asks
        if row.lease_until > now and row.claimed_on == here:
            raise ProblemError(
                409,
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                headers={"Retry-After": "1"},
            )
        # Its request died (its lease ran out, or its server process is gone): take it over.
        row.claim, row.lease_until, row.claimed_on = token, lease_until, here
        return token


def _replay(row: IdempotencyKey) -> Response:
    response = Response(row.body, status=row.status)
    response.headers.clear()
    response.headers.update(json.loads(row.headers or "{}"))
    response.headers[REPLAYED] = "true"
    return response


def finish(response: Response) -> Response:
    """after_request (first): store the answer with the request's writes and commit them
    together; a 5xx commits nothing and releases the key."""
    claimed = g.pop("idempotency", None)
    if claimed is None:
        return response
    owner, key, token = claimed
    if response.status_code >= 500:
        abandon_request_transaction()
        _release(owner, key, token)
        return response
    kept = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
    answer = {
        "status": response.status_code,
        "headers": json.dumps(kept),
        "body": response.get_data(as_text=True),
    }
    try:
        with finish_request_transaction() as session:
            stored = session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.owner == owner, IdempotencyKey.key == key, IdempotencyKey.claim == token
                )
                .values(**answer)
                .returning(IdempotencyKey.owner)
            ).first()
            if stored is None:  # a retry took the claim over: this request's work is undone
                raise ProblemError(
                    409,
                    "A retry with this Idempotency-Key took over from this request; its answer stands.",
                )
    except Exception as error:  # a refused or failed commit: answered as the app answers it
        _release(owner, key, token)  # nothing was done: a retry does the work (not a false 409)
        return current_app.make_response(current_app.handle_user_exception(error))
    return response


def _release(owner: str, key: str, token: str) -> None:
    """Free the key after a failure, so a retry does the work; a database that cannot take even
    that leaves the claim to expire (LEASE_SECONDS), after which a retry takes it over."""
    try:
        with write_transaction() as session:
            session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.owner == owner, IdempotencyKey.key == key, IdempotencyKey.claim == token
                )
            )
    except Exception as error:  # the response is already the failure; the lease bounds the rest
        log.warning("idempotency key not released", extra={"error": type(error).__name__})


def purge_expired() -> int:
    """Delete keys past their 24 hours; how many. Safe beside running servers."""
    with write_transaction() as session:
        expired = delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow())
        return len(session.execute(expired.returning(IdempotencyKey.key)).all())
