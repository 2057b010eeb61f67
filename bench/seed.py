"""Data for the benchmark, written in-process: the schema, accounts with tokens, survivors in bulk.

Accounts are made with the app's own create_account (the cheap test hash profile: nothing here
logs in with them except the login scenario's account, which a first login rehashes to the
production profile) and given tokens by the app's own issue_pair, so the server accepts them as
it accepts any token it issued. Survivors go in bulk, a million in minutes: COPY on PostgreSQL,
one transaction of executemany batches on SQLite, and — in the same transaction, as one big
write would — the survivor totals moved by what was loaded (counted as the rows stream past) and
the data version bumped once.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from api import create_app
from api.caching import SURVIVORS, DataVersion
from api.extensions import db
from api.survivors.models import ITEMS, POINTS, Survivor

PASSWORD = "bench-walk-password-7731"
GENDERS = ("female", "male", "non-binary", "unspecified")
BATCH = 20_000
# Survivors are "registered" one millisecond apart from here on: a stable, index-served order.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
INFECTED_EVERY = 20  # 5% of bulk survivors are infected (with the threshold's count of reports)

COLUMNS = (
    "id",
    "account_id",
    "name",
    "age",
    "gender",
    "latitude",
    "longitude",
    "infected",
    "infection_reports",
    "water",
    "food",
    "medication",
    "ammunition",
    "version",
    "created_at",
    "updated_at",
)


INFECTED_AT = COLUMNS.index("infected")
ITEMS_AT = tuple((item, COLUMNS.index(item)) for item in ITEMS)


@dataclass
class Tally:
    """What a bulk load adds to the survivor totals (api/survivors/totals.py), counted on the way."""

    survivors: int = 0
    infected: int = 0
    held: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ITEMS, 0))
    points_lost: int = 0

    def counted(self, rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """The rows unchanged, each one added to the tally as it passes."""
        held = self.held
        for row in rows:
            self.survivors += 1
            if row[INFECTED_AT]:
                self.infected += 1
                self.points_lost += sum(POINTS[item] * row[at] for item, at in ITEMS_AT)
            else:
                for item, at in ITEMS_AT:
                    held[item] += row[at]
            yield row

    def values(self) -> dict[str, int]:
        return {
            "survivors": self.survivors,
            "infected": self.infected,
            **self.held,
            "points_lost": self.points_lost,
        }


TOTALS_FIELDS = ("survivors", "infected", *ITEMS, "points_lost")


def totals_sql(placeholder: str) -> str:
    """UPDATE survivor_totals adding a tally, in a driver's placeholder style ("%({})s", ":{}")."""
    added = ", ".join(f"{name} = {name} + {placeholder.format(name)}" for name in TOTALS_FIELDS)
    return f"UPDATE survivor_totals SET {added}"


@dataclass
class Member:
    """A seeded account: its token and, when it has one, its survivor profile."""

    username: str
    account_id: uuid.UUID
    token: str
    survivor_id: uuid.UUID | None = None


def refuse_test_database(url: str) -> None:
    """The harness empties its PostgreSQL database: never one of the test suite's (test, test_*)."""
    name = make_url(url).database or ""
    if name == "test" or name.startswith("test_"):
        raise SystemExit(f"bench: refusing to empty {name!r}, a test database: give the benchmark its own")


def reset_database(url: str) -> None:
    """An empty database: PostgreSQL's public schema dropped and made again, a SQLite file removed."""
    if url.startswith("postgresql"):
        refuse_test_database(url)
        from tests.conftest import drop_public_schema

        drop_public_schema(url)
        return
    path = make_url(url).database
    if path:
        for suffix in ("", "-wal", "-shm", ".start-lock"):
            Path(path + suffix).unlink(missing_ok=True)


def seeding_app(environ: Mapping[str, str]) -> Flask:
    """An app on the benchmark's database with the server's settings, its schema at head."""
    from flask_migrate import upgrade

    app = create_app(dict(environ), PASSWORD_HASH_PROFILE="fast-tests")
    # create_app sends the app's log lines (audit: every account made) to stdout: the harness's
    # output stays readable with warnings and errors only.
    for name in ("resistance", "resistance.audit", "resistance.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
    return app


def dispose(app: Flask) -> None:
    """Close the seeding app's connections."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def accounts(app: Flask, prefix: str, count: int, role: str = "survivor") -> list[Member]:
    """`count` accounts named prefix-N, each with an access token the server will accept."""
    from api.accounts.services import create_account
    from security.sessions import start
    from security.tokens import issue_pair

    made = []
    with app.app_context():
        for number in range(count):
            account = create_account(f"{prefix}-{number}", PASSWORD, role)
            username, account_id, verified = account.username, account.id, account.password_hash
            grant = start(account_id, verified, "bench")
            assert grant is not None  # noqa: S101 - the account was created just now
            made.append(Member(username, account_id, issue_pair(account_id, grant)["access_token"]))
        db.session.remove()
    return made


def _rows(start: int, count: int, owners: Sequence[uuid.UUID]) -> Iterator[tuple[Any, ...]]:
    """Survivor rows number start.. start+count-1 (deterministic but varied); the first ones owned."""
    for number in range(start, start + count):
        infected = number % INFECTED_EVERY == INFECTED_EVERY - 1 and number - start >= len(owners)
        created = EPOCH + timedelta(milliseconds=number)
        yield (
            uuid.uuid4(),
            owners[number - start] if number - start < len(owners) else None,
            f"Survivor {number}",
            18 + number % 60,
            GENDERS[number % 4],
            round((number * 0.618034) % 180 - 90, 4),
            round((number * 0.381966) % 360 - 180, 4),
            infected,
            3 if infected else 0,
            number % 11,
            number % 7,
            number % 5,
            number % 50,
            1,
            created,
            created,
        )


def survivor_count(app: Flask) -> int:
    """How many survivors the database holds."""
    with app.app_context():
        count = db.session.scalar(text("SELECT count(*) FROM survivors")) or 0
        db.session.remove()
    return int(count)


def bulk_survivors(app: Flask, count: int, owners: Sequence[uuid.UUID] = ()) -> None:
    """Insert `count` survivors after those already there (the first len(owners) linked to those
    accounts), bump the data version once, and refresh the planner's statistics."""
    if count <= 0:
        return
    start = survivor_count(app)
    tally = Tally()
    rows = tally.counted(_rows(start, count, owners))
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "postgresql":
            _copy_postgres(engine, rows, tally)
            # VACUUM too: it sets the visibility map that lets deep pages walk the index alone
            # (autovacuum would, a while after a load this size). Not inside a transaction.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM (ANALYZE) survivors"))
        else:
            _insert_sqlite(engine, rows, tally)
            with engine.begin() as connection:
                connection.execute(text("ANALYZE survivors"))
        db.session.remove()


BUMP_SQL = "UPDATE data_versions SET version = version + 1 WHERE name = %(name)s"


def _bump() -> Any:
    return update(DataVersion).where(DataVersion.name == SURVIVORS).values(version=DataVersion.version + 1)


def _copy_postgres(engine: Any, rows: Iterator[tuple[Any, ...]], tally: Tally) -> None:
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        # One transaction, explicitly: the app's engine reads in autocommit (api/database.py), and
        # the rows, their totals and the version bump must land together or not at all.
        with connection.transaction(), connection.cursor() as cursor:
            with cursor.copy(f"COPY survivors ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(totals_sql("%({})s"), tally.values())
            cursor.execute(BUMP_SQL, {"name": SURVIVORS})
    finally:
        raw.close()


def _insert_sqlite(engine: Any, rows: Iterator[tuple[Any, ...]], tally: Tally) -> None:
    table = Survivor.__table__
    with engine.begin() as connection:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(dict(zip(COLUMNS, row, strict=True)))
            if len(batch) == BATCH:
                connection.execute(table.insert(), batch)
                batch = []
        if batch:
            connection.execute(table.insert(), batch)
        connection.execute(text(totals_sql(":{}")), tally.values())
        connection.execute(_bump())


def link_profiles(app: Flask, members: Sequence[Member]) -> None:
    """Give each member its survivor profile (bulk, one write) and remember the ids."""
    bulk_survivors(app, len(members), [member.account_id for member in members])
    with app.app_context():
        ids = dict(
            db.session.execute(
                select(Survivor.account_id, Survivor.id).where(
                    Survivor.account_id.in_([member.account_id for member in members])
                )
            ).all()
        )
        db.session.remove()
    for member in members:
        member.survivor_id = ids[member.account_id]


def unlinked_survivor_ids(app: Flask, limit: int) -> list[uuid.UUID]:
    """The ids of the first `limit` survivors no account owns (never reporters: they stay healthy)."""
    with app.app_context():
        ids = list(
            db.session.scalars(
                select(Survivor.id)
                .where(Survivor.account_id.is_(None))
                .order_by(Survivor.created_at, Survivor.id)
                .limit(limit)
            )
        )
        db.session.remove()
    return ids


def infection_report_rows(app: Flask) -> int:
    """How many infection reports are stored (first reports write one each; repeats none)."""
    with app.app_context():
        count = db.session.scalar(text("SELECT count(*) FROM infection_reports")) or 0
        db.session.remove()
    return int(count)


def sqlite_url(directory: Path) -> str:
    """A SQLite file for this run, in the run's scratch directory."""
    return "sqlite:///" + str(directory / "bench.db")


def deep_page(total: int, page_size: int = 20) -> int:
    """A page 80% of the way through the list (page 40000 of 20 at a million survivors)."""
    return max(1, math.floor(total * 0.8 / page_size))
