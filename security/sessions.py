"""Sessions (OWASP ASVS 4.0.3 V3.3): one row per login, the durable record its tokens answer to.

A session starts at login; its access and refresh tokens carry its id (`sid`). Refreshing rotates
the pair within it: the row keeps the one refresh token (`jti`) that may be used next. A refresh
token that was rotated out and comes back means it was stolen (RFC 9700 §4.14.2), and the whole
session ends — except the token the last rotation replaced, within REFRESH_REUSE_GRACE seconds
of that rotation: the holder's second concurrent refresh, refused while the session lives
(exactly one new pair).
A session also ends at logout, when its holder ends it, when the account's password changes or
the account is disabled. It expires JWT_REFRESH_TTL after its last refresh, and SESSION_MAX_AGE
after login at the latest (ASVS V3.3.2: log in again periodically); no token outlives it.

Every request with a token asks one question, `session_ended(sid)`: one key per session, never a
list of token ids. Without REDIS_URL the database answers (one primary-key read). With it, Redis
answers from a mirror of the ended sessions, each key kept until the last token of its session
would have expired anyway; ending a session writes that key inside the database transaction, so a
Redis that cannot take it rolls the end back (503) and nothing is ended on one store only. Redis
may lose its data (a restart without persistence): an ended session must not come back to life
then. A marker key, written when Redis holds every ended session, goes with the data; a check
that finds it missing refills Redis from the database first and answers from the database. A
refill can read the database while an end is not yet committed, so the end writes its keys again
once it has committed (a refill only adds keys: the two never undo each other).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from redis import WatchError
from sqlalchemy import ForeignKey, Index, String, bindparam, case, delete, literal, select, update
from sqlalchemy.orm import Mapped, mapped_column

from api import mirror
from api.accounts.models import Account
from api.caching import current_version
from api.database import UTCDateTime, UUIDPrimaryKey, after_commit, utcnow, write_transaction
from api.extensions import db
from api.redis_store import SESSIONS_LOADED_KEY, redis_client

audit = logging.getLogger("resistance.audit")

JTI_MAX_LENGTH = 64
USER_AGENT_MAX_LENGTH = 256
ENDED_KEY = "resistance:session-ended:"
# Present while Redis holds every ended session; lost with Redis's data, which triggers a refill.
LOADED_KEY = SESSIONS_LOADED_KEY
# The data_versions row holding the time of the last restore from a backup, in µs (api/backup.py).
RESTORED = "restored"
# Held by the one refill under way (see _refill_redis); expires should that refill die.
REFILL_KEY = "resistance:sessions-refill"
REFILL_SECONDS = 30


class EndReason:
    """Why a session ended: the `reason` of the session.ended audit line and the stored row."""

    LOGOUT = "logout"
    REFRESH_TOKEN_REUSE = "refresh_token_reuse"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    ACCOUNT_DISABLED = "account_disabled"
    ENDED_BY_HOLDER = "ended_by_holder"
    RESTORED = "restored"  # the database was restored from a backup (api/backup.py)


class AccountSession(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """One login of an account, alive until ended_at is set or expires_at passes."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_account_created", "account_id", "created_at", "id"),)

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # When the session last issued tokens (login or refresh): accurate to the access-token lifetime.
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # No token of the session lives past this; the row may be deleted after it.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    refresh_jti: Mapped[str] = mapped_column(String(JTI_MAX_LENGTH), nullable=False)
    previous_refresh_jti: Mapped[str | None] = mapped_column(String(JTI_MAX_LENGTH), nullable=True)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX_LENGTH), nullable=True)

    def live(self, now: datetime) -> bool:
        """Neither ended nor expired at `now`."""
        return self.ended_at is None and self.expires_at > now


def live_conditions(now: Any) -> list[Any]:
    """The SQL form of AccountSession.live(now), for lists, bulk ends and the per-request check
    (`now` a datetime, or a bind parameter of one)."""
    return [AccountSession.ended_at.is_(None), AccountSession.expires_at > now]


def _new_jti() -> str:
    return str(uuid.uuid4())


def _refresh_expiry(created_at: datetime, now: datetime) -> datetime:
    """A refresh token issued now lives JWT_REFRESH_TTL, never past SESSION_MAX_AGE after login."""
    config = current_app.config
    return min(now + config["JWT_REFRESH_TOKEN_EXPIRES"], created_at + config["SESSION_MAX_AGE"])


def printable_user_agent(value: str | None) -> str | None:
    """The User-Agent kept to tell sessions apart: printable ASCII only, at most 256 characters."""
    if not value:
        return None
    kept = "".join(char for char in value if " " <= char <= "~")[:USER_AGENT_MAX_LENGTH].strip()
    return kept or None


@dataclass(frozen=True)
class Grant:
    """What a token pair is issued for: the session, its next refresh token's jti, its expiry,
    and the moment the expiry was counted from (the tokens' iat, so a refresh token lives
    exactly JWT_REFRESH_TTL even when the clock ticks a second between the two)."""

    session_id: str
    refresh_jti: str
    expires_at: datetime
    issued_at: datetime


def _grant(session: AccountSession, issued_at: datetime) -> Grant:
    return Grant(str(session.id), session.refresh_jti, session.expires_at, issued_at)


def start(account_id: uuid.UUID, verified_hash: str, user_agent: str | None) -> Grant | None:
    """Open a session for an account whose password was just checked against `verified_hash`;
    None when, by the time of the write, that is no longer its password or it was disabled.

    The account row is locked first (FOR UPDATE; SQLite's write transaction holds the database):
    a password change, a reset or a disable that committed while Argon2 ran has ended every
    session there was, and a login that checked the old state must not add one after it. The
    account's expired sessions are deleted on the way (a bounded clean-up: only this account's
    rows); `flask sessions purge` does the same for every account.
    """
    now = utcnow()
    session = AccountSession(
        id=uuid.uuid4(),
        account_id=account_id,
        created_at=now,
        last_used_at=now,
        expires_at=_refresh_expiry(now, now),
        refresh_jti=_new_jti(),
        user_agent=printable_user_agent(user_agent),
    )
    with write_transaction() as transaction:
        account = transaction.execute(
            select(Account.password_hash, Account.disabled).where(Account.id == account_id).with_for_update()
        ).first()
        if account is None or account.disabled or account.password_hash != verified_hash:
            return None
        transaction.execute(
            delete(AccountSession).where(
                AccountSession.account_id == account_id, AccountSession.expires_at <= now
            )
        )
        transaction.add(session)
        grant = _grant(session, now)
    audit.info(
        "session started",
        extra={"event": "session.started", "account_id": str(account_id), "session_id": grant.session_id},
    )
    return grant


class Outcome:
    """What presenting a refresh token did (see rotate)."""

    ROTATED = "rotated"
    CONCURRENT = "concurrent"  # the holder's second refresh within the grace: refused, session lives
    REUSE_DETECTED = "reuse_detected"  # a rotated-out token came back: the session ended
    DEAD = "dead"  # the session had already ended, expired or was deleted


@dataclass(frozen=True)
class Rotation:
    """The result of rotate(): the outcome and, when ROTATED, what to issue the new pair for."""

    outcome: str
    grant: Grant | None = None


def rotate(session_id: str, jti: str, account_id: uuid.UUID) -> Rotation:
    """Present refresh token `jti` of session `session_id` of `account_id` (the token's `sub`):
    rotate, refuse or end the session.

    The row is locked for the decision (FOR UPDATE on PostgreSQL; SQLite's write transaction
    holds the database lock), so of two concurrent refreshes with one token exactly one rotates.
    Only the refresh token a rotation just replaced counts as a concurrent refresh within the
    grace; an older one, or any one after it, is reuse. A session of another account than the
    token's is refused as dead: a token that pairs them was not issued by us.
    """
    now = utcnow()
    grace = timedelta(seconds=current_app.config["REFRESH_REUSE_GRACE"])
    with write_transaction() as transaction:
        session = transaction.get(AccountSession, uuid.UUID(session_id), with_for_update=True)
        if session is None or session.account_id != account_id or not session.live(now):
            return Rotation(Outcome.DEAD)
        if jti == session.refresh_jti:
            session.previous_refresh_jti, session.refresh_jti = jti, _new_jti()
            session.rotated_at = session.last_used_at = now
            session.expires_at = _refresh_expiry(session.created_at, now)
            return Rotation(Outcome.ROTATED, _grant(session, now))
        rotated_at = session.rotated_at
        if jti == session.previous_refresh_jti and rotated_at is not None and now - rotated_at <= grace:
            return Rotation(Outcome.CONCURRENT)
        reuse = {"event": "session.reuse_detected", "account_id": str(account_id), "session_id": session_id}
        after_commit(lambda: audit.warning("refresh token reuse detected", extra=reuse))
        _end_where([AccountSession.id == session.id], EndReason.REFRESH_TOKEN_REUSE, now)
    return Rotation(Outcome.REUSE_DETECTED)


def end_sessions(account_id: uuid.UUID, reason: str, *only: Any, keep: str | None = None) -> list[str]:
    """End the account's live sessions (those matching `only`, all but `keep`); their ids.

    Call it inside a write transaction (write_transaction), so that what ends the sessions (a new
    password, a disable) and their end commit together, or not at all.
    """
    where = [AccountSession.account_id == account_id, *only]
    if keep is not None:
        where.append(AccountSession.id != uuid.UUID(keep))
    return _end_where(where, reason, utcnow())


def _end_where(where: list[Any], reason: str, now: datetime) -> list[str]:
    """UPDATE … RETURNING: end the live sessions matching `where`, and mirror each into Redis.

    An ended session's row is kept only as long as an access token of it could still be alive
    (JWT_ACCESS_TTL): its refresh tokens are refused by the row, or by its absence.
    """
    last_access = now + current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    statement = (
        update(AccountSession)
        .where(*where, *live_conditions(now))
        .values(
            ended_at=now,
            end_reason=reason,
            expires_at=case(
                (AccountSession.expires_at < last_access, AccountSession.expires_at), else_=last_access
            ),
        )
        .returning(AccountSession.id, AccountSession.account_id, AccountSession.expires_at)
        .execution_options(synchronize_session=False)
    )
    ended = db.session.execute(statement).all()
    if not ended:
        return []
    expiries = [(session_id, expires_at) for session_id, _account_id, expires_at in ended]

    def mirror_ends() -> None:
        client = redis_client()
        if client is not None:
            pipeline = client.pipeline(transaction=False)
            _mark_ended(pipeline, expiries, now)
            pipeline.execute()

    def log() -> None:
        for session_id, account_id, _expires_at in ended:
            audit.info(
                "session ended",
                extra={
                    "event": "session.ended",
                    "account_id": str(account_id),
                    "session_id": str(session_id),
                    "reason": reason,
                },
            )

    # Before the commit: a Redis that cannot take the end rolls it back (503), so it is never
    # ended in the database alone. After it too: a Redis that lost its data meanwhile may have
    # been refilled from the database before this commit, and marked complete without it.
    mirror_ends()
    after_commit(mirror_ends)
    after_commit(log)
    return [str(session_id) for session_id, _account_id, _expires_at in ended]


def _mark_ended(pipeline: Any, sessions: Sequence[tuple[Any, datetime]], now: datetime) -> None:
    """Queue one ended-session key per (id, expires_at), each kept until the last token of its
    session expires (at least a second)."""
    for session_id, expires_at in sessions:
        ttl = max(1, int((expires_at - now).total_seconds()) + 1)
        pipeline.set(ENDED_KEY + str(session_id), b"1", ex=ttl)


# Built once (SQLAlchemy memoises its cache key): each request only binds the id and the clock.
LIVE_QUERY = select(literal(1)).where(
    AccountSession.id == bindparam("id"), *live_conditions(bindparam("now", type_=UTCDateTime))
)


def _ended_in_database(session_id: str) -> bool:
    """One primary-key read; a session the database does not hold (deleted) counts as ended."""
    parameters = {"id": uuid.UUID(session_id), "now": utcnow()}
    return db.session.connection().execute(LIVE_QUERY, parameters).first() is None


def _refill_redis(client: Any) -> None:
    """Copy every ended session whose tokens may still be alive into Redis, then mark it complete.

    The marker is written only if Redis kept its data from before the database read to the
    write: a refill claims REFILL_KEY (one refill at a time; the others answer from the database)
    and WATCHes it, and a second loss while it reads (a FLUSHDB, a restart) empties the key, so the
    EXEC fails and the next check refills again. Otherwise an end committed during the read, whose
    own key that second loss took, would be missing from a Redis marked complete.
    """
    claim = uuid.uuid4().hex
    if not client.set(REFILL_KEY, claim, nx=True, ex=REFILL_SECONDS):
        return  # another refill is under way: this check answers from the database
    with client.pipeline() as pipeline:
        pipeline.watch(REFILL_KEY)
        if pipeline.get(REFILL_KEY) != claim.encode():
            return  # lost before the WATCH took hold
        now = utcnow()
        rows = db.session.execute(
            select(AccountSession.id, AccountSession.expires_at).where(
                AccountSession.ended_at.is_not(None), AccountSession.expires_at > now
            )
        ).all()
        pipeline.multi()
        _mark_ended(pipeline, rows, now)
        pipeline.set(LOADED_KEY, b"1")
        pipeline.delete(REFILL_KEY)
        try:
            pipeline.execute()
        except WatchError:  # Redis lost its data again meanwhile: no marker, the next check refills
            pass


def session_ended(session_id: str, issued_at: int, also: Sequence[str] = ()) -> bool:
    """True when the session a token names has ended (the per-request check, one key).

    `session_id` is the token's `sid`, in canonical form, and `issued_at` its `iat` (seconds;
    security.tokens.well_formed checked both first). Redis when configured (one MGET, with the
    marker, the time of the last restore from a backup, and the keys of the mirrored names `also`,
    which the request reads next: api/mirror.py), else the database. A session the database does
    not know (deleted after expiry, or started after the backup a restore brought back) counts as
    ended: the database says so by the missing row, Redis by a token issued before the restore.
    Raises RedisError when Redis is down: the request is a 503, never an unchecked token.
    """
    client = redis_client()
    if client is None:
        return _ended_in_database(session_id)
    names = [*also, mirror.VERSION + RESTORED]
    ended, loaded, *mirrored = client.mget([ENDED_KEY + session_id, LOADED_KEY, *mirror.keys(*names)])
    mirror.remember(names, mirrored)
    if loaded is None:  # Redis lost its data (or is new): refill it from the durable record
        _refill_redis(client)
        return _ended_in_database(session_id)
    return ended is not None or issued_at * 1_000_000 <= current_version(RESTORED)


def purge_expired(batch: int = 1000) -> int:
    """Delete sessions past their expiry (no token of theirs can be alive), in batches; how many.

    Safe at any time and from any replica: an expired row answers nothing a missing row does not.
    """
    deleted = 0
    while True:
        with write_transaction() as transaction:
            ids = select(AccountSession.id).where(AccountSession.expires_at <= utcnow()).limit(batch)
            count = len(
                transaction.execute(
                    delete(AccountSession)
                    .where(AccountSession.id.in_(ids))
                    .returning(AccountSession.id)
                    .execution_options(synchronize_session=False)
                ).all()
            )
        deleted += count
        if count < batch:
            return deleted
