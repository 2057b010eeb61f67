"""The drill's load: a few client threads using the API through nginx the way a careful client
does, and a ledger of every write they made and what became of it.

Each thread is a client from a loopback address of its own (tests/cluster/services.fresh_address,
so its per-IP buckets are its own), with survivors of its own. It registers accounts, logs in,
creates each account's survivor once, proposes trades to other threads' survivors and accepts
them as the partner, and reports "victim" survivors as infected (victims never trade or
report, and traders are never reported, so no trader is ever infected and refused mid-drill).

Every write carries an Idempotency-Key, a fresh UUID per logical write, and is sent again with
the same key and the same bytes after a connection error, a timeout, a 5xx, a 429, or a 409
with Retry-After (the first attempt still in progress), until it gets a final answer or its
deadline passes. A retry waits RETRY_PAUSE, not the server's Retry-After (nginx says 5 s): the
drill measures how long the *server* could not take writes, so the client retries briskly.

What identifies each write in the database afterwards is recorded with it (a unique username,
a unique survivor name, a trade's id and its unique proposal signature, a reporter/reported
pair, a login's session id), so verify.py can look for every acknowledged write and for any
logical write recorded twice.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.cluster.services import fresh_address

ATTEMPT_TIMEOUT = httpx.Timeout(5.0, connect=2.0)  # one try; nginx itself gives up after 35 s
WRITE_DEADLINE = 20.0  # one logical write, all its tries
RETRY_PAUSE = 0.25
THINK_TIME = 0.02  # between two steps of one client: a busy but not saturating client
API = "/api/v1"
TRADE_SIZES = (1, 2, 3, 4, 5)  # water offered; 4x as much ammunition requested (equal points)
VICTIM_EVERY = 4  # every 4th new member is a victim, reported but never trading
# A survivor's starting inventory: enough water and ammunition for every trade of a drill.
INVENTORY = {"water": 400, "food": 50, "medication": 50, "ammunition": 1600}


@dataclass
class Write:
    """One logical write: its tries share `key` and the same request bytes."""

    kind: str  # register, login, survivor, trade, accept, report
    ident: dict[str, str]
    key: str
    started: float
    ended: float = 0.0
    status: int | None = None  # the final answer's status; None when none came
    acknowledged: bool = False  # a 2xx came back
    replayed: bool = False  # that 2xx was a stored answer (Idempotent-Replayed: true)
    attempts: int = 0
    retried_for: list[str] = field(default_factory=list)  # why each retry happened


class Ledger:
    """Every write of every thread, and the instant of every 2xx (for the outage span)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.writes: list[Write] = []
        self.successes: list[float] = []  # time.monotonic() of each acknowledged write
        self.errors: list[str] = []  # a client thread that died, with why

    def add(self, write: Write) -> None:
        """Record a finished write (its 2xx instant too, when it was acknowledged)."""
        with self._lock:
            self.writes.append(write)
            if write.acknowledged:
                self.successes.append(write.ended)

    def error(self, message: str) -> None:
        """Record a client thread that died, so the drill reports it instead of losing load silently."""
        with self._lock:
            self.errors.append(message)

    def snapshot(self) -> tuple[list[Write], list[float]]:
        """A copy of the writes and the sorted success instants, safe to read while clients run."""
        with self._lock:
            return list(self.writes), sorted(self.successes)


@dataclass
class Member:
    """An account with its survivor: the client that made it uses it; others trade with it."""

    username: str
    password: str
    victim: bool
    token: str = ""
    survivor_id: str = ""
    reported: set[str] = field(default_factory=set)  # victims this member already reported
    proposals: set[tuple[str, int]] = field(default_factory=set)  # (partner survivor, size) used


class Community:
    """The members every thread can see: traders to propose to, victims to report."""

    def __init__(self, tag: str) -> None:
        self.tag = tag  # makes usernames and survivor names unique to this run
        self._lock = threading.Lock()
        self._joined = 0
        self.traders: list[Member] = []
        self.victims: list[Member] = []

    def next_member(self, client: int) -> Member:
        """A new member with a username unique to this run; every VICTIM_EVERY-th is a victim."""
        with self._lock:
            self._joined += 1
            n = self._joined
        return Member(
            username=f"d{self.tag}c{client}n{n}",
            password=f"drill-{uuid.uuid4().hex[:20]}",
            victim=n % VICTIM_EVERY == 0,
        )

    def add(self, member: Member) -> None:
        """Publish a member whose survivor exists: other clients may now trade with or report it."""
        with self._lock:
            (self.victims if member.victim else self.traders).append(member)

    def partners_for(self, member: Member) -> list[Member]:
        """Every trader but `member` itself (no trade with yourself: the API refuses it)."""
        with self._lock:
            return [other for other in self.traders if other is not member]

    def victims_for(self, member: Member) -> list[Member]:
        """The victims `member` has not reported yet (one logical report per pair)."""
        with self._lock:
            return [victim for victim in self.victims if victim.survivor_id not in member.reported]


def session_of(token: str) -> str:
    """The session id (`sid`) a JWT carries, read without verifying: the drill only needs to
    find that session's row afterwards."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sid"])


def _retry_reason(response: httpx.Response) -> str | None:
    """Why this answer is not final (None when it is): the request was not carried out, or its
    outcome is not known yet, so the same bytes under the same key are sent again."""
    if response.status_code >= 500:
        return str(response.status_code)
    if response.status_code == 429:
        return "429"
    if response.status_code == 409 and "Retry-After" in response.headers:
        return "409 in progress"
    return None


class LoadClient(threading.Thread):
    """One client thread: steps until `stop` is set, then finishes the write it is in."""

    def __init__(
        self, index: int, base_url: str, ledger: Ledger, community: Community, stop: threading.Event
    ) -> None:
        super().__init__(name=f"drill-client-{index}", daemon=True)
        self.index = index
        self.base_url = base_url
        self.ledger = ledger
        self.community = community
        self.stop = stop
        self.random = random.Random(index)  # noqa: S311 - a load pattern, not a secret
        self.mine: list[Member] = []  # traders this client made and acts as

    def run(self) -> None:
        """Step until stopped, through one keep-alive connection to nginx from this client's own
        loopback address."""
        transport = httpx.HTTPTransport(local_address=fresh_address())
        try:
            with httpx.Client(base_url=self.base_url, timeout=ATTEMPT_TIMEOUT, transport=transport) as http:
                while not self.stop.is_set():
                    self.step(http)
                    time.sleep(THINK_TIME)
        except Exception as error:  # reported by the drill: a client that died is a finding
            self.ledger.error(f"{self.name}: {error!r}")

    def step(self, http: httpx.Client) -> None:
        """One logical action, chosen at random; new members while this client has few."""
        if len(self.mine) < 2 or self.random.random() < 0.1:
            self.enlist(http)
            return
        choice = self.random.random()
        if choice < 0.6:
            self.trade(http)
        elif choice < 0.9:
            self.report(http)
        else:
            self.login(http, self.random.choice(self.mine))

    # -- one write -------------------------------------------------------------------------

    def write(
        self, http: httpx.Client, kind: str, ident: dict[str, str], path: str, body: Any, token: str = ""
    ) -> tuple[Write, httpx.Response | None]:
        """Send one logical write until it has a final answer or WRITE_DEADLINE passes."""
        write = Write(kind, ident, str(uuid.uuid4()), time.monotonic())
        content = b"" if body is None else json.dumps(body).encode()
        headers = {"Idempotency-Key": write.key}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        deadline = write.started + WRITE_DEADLINE
        final: httpx.Response | None = None
        while True:
            write.attempts += 1
            reason: str | None
            try:
                response = http.post(path, content=content, headers=headers)
                reason = _retry_reason(response)
            except httpx.TransportError as error:
                response, reason = None, type(error).__name__
            if reason is None:
                final = response
                break
            write.retried_for.append(reason)
            if time.monotonic() + RETRY_PAUSE >= deadline:
                break
            time.sleep(RETRY_PAUSE)
        write.ended = time.monotonic()
        if final is not None:
            write.status = final.status_code
            write.acknowledged = 200 <= final.status_code < 300
            write.replayed = final.headers.get("Idempotent-Replayed") == "true"
        self.ledger.add(write)
        return write, final

    # -- the actions -----------------------------------------------------------------------

    def enlist(self, http: httpx.Client) -> None:
        """Register, log in and create the account's survivor (once: one key for that write)."""
        member = self.community.next_member(self.index)
        credentials = {"username": member.username, "password": member.password}
        registered, _ = self.write(
            http, "register", {"username": member.username}, f"{API}/auth/register", credentials
        )
        if not registered.acknowledged or not self.login(http, member):
            return
        name = f"Drill {member.username}"
        profile = {
            "name": name,
            "age": 20 + self.random.randrange(50),
            "gender": self.random.choice(["female", "male", "non-binary", "unspecified"]),
            "location": {
                "latitude": self.random.uniform(-60, 60),
                "longitude": self.random.uniform(-170, 170),
            },
            "inventory": INVENTORY,
        }
        created, response = self.write(
            http, "survivor", {"name": name}, f"{API}/survivors", profile, member.token
        )
        if not created.acknowledged or response is None:
            return
        member.survivor_id = str(response.json()["id"])
        created.ident["id"] = member.survivor_id
        self.community.add(member)
        if not member.victim:
            self.mine.append(member)

    def login(self, http: httpx.Client, member: Member) -> bool:
        """Log in (a new session: login ignores Idempotency-Key, a retry may open another)."""
        credentials = {"username": member.username, "password": member.password}
        done, response = self.write(
            http, "login", {"username": member.username}, f"{API}/auth/login", credentials
        )
        if not done.acknowledged or response is None:
            return False
        member.token = str(response.json()["access_token"])
        done.ident["session"] = session_of(member.token)
        return True

    def trade(self, http: httpx.Client) -> None:
        """Propose a trade to another client's survivor, and accept it as that partner.

        Each proposal of a proposer has its own (partner, size): the signature that tells two
        trades made for one proposal apart from two proposals."""
        proposer = self.random.choice(self.mine)
        options = [
            (partner, size)
            for partner in self.community.partners_for(proposer)
            for size in TRADE_SIZES
            if (partner.survivor_id, size) not in proposer.proposals
        ]
        if not options:
            return
        partner, size = self.random.choice(options)
        proposer.proposals.add((partner.survivor_id, size))
        body = {
            "partner_id": partner.survivor_id,
            "offer": {"water": size},
            "request": {"ammunition": 4 * size},
        }
        ident = {"proposer": proposer.survivor_id, "partner": partner.survivor_id, "size": str(size)}
        proposed, response = self.write(http, "trade", ident, f"{API}/trades", body, proposer.token)
        if not proposed.acknowledged or response is None:
            return
        trade_id = str(response.json()["id"])
        proposed.ident["id"] = trade_id
        self.write(
            http, "accept", {"trade": trade_id}, f"{API}/trades/{trade_id}/accept", None, partner.token
        )

    def report(self, http: httpx.Client) -> None:
        """Report a victim as infected (one logical write per reporter and victim)."""
        reporter = self.random.choice(self.mine)
        victims = self.community.victims_for(reporter)
        if not victims:
            return
        victim = self.random.choice(victims)
        reporter.reported.add(victim.survivor_id)
        ident = {"reporter": reporter.survivor_id, "reported": victim.survivor_id}
        path = f"{API}/survivors/{victim.survivor_id}/infection-reports"
        self.write(http, "report", ident, path, None, reporter.token)


def start_load(base_url: str, clients: int, tag: str) -> tuple[Ledger, threading.Event, list[LoadClient]]:
    """Start `clients` threads against base_url; set the event to stop them."""
    ledger, stop = Ledger(), threading.Event()
    community = Community(tag)
    threads = [LoadClient(index, base_url, ledger, community, stop) for index in range(clients)]
    for thread in threads:
        thread.start()
    return ledger, stop, threads


def stop_load(stop: threading.Event, threads: list[LoadClient], timeout: float) -> list[str]:
    """Stop the clients; each finishes the write it is in (bounded by WRITE_DEADLINE). Names of
    the threads still running after `timeout` seconds (daemon threads: they die with us)."""
    stop.set()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [thread.name for thread in threads if thread.is_alive()]
