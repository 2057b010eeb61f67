"""Issuing token pairs, refresh rotation and the revocation store shared by every worker.

Revocations are written to the database, the durable record, in the caller's transaction; the
database also decides whether a refresh token is used for the first time (a unique key). With
REDIS_URL set they are written to Redis as well, with a TTL equal to the token's remaining life,
and every request's blocklist check reads Redis only: one key lookup shared by all replicas.

Redis may lose its data (a restart without persistence): a revocation must not come back to
life then. A marker key, written when Redis holds every live revocation, goes with the data; a
check that finds it missing reloads the unexpired revocations from the database first and
answers from the database. Redis unreachable: the check raises, and the request is a 503 —
never an unchecked token.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Protocol

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from sqlalchemy import String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from api.database import UTCDateTime, insert_ignore, utcnow
from api.extensions import db
from api.redis_store import redis_client


class TokenSubject(Protocol):
    """What an account must offer to be issued tokens."""

    @property
    def id(self) -> Any: ...

    @property
    def token_generation(self) -> int: ...


JTI_MAX_LENGTH = 64
REVOKED_KEY = "resistance:revoked:"
# Present while Redis holds every live revocation; lost with Redis's data, which triggers a reload.
LOADED_KEY = "resistance:revoked-loaded"


class RevokedToken(db.Model):  # type: ignore[name-defined,misc]
    """A revoked jti, kept until the token would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(JTI_MAX_LENGTH), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True, nullable=False)


def issue_pair(account: TokenSubject) -> dict[str, Any]:
    """A fresh access + refresh token pair for the account, as the login response body."""
    identity = str(account.id)
    claims = {"gen": account.token_generation}
    return {
        "access_token": create_access_token(identity=identity, additional_claims=claims),
        "refresh_token": create_refresh_token(identity=identity, additional_claims=claims),
        "token_type": "Bearer",
        "expires_in": int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
    }


def well_formed(claims: dict[str, Any]) -> bool:
    """True when a verified token carries the claims every token issue_pair makes.

    The signature already proves the token is ours; this refuses one minted without a jti (it
    could never be revoked), without an exp (it would never expire), with a jti the revocation
    store cannot hold, or of a type we never issue.
    """
    jti, exp, gen = claims.get("jti"), claims.get("exp"), claims.get("gen")
    return (
        isinstance(jti, str)
        and 0 < len(jti) <= JTI_MAX_LENGTH
        and claims.get("type") in ("access", "refresh")
        and isinstance(exp, int | float)
        and not isinstance(exp, bool)
        and isinstance(gen, int)
        and not isinstance(gen, bool)
    )


def _remaining_seconds(exp: float) -> int:
    """The Redis TTL of a revocation: the token's remaining life, at least a second."""
    return max(1, int(exp - time.time()) + 1)


def revoke(jti: str, exp: int) -> bool:
    """Revoke a token; False when it was already revoked (so a refresh token rotates only once)."""
    expires_at = datetime.fromtimestamp(exp, UTC)
    # Keep the table small: drop entries whose tokens are dead by expiry anyway.
    db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))
    first = insert_ignore(RevokedToken, {"jti": jti, "expires_at": expires_at})
    client = redis_client()
    if client is not None:
        client.set(REVOKED_KEY + jti, b"1", ex=_remaining_seconds(exp))
    return first


def _stored_revocation(jti: str) -> bool:
    return db.session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None


def _reload_redis(client: Any) -> None:
    """Copy every unexpired revocation from the database into Redis, then mark it complete."""
    rows = db.session.execute(
        select(RevokedToken.jti, RevokedToken.expires_at).where(RevokedToken.expires_at >= utcnow())
    ).all()
    pipeline = client.pipeline(transaction=False)
    for jti, expires_at in rows:
        pipeline.set(REVOKED_KEY + jti, b"1", ex=_remaining_seconds(expires_at.timestamp()))
    pipeline.set(LOADED_KEY, b"1")
    pipeline.execute()


def is_revoked(jti: str) -> bool:
    """True when the jti is in the revocation store (Redis when configured, else the database)."""
    client = redis_client()
    if client is None:
        return _stored_revocation(jti)
    revoked, loaded = client.mget(REVOKED_KEY + jti, LOADED_KEY)
    if loaded is None:  # Redis lost its data (or is new): refill it from the durable record
        _reload_redis(client)
        return _stored_revocation(jti)
    return revoked is not None


def decode_refresh_token(token: str) -> dict[str, Any] | None:
    """Verify a refresh token given in a body; None when it is not a valid refresh token."""
    try:
        claims = decode_token(token)
    except Exception:  # any decode failure means 'not a usable token'; the caller answers 422
        return None
    if claims.get("type") != "refresh" or not well_formed(claims):
        return None
    return claims
