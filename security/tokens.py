"""Issuing token pairs, refresh rotation and the revocation store shared by every worker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from sqlalchemy import String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from api.database import UTCDateTime, insert_ignore, utcnow
from api.extensions import db


class TokenSubject(Protocol):
    """What an account must offer to be issued tokens."""

    @property
    def id(self) -> Any: ...

    @property
    def token_generation(self) -> int: ...


JTI_MAX_LENGTH = 64


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


def revoke(jti: str, exp: int) -> bool:
    """Revoke a token; False when it was already revoked (so a refresh token rotates only once)."""
    expires_at = datetime.fromtimestamp(exp, UTC)
    # Keep the table small: drop entries whose tokens are dead by expiry anyway.
    db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))
    return insert_ignore(RevokedToken, {"jti": jti, "expires_at": expires_at})


def is_revoked(jti: str) -> bool:
    """True when the jti is in the revocation store."""
    return db.session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None


def decode_refresh_token(token: str) -> dict[str, Any] | None:
    """Verify a refresh token given in a body; None when it is not a valid refresh token."""
    try:
        claims = decode_token(token)
    except Exception:  # any decode failure means 'not a usable token'; the caller answers 422
        return None
    if claims.get("type") != "refresh" or not well_formed(claims):
        return None
    return claims
