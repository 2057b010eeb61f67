"""Issuing token pairs, refresh rotation and the revocation store shared by every worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


class RevokedToken(db.Model):  # type: ignore[name-defined,misc]
    """A revoked jti, kept until the token would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
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
    if claims.get("type") != "refresh":
        return None
    return claims


def access_ttl() -> timedelta:
    """The configured access token lifetime."""
    return current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
