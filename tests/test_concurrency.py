"""Races against a real gunicorn: the database, not luck, decides every one of them.

Each scenario fires its requests at the same instant (a barrier releases threads that already
hold an open keep-alive connection) and runs twice: one worker process with threads, and three
worker processes. The server is shared by the tests of one mode; conftest empties the tables
after every test, so each test makes its own accounts (in-process, then logged in over HTTP)
and survivors (over HTTP).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from api.accounts.models import Account
from tests import races
from tests.conftest import PASSWORD, assert_totals_match, unique_name
from tests.server import Call, GunicornServer, assert_no_server_errors, at_once, statuses

pytestmark = pytest.mark.gunicorn

# The shared fixtures (tests/races.py), bound here: one gunicorn per mode for this module, and
# the clean-log check after every test.
server = races.server
live = races.live


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def accounts_logged_in(server: GunicornServer, app: Flask, count: int) -> list[dict[str, Any]]:
    """`count` survivor accounts, logged in over HTTP all at once; their token pairs.

    The accounts are made in-process with the test app's cheap hash, so every login also
    rehashes to the server's profile: concurrent writes on top of the scenario under test.
    """
    from api.accounts.services import create_account

    names = [unique_name("racer") for _ in range(count)]
    with app.app_context():
        for name in names:
            create_account(name, PASSWORD, "survivor")
    logins = at_once(
        server,
        [
            lambda c, name=name: c.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
            for name in names
        ],
    )
    assert_no_server_errors(logins)
    assert [r.status_code for r in logins] == [200] * count, [r.text for r in logins]
    return [response.json() for response in logins]


def survivor_body(name: str = "Ada") -> dict[str, Any]:
    return {
        "name": name,
        "age": 30,
        "gender": "unspecified",
        "location": {"latitude": 10.0, "longitude": 20.0},
        "inventory": {"water": 1, "food": 1, "medication": 1, "ammunition": 1},
    }


def create_survivors(server: GunicornServer, accounts: list[dict[str, Any]]) -> list[str]:
    """One survivor profile per account, all created at once; their ids, in order."""
    responses = at_once(
        server,
        [
            lambda c, tokens=tokens: c.post("/api/v1/survivors", json=survivor_body(), headers=bearer(tokens))
            for tokens in accounts
        ],
    )
    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [201] * len(accounts), [r.text for r in responses]
    return [response.json()["id"] for response in responses]


def test_report_same_target_twice_each_counts_once_per_reporter(live: GunicornServer, app: Flask):
    target_tokens, *reporters = accounts_logged_in(live, app, 9)
    target_id, *_ = create_survivors(live, [target_tokens, *reporters])
    path = f"/api/v1/survivors/{target_id}/infection-reports"
    calls: list[Call] = [
        lambda c, tokens=tokens: c.post(path, headers=bearer(tokens))
        for tokens in reporters
        for _ in range(2)
    ]

    responses = at_once(live, calls)

    assert_no_server_errors(responses)
    assert statuses(responses) == {201: 8, 200: 8}
    for first, second in zip(responses[::2], responses[1::2], strict=True):
        assert {first.status_code, second.status_code} == {200, 201}  # each reporter counted once
    counted = sorted(r.json()["infection_reports"] for r in responses if r.status_code == 201)
    assert counted == list(range(1, 9))  # every increment saw the one before it: none lost, none doubled
    with live.client() as client:
        survivor = client.get(f"/api/v1/survivors/{target_id}", headers=bearer(target_tokens)).json()
    assert survivor["infection_reports"] == 8
    assert survivor["infected"] is True
    assert_totals_match(app)  # counted infected once, its items moved to points lost once


def test_registrations_and_infections_at_once_keep_the_totals_exact(live: GunicornServer, app: Flask):
    tokens = accounts_logged_in(live, app, 10)
    survivors = create_survivors(live, tokens)
    assert_totals_match(app)
    # Three targets, each reported by three others, every report at the same instant.
    calls: list[Call] = [
        lambda c, target=target, reporter=reporter: c.post(
            f"/api/v1/survivors/{target}/infection-reports", headers=bearer(reporter)
        )
        for target in survivors[:3]
        for reporter in tokens[3:6]
    ]
    responses = at_once(live, calls)
    assert_no_server_errors(responses)
    assert statuses(responses) == {201: 9}
    assert_totals_match(app)
    with live.client() as client:
        report = client.get("/api/v1/reports/infection", headers=bearer(tokens[0])).json()
    assert (report["total"], report["infected"]) == (10, 3)


def test_create_survivor_concurrently_for_one_account_creates_one(live: GunicornServer, app: Flask):
    (tokens,) = accounts_logged_in(live, app, 1)

    responses = at_once(
        live, [lambda c: c.post("/api/v1/survivors", json=survivor_body(), headers=bearer(tokens))] * 6
    )

    assert_no_server_errors(responses)
    assert statuses(responses) == {201: 1, 409: 5}
    (created,) = (r.json() for r in responses if r.status_code == 201)
    with live.client() as client:
        me = client.get("/api/v1/auth/me", headers=bearer(tokens)).json()
        listed = client.get("/api/v1/survivors", headers=bearer(tokens)).json()
    assert me["survivor_id"] == created["id"]
    assert listed["total"] == 1


def test_move_concurrently_with_one_if_match_applies_one(live: GunicornServer, app: Flask):
    (tokens,) = accounts_logged_in(live, app, 1)
    (survivor_id,) = create_survivors(live, [tokens])
    with live.client() as client:
        etag = client.get(f"/api/v1/survivors/{survivor_id}", headers=bearer(tokens)).headers["ETag"]
    path = f"/api/v1/survivors/{survivor_id}/location"
    headers = {**bearer(tokens), "If-Match": etag}

    responses = at_once(
        live,
        [
            lambda c, i=i: c.put(path, json={"latitude": float(i), "longitude": float(-i)}, headers=headers)
            for i in range(1, 7)
        ],
    )

    assert_no_server_errors(responses)
    assert statuses(responses) == {200: 1, 412: 5}
    (winner,) = (r for r in responses if r.status_code == 200)
    assert winner.headers["ETag"] != etag
    with live.client() as client:
        stored = client.get(f"/api/v1/survivors/{survivor_id}", headers=bearer(tokens))
    assert stored.json()["location"] == winner.json()["location"]
    assert stored.headers["ETag"] == winner.headers["ETag"]


def test_refresh_concurrently_with_one_token_rotates_once(live: GunicornServer, app: Flask):
    """Exactly one new pair; the others, within REFRESH_REUSE_GRACE, are refused and the
    session lives on (the holder's own concurrent refreshes are not a theft)."""
    (tokens,) = accounts_logged_in(live, app, 1)
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}

    responses = at_once(live, [lambda c: c.post("/api/v1/auth/refresh", headers=refresh)] * 5)

    assert_no_server_errors(responses)
    assert statuses(responses) == {200: 1, 401: 4}
    (winner,) = (r.json() for r in responses if r.status_code == 200)
    with live.client() as client:
        again = client.post("/api/v1/auth/refresh", headers=refresh)
        rotated = client.post(
            "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {winner['refresh_token']}"}
        )
    assert again.status_code == 401
    assert rotated.status_code == 200


def assert_pair_dead(client: Any, pair: dict[str, Any]) -> None:
    """Neither token of the pair is accepted any more."""
    assert client.get("/api/v1/auth/me", headers=bearer(pair)).status_code == 401
    refresh = {"Authorization": f"Bearer {pair['refresh_token']}"}
    assert client.post("/api/v1/auth/refresh", headers=refresh).status_code == 401


@pytest.mark.parametrize("round_", range(4))
def test_logout_racing_a_refresh_never_leaves_a_live_token(live: GunicornServer, app: Flask, round_: int):
    """Whichever wins, the session ends: a pair the refresh issued first dies with it."""
    (tokens,) = accounts_logged_in(live, app, 1)
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}

    logout, rotated = at_once(
        live,
        [
            lambda c: c.post("/api/v1/auth/logout", headers=bearer(tokens)),
            lambda c: c.post("/api/v1/auth/refresh", headers=refresh),
        ],
    )

    assert_no_server_errors([logout, rotated])
    assert logout.status_code == 204
    assert rotated.status_code in (200, 401), rotated.text
    with live.client() as client:
        assert_pair_dead(client, tokens)
        if rotated.status_code == 200:
            assert_pair_dead(client, rotated.json())


def test_password_change_racing_another_sessions_refresh_ends_that_session(live: GunicornServer, app: Flask):
    (first,) = accounts_logged_in(live, app, 1)
    with live.client() as client:
        me = client.get("/api/v1/auth/me", headers=bearer(first)).json()
        second = client.post(
            "/api/v1/auth/login", json={"username": me["username"], "password": PASSWORD}
        ).json()
    body = {"current_password": PASSWORD, "new_password": "another-lantern-river-77"}
    refresh = {"Authorization": f"Bearer {second['refresh_token']}"}

    changed, rotated = at_once(
        live,
        [
            lambda c: c.post("/api/v1/auth/password", json=body, headers=bearer(first)),
            lambda c: c.post("/api/v1/auth/refresh", headers=refresh),
        ],
    )

    assert_no_server_errors([changed, rotated])
    assert changed.status_code == 204
    with live.client() as client:
        assert_pair_dead(client, second)
        if rotated.status_code == 200:
            assert_pair_dead(client, rotated.json())
        assert client.get("/api/v1/auth/me", headers=bearer(first)).status_code == 200


@pytest.mark.parametrize("round_", range(3))
def test_a_login_racing_a_password_change_never_keeps_a_session(
    live: GunicornServer, app: Flask, round_: int
):
    """Whichever commits first, no session started with the old password outlives the change:
    before it, the change ends it; after it, the login is refused (found from outside)."""
    (holder,) = accounts_logged_in(live, app, 1)
    with live.client() as client:
        username = client.get("/api/v1/auth/me", headers=bearer(holder)).json()["username"]
    body = {"current_password": PASSWORD, "new_password": "another-lantern-river-77"}

    changed, login = at_once(
        live,
        [
            lambda c: c.post("/api/v1/auth/password", json=body, headers=bearer(holder)),
            lambda c: c.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD}),
        ],
    )

    assert_no_server_errors([changed, login])
    assert changed.status_code == 204
    assert login.status_code in (200, 401), login.text
    with live.client() as client:
        if login.status_code == 200:
            assert_pair_dead(client, login.json())
        assert client.get("/api/v1/auth/me", headers=bearer(holder)).status_code == 200


def test_register_concurrently_one_name_in_any_case_creates_one(live: GunicornServer, app: Flask):
    base = f"zed{uuid.uuid4().hex[:8]}"
    spellings = [
        base,
        base.upper(),
        base.capitalize(),
        base.swapcase().capitalize(),
        base[:-1] + base[-1].upper(),
    ]

    responses = at_once(
        live,
        [
            lambda c, name=name: c.post(
                "/api/v1/auth/register", json={"username": name, "password": PASSWORD}
            )
            for name in [*spellings, base]
        ],
    )

    assert_no_server_errors(responses)
    assert statuses(responses) == {201: 1, 409: 5}
    with app.app_context():
        from api.extensions import db

        stored = db.session.scalar(
            select(func.count()).select_from(Account).where(Account.username_key == base.lower())
        )
        db.session.remove()
    assert stored == 1
    with live.client() as client:
        login = client.post("/api/v1/auth/login", json={"username": base.upper(), "password": PASSWORD})
    assert login.status_code == 200


def test_one_idempotency_key_sent_at_once_does_the_work_once(live: GunicornServer, app: Flask):
    """Six copies of one proposal with one Idempotency-Key at the same instant: one trade; the
    others are 409 (still being processed) or the first answer replayed."""
    proposer, partner = accounts_logged_in(live, app, 2)
    _, partner_id = create_survivors(live, [proposer, partner])
    body = {"partner_id": partner_id, "offer": {"water": 1}, "request": {"ammunition": 4}}
    headers = {**bearer(proposer), "Idempotency-Key": "propose-" + uuid.uuid4().hex}

    responses = at_once(live, [lambda c: c.post("/api/v1/trades", json=body, headers=headers)] * 6)

    assert_no_server_errors(responses)
    assert set(statuses(responses)) <= {201, 409} and statuses(responses).get(201, 0) >= 1
    assert len({r.text for r in responses if r.status_code == 201}) == 1
    with live.client() as client:
        listed = client.get("/api/v1/trades", headers=bearer(proposer)).json()
        retried = client.post("/api/v1/trades", json=body, headers=headers)
    assert listed["total"] == 1
    assert retried.status_code == 201 and retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["id"] == listed["items"][0]["id"]
