"""What the drill checks after the failover, on the new primary, and how long writes stopped.

lost: an acknowledged write (the client got a 2xx) that the database does not have:
  register  no account with that username
  login     no session with the id the token carries
  survivor  no survivor with the id the 201 gave
  trade     no trade with the id the 201 gave
  accept    the trade is not completed
  report    no infection report for that reporter and reported survivor

duplicated: a logical write (acknowledged or not: a retry that gave up may still have been
carried out once, never twice) found more than once:
  register  two accounts for one username (the unique key forbids it; checked anyway)
  survivor  two survivors with the one name chosen unique for that write
  trade     two trades with one proposal's signature (proposer, partner, size)
  accept    two "completed" events for one trade
  report    two reports for one reporter and reported survivor
Logins are not checked for duplicates: login ignores Idempotency-Key by design (its answer is
a new token pair), so a retried login may open a second session.

unavailable_s: the longest span without an acknowledged write, from the last one acknowledged
before the loss to the end of the load (the client's clock: when each 2xx arrived).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from tests.drill.load import Write


@dataclass
class Verdict:
    """The outcome of the checks: counts, and the writes behind each problem (for the log)."""

    acknowledged: int = 0
    lost: list[Write] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)


def _values(writes: Iterable[Write], kind: str, name: str) -> list[str]:
    """The `name` identifier of every write of `kind` that has one."""
    return [w.ident[name] for w in writes if w.kind == kind and name in w.ident]


def _counts(connection: psycopg.Connection[Any], sql: str, values: list[Any]) -> Counter[Any]:
    """{key: number of rows} from a query that returns (key, count) rows for `values`."""
    return Counter({row[0]: row[1] for row in connection.execute(sql, (values,)).fetchall()})


def verify(connection: psycopg.Connection[Any], writes: list[Write]) -> Verdict:
    """Check every write of the drill against the database behind `connection`."""
    verdict = Verdict(acknowledged=sum(1 for w in writes if w.acknowledged))

    def lose(kind: str, name: str, present: set[str] | Counter[Any]) -> None:
        """Every acknowledged write of `kind` whose identifier is not among what was found."""
        for write in writes:
            if write.kind == kind and write.acknowledged and write.ident.get(name) not in present:
                verdict.lost.append(write)

    def duplicates(kind: str, counts: Counter[Any]) -> None:
        """Every logical write of `kind` found more than once."""
        verdict.duplicated += [f"{kind} {key}: {count} rows" for key, count in counts.items() if count > 1]

    usernames = _values(writes, "register", "username")
    accounts = _counts(
        connection,
        "SELECT username, count(*) FROM accounts WHERE username = ANY(%s) GROUP BY username",
        usernames,
    )
    lose("register", "username", accounts)
    duplicates("register", accounts)

    sessions = {
        str(row[0])
        for row in connection.execute(
            "SELECT id FROM sessions WHERE id = ANY(%s::uuid[])", (_values(writes, "login", "session"),)
        )
    }
    lose("login", "session", sessions)

    names = _values(writes, "survivor", "name")
    survivors: dict[str, list[str]] = {}
    for name, survivor_id in connection.execute(
        "SELECT name, id FROM survivors WHERE name = ANY(%s)", (names,)
    ).fetchall():
        survivors.setdefault(name, []).append(str(survivor_id))
    lose("survivor", "id", {i for ids in survivors.values() for i in ids})
    duplicates("survivor", Counter({name: len(ids) for name, ids in survivors.items()}))

    signatures = {
        (w.ident["proposer"], w.ident["partner"], int(w.ident["size"])) for w in writes if w.kind == "trade"
    }
    trades: Counter[tuple[str, str, int]] = Counter()
    trade_ids: set[str] = set()
    rows = connection.execute(
        "SELECT id, proposer_id, partner_id, offer_water FROM trades WHERE proposer_id = ANY(%s::uuid[])",
        (sorted({proposer for proposer, _, _ in signatures}),),
    ).fetchall()
    for trade_id, proposer, partner, size in rows:
        signature = (str(proposer), str(partner), int(size))
        if signature in signatures:
            trades[signature] += 1
            trade_ids.add(str(trade_id))
    lose("trade", "id", trade_ids)
    duplicates("trade", trades)

    accepted = _values(writes, "accept", "trade")
    completed = {
        str(row[0])
        for row in connection.execute(
            "SELECT id FROM trades WHERE id = ANY(%s::uuid[]) AND status = 'completed'", (accepted,)
        )
    }
    lose("accept", "trade", completed)
    events = _counts(
        connection,
        "SELECT trade_id::text, count(*) FROM trade_events"
        " WHERE trade_id = ANY(%s::uuid[]) AND event = 'completed' GROUP BY trade_id",
        accepted,
    )
    duplicates("accept", events)

    pairs = {(w.ident["reporter"], w.ident["reported"]) for w in writes if w.kind == "report"}
    reports: Counter[tuple[str, str]] = Counter()
    for reporter, reported, count in connection.execute(
        "SELECT reporter_id, reported_id, count(*) FROM infection_reports"
        " WHERE reporter_id = ANY(%s::uuid[]) GROUP BY reporter_id, reported_id",
        (sorted({reporter for reporter, _ in pairs}),),
    ).fetchall():
        pair = (str(reporter), str(reported))
        if pair in pairs:
            reports[pair] = count
    for write in writes:
        pair = (write.ident.get("reporter", ""), write.ident.get("reported", ""))
        if write.kind == "report" and write.acknowledged and reports[pair] == 0:
            verdict.lost.append(write)
    duplicates("report", reports)
    return verdict


def outage(successes: list[float], lost_at: float, ended_at: float) -> tuple[float, bool]:
    """The longest span without an acknowledged write from the last one before `lost_at` on:
    (seconds, whether any write was acknowledged after `lost_at`).

    The longest, not just the first: a write the surviving site served before the loss may be
    acknowledged a moment after it, and the outage only begins after that. Without any write
    after the loss the span runs to `ended_at` (the end of the load).
    """
    before = [t for t in successes if t <= lost_at]
    after = sorted(t for t in successes if t > lost_at)
    if not after:
        return ended_at - (before[-1] if before else lost_at), False
    times = [before[-1] if before else lost_at, *after]
    return max(b - a for a, b in zip(times, times[1:], strict=False)), True


def longest_gap(successes: list[float]) -> float:
    """The longest span without an acknowledged write during the whole load (for the log)."""
    ordered = sorted(successes)
    return max((b - a for a, b in zip(ordered, ordered[1:], strict=False)), default=0.0)
