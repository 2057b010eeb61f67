"""Token pairs: what an access and a refresh token carry, and how a verified one is held to it.

Every token names its session (`sid`, security/sessions.py); the session, not a list of token
ids, decides whether it is still good. The refresh token's `jti` is the one the session will take
next; both tokens expire no later than the session does.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token

from security.sessions import JTI_MAX_LENGTH, Grant


def issue_pair(account_id: Any, grant: Grant) -> dict[str, Any]:
    """A fresh access + refresh token pair of the granted session, as the login response body.

    Shape: {"access_token", "refresh_token", "token_type": "Bearer", "expires_in": seconds}. The
    access token lives JWT_ACCESS_TTL, the refresh token until the session's expiry; neither
    longer than the session.
    """
    identity = str(account_id)
    now = int(grant.issued_at.timestamp())
    session_end = int(grant.expires_at.timestamp())
    access_exp = min(now + int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()), session_end)
    claims = {"sid": grant.session_id, "iat": now}
    return {
        "access_token": create_access_token(
            identity=identity, additional_claims={**claims, "exp": access_exp}
        ),
        "refresh_token": create_refresh_token(
            identity=identity, additional_claims={**claims, "jti": grant.refresh_jti, "exp": session_end}
        ),
        "token_type": "Bearer",
        "expires_in": max(1, access_exp - now),
    }


def _is_whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_canonical_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def well_formed(claims: dict[str, Any]) -> bool:
    """True when a verified token carries the claims every token issue_pair makes.

    The signature already proves the token is ours; this refuses one minted without a jti (a
    session could not track it), without an integer exp and iat (we issue whole seconds; 1e300
    would never expire, and the session check compares iat with the last restore), without the
    canonical id of its session (it could never be ended) or of its account (`sub`: every
    per-account key — the rate limit's, the account's Redis mirror — is written one way), or of a
    type we never issue.
    """
    jti, exp, iat = claims.get("jti"), claims.get("exp"), claims.get("iat")
    return (
        isinstance(jti, str)
        and 0 < len(jti) <= JTI_MAX_LENGTH
        and claims.get("type") in ("access", "refresh")
        and _is_whole_number(exp)
        and _is_whole_number(iat)
        and _is_canonical_uuid(claims.get("sid"))
        and _is_canonical_uuid(claims.get("sub"))
    )


def decode_refresh_token(token: str) -> dict[str, Any] | None:
    """Verify a refresh token given in a body; None when it is not a valid refresh token."""
    try:
        claims = decode_token(token)
    except Exception:  # any decode failure means 'not a usable token'; the caller answers 422
        return None
    if claims.get("type") != "refresh" or not well_formed(claims):
        return None
    return claims
