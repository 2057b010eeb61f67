"""The README's "A first session with curl", written with the generated client (clients/python).

It is here to prove the client reads naturally under `mypy --strict` (`make test` checks this file
with the generated package): tokens are `str`, ids are `UUID`, and an enum read from one model
goes into another (a new profile takes `gender` from a `Survivor` the API answered) with no cast
and no `type: ignore`. tests/test_python_client.py runs `main()` against the app under gunicorn
and checks what it returns, so the example cannot rot either.

Every run registers new accounts (a random suffix on ada, bob, cleo and dan), so it runs again
and again against one server; only the auth rate limit (10/minute per IP by default, nine calls
a run) asks for a minute between runs.

    pip install ./clients/python
    python clients/examples/walkthrough.py http://127.0.0.1:8000
"""

from __future__ import annotations

import secrets
import sys
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from http import HTTPStatus
from typing import TypeVar

from resistance_api_client import AuthenticatedClient, Client
from resistance_api_client.api.auth import (
    delete_sessions,
    get_me,
    get_sessions,
    post_login,
    post_logout,
    post_password,
    post_register,
)
from resistance_api_client.api.infections import post_infection_reports
from resistance_api_client.api.reports import get_infection_report
from resistance_api_client.api.survivors import get_survivor_by_id, get_survivor_inventory, post_survivors
from resistance_api_client.api.trades import post_trade_accept, post_trades
from resistance_api_client.models import (
    Gender,
    InfectionReport,
    InfectionReportSummary,
    Inventory,
    InventoryIn,
    Location,
    Login,
    PasswordChange,
    Problem,
    Register,
    Registered,
    SessionPage,
    Survivor,
    SurvivorCreate,
    TokenPair,
    Trade,
    TradeCreate,
    TradeItems,
)

PASSWORD = "correct-battery-horse-42"
NEW_PASSWORD = "another-lantern-river-77"
PHONE_USER_AGENT = "ada-phone/1.0"

T = TypeVar("T")


class WalkthroughError(RuntimeError):
    """The API answered something other than the step expects (a Problem, or nothing)."""


def ok(kind: type[T], answer: object) -> T:
    """The parsed answer when it is a `kind`; else stop with what the API said instead.

    The generated functions return every documented answer (`Survivor | Problem | None`): this
    is the one narrowing a caller does, and it keeps the Problem's words in the error.
    """
    if isinstance(answer, kind):
        return answer
    if isinstance(answer, Problem):
        raise WalkthroughError(
            f"expected {kind.__name__}, got {answer.status} {answer.title}: {answer.detail}"
        )
    raise WalkthroughError(f"expected {kind.__name__}, got {answer!r}")


@dataclass(frozen=True)
class Member:
    """A registered, logged-in survivor: the client holding its access token, and its profile."""

    username: str
    client: AuthenticatedClient
    survivor: Survivor


@dataclass(frozen=True)
class Walkthrough:
    """What each step of the README shows, as the API answered it."""

    usernames: list[str]
    ada: Survivor  # step 2: the profile as read back
    retry_status: HTTPStatus  # step 2: the same POST again with the same Idempotency-Key
    retry_replayed: bool  # its Idempotent-Replayed: true
    retry_survivor: Survivor  # the first answer again: the same survivor, not a second one
    trade: Trade  # step 3: after Bob accepted
    ada_inventory: Inventory
    bob_inventory: Inventory
    reports: list[InfectionReport]  # step 4: Bob's, Cleo's and Dan's
    ada_reported: Survivor  # Ada read back after the three reports
    infection_report: InfectionReportSummary  # step 5
    sessions: SessionPage  # step 6: Ada's two logins
    end_other_sessions: HTTPStatus
    phone_afterwards: HTTPStatus
    password_change: HTTPStatus
    logout: HTTPStatus
    token_afterwards: HTTPStatus


def register(stack: ExitStack, base_url: str, username: str) -> Registered:
    """POST /auth/register with the walk-through's password."""
    anonymous = stack.enter_context(Client(base_url=base_url, raise_on_unexpected_status=True))
    return ok(
        Registered, post_register.sync(client=anonymous, body=Register(username=username, password=PASSWORD))
    )


def log_in(stack: ExitStack, base_url: str, username: str, password: str, user_agent: str = "") -> TokenPair:
    """POST /auth/login: a fresh token pair (with `user_agent`, the session lists that device)."""
    headers = {"User-Agent": user_agent} if user_agent else {}
    anonymous = stack.enter_context(
        Client(base_url=base_url, headers=headers, raise_on_unexpected_status=True)
    )
    return ok(TokenPair, post_login.sync(client=anonymous, body=Login(username=username, password=password)))


def bearer(stack: ExitStack, base_url: str, pair: TokenPair) -> AuthenticatedClient:
    """A client sending the pair's access token (a plain `str`) on every request."""
    return stack.enter_context(
        AuthenticatedClient(base_url=base_url, token=pair.access_token, raise_on_unexpected_status=True)
    )


def join(stack: ExitStack, base_url: str, username: str, profile: SurvivorCreate) -> Member:
    """Register `username`, log in and create its survivor profile (the README's `join`)."""
    register(stack, base_url, username)
    client = bearer(stack, base_url, log_in(stack, base_url, username, PASSWORD))
    return Member(username, client, ok(Survivor, post_survivors.sync(client=client, body=profile)))


def main(base_url: str) -> Walkthrough:
    """Run the README's six steps against the API at `base_url` (its root, without /api/v1)."""
    run = secrets.token_hex(4)  # new accounts every run: the walk-through can run again
    ada_name, bob_name, cleo_name, dan_name = (f"{name}-{run}" for name in ("ada", "bob", "cleo", "dan"))
    with ExitStack() as stack:
        # 1. Register and log in
        register(stack, base_url, ada_name)
        ada = bearer(stack, base_url, log_in(stack, base_url, ada_name, PASSWORD))

        # 2. Create the survivor profile with an Idempotency-Key; when the answer is lost, send it
        #    again with the same key: the first answer comes back, and there is still one profile.
        profile = SurvivorCreate(
            name="Ada",
            age=34,
            gender=Gender.FEMALE,
            location=Location(latitude=-33.92, longitude=18.42),
            inventory=InventoryIn(water=3, food=2),
        )
        key = str(uuid.uuid4())
        created = ok(Survivor, post_survivors.sync(client=ada, body=profile, idempotency_key=key))
        retry = post_survivors.sync_detailed(client=ada, body=profile, idempotency_key=key)
        ada_survivor = ok(Survivor, get_survivor_by_id.sync(created.id, client=ada))

        # 3. Trade: Ada offers Bob 1 water (4 points) for 4 ammunition (4 points); Bob accepts
        bob = join(
            stack,
            base_url,
            bob_name,
            SurvivorCreate(
                name="Bob",
                age=30,
                gender=Gender.UNSPECIFIED,
                location=Location(latitude=0, longitude=0),
                inventory=InventoryIn(ammunition=10),
            ),
        )
        offer = TradeCreate(
            partner_id=bob.survivor.id, offer=TradeItems(water=1), request=TradeItems(ammunition=4)
        )
        proposed = ok(Trade, post_trades.sync(client=ada, body=offer))
        trade = ok(Trade, post_trade_accept.sync(proposed.id, client=bob.client))
        ada_inventory = ok(Inventory, get_survivor_inventory.sync(created.id, client=ada))
        bob_inventory = ok(Inventory, get_survivor_inventory.sync(bob.survivor.id, client=ada))

        # 4. Bob and two more survivors report Ada: three reports flag her. Cleo and Dan join where
        #    Bob is and as he is: his profile as the API answered it goes straight into theirs.
        reports = [ok(InfectionReport, post_infection_reports.sync(created.id, client=bob.client))]
        for username in (cleo_name, dan_name):
            like_bob = SurvivorCreate(
                name=username.split("-")[0].title(),
                age=bob.survivor.age,
                gender=bob.survivor.gender,
                location=bob.survivor.location,
            )
            reporter = join(stack, base_url, username, like_bob)
            reports.append(
                ok(InfectionReport, post_infection_reports.sync(created.id, client=reporter.client))
            )
        ada_reported = ok(Survivor, get_survivor_by_id.sync(created.id, client=ada))

        # 5. Read the infection report
        infection_report = ok(InfectionReportSummary, get_infection_report.sync(client=ada))

        # 6. Sessions: Ada logs in on a second device, lists both logins, ends the other one,
        #    changes her password (every other session ends; this one stays) and logs out.
        phone = bearer(stack, base_url, log_in(stack, base_url, ada_name, PASSWORD, PHONE_USER_AGENT))
        sessions = ok(SessionPage, get_sessions.sync(client=ada))
        end_other_sessions = delete_sessions.sync_detailed(client=ada).status_code
        phone_afterwards = get_me.sync_detailed(client=phone).status_code
        change = PasswordChange(current_password=PASSWORD, new_password=NEW_PASSWORD)
        password_change = post_password.sync_detailed(client=ada, body=change).status_code
        logout = post_logout.sync_detailed(client=ada).status_code
        token_afterwards = get_me.sync_detailed(client=ada).status_code

    return Walkthrough(
        usernames=[ada_name, bob_name, cleo_name, dan_name],
        ada=ada_survivor,
        retry_status=retry.status_code,
        retry_replayed=retry.headers.get("Idempotent-Replayed") == "true",
        retry_survivor=ok(Survivor, retry.parsed),
        trade=trade,
        ada_inventory=ada_inventory,
        bob_inventory=bob_inventory,
        reports=reports,
        ada_reported=ada_reported,
        infection_report=infection_report,
        sessions=sessions,
        end_other_sessions=end_other_sessions,
        phone_afterwards=phone_afterwards,
        password_change=password_change,
        logout=logout,
        token_afterwards=token_afterwards,
    )


def summary(result: Walkthrough) -> str:
    """The lines the README's curl session prints, from the client's typed answers."""
    ada, bob = result.ada_inventory, result.bob_inventory
    report, flagged = result.infection_report, result.ada_reported
    devices = ", ".join(
        f"{s.user_agent} (current)" if s.current else str(s.user_agent) for s in result.sessions.items
    )
    return "\n".join(
        [
            f"accounts: {', '.join(result.usernames)}",
            f"retry: {result.retry_status.value}, replayed {str(result.retry_replayed).lower()}",
            f"trade {result.trade.id}: {result.trade.status.value}",
            f"ada: water {ada.water}, food {ada.food}, ammunition {ada.ammunition}, points {ada.points}",
            f"bob: water {bob.water}, food {bob.food}, ammunition {bob.ammunition}, points {bob.points}",
            f"ada infected: {flagged.infected} after {flagged.infection_reports} reports",
            f"infection report: {report.infected} of {report.total} infected ({report.infected_percentage}%)",
            f"sessions: {devices}",
            f"end other sessions: {result.end_other_sessions.value}",
            f"the phone afterwards: {result.phone_afterwards.value}",
            f"password change: {result.password_change.value}",
            f"logout: {result.logout.value}",
            f"this token afterwards: {result.token_afterwards.value}",
        ]
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} BASE_URL   (the API's root, e.g. http://127.0.0.1:8000)")
    sys.stdout.write(summary(main(sys.argv[1])) + "\n")
