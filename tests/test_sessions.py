"""Sessions (docs/api.md, Authentication; OWASP ASVS 4.0.3 V3.3 and V2.1), through HTTP as clients use them.

The four cases of issue 12, each first: a stolen refresh token ends its session (RFC 9700
§4.14.2), logout ends the session, a password can be changed, and a holder sees and ends their
sessions; then an admin's reset, the expiry rules, the clean-up, the audit trail and the metric.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from api.database import utcnow
from api.extensions import db
from security.sessions import AccountSession, Outcome, printable_user_agent, rotate
from tests.conftest import PASSWORD, Factory, assert_problem, random_uuid

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
PASSWORD_CHANGE = "/api/v1/auth/password"
SESSIONS = "/api/v1/auth/sessions"
NEW_PASSWORD = "another-lantern-river-77"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sid_of(token: str) -> str:
    return pyjwt.decode(token, options={"verify_signature": False})["sid"]


def works(client: Any, pair: dict[str, Any]) -> bool:
    """True when the pair's access token is accepted (GET /auth/me is 200)."""
    return client.get(ME, headers=bearer(pair["access_token"])).status_code == 200


def refreshed(client: Any, pair: dict[str, Any]) -> Any:
    return client.post(REFRESH, headers=bearer(pair["refresh_token"]))


def session_row(app: Flask, session_id: str) -> AccountSession | None:
    with app.app_context():
        row = db.session.get(AccountSession, uuid.UUID(session_id))
        if row is not None:
            db.session.expunge(row)
        return row


def set_session(app: Flask, session_id: str, **values: Any) -> None:
    """Write columns of a session row directly: the clock moved on, without sleeping."""
    with app.app_context():
        db.session.execute(
            update(AccountSession).where(AccountSession.id == uuid.UUID(session_id)).values(**values)
        )
        db.session.commit()


def age_rotation(app: Flask, session_id: str, seconds: float) -> None:
    """Move the session's last rotation `seconds` into the past."""
    set_session(app, session_id, rotated_at=utcnow() - timedelta(seconds=seconds))


def audit_events(capsys: pytest.CaptureFixture[str], event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [line for line in lines if line.get("event") == event]


@pytest.fixture
def account(make: Factory) -> dict[str, Any]:
    return make.account("survivor")


# --- 1. a stolen refresh token ends the session (RFC 9700 §4.14.2) --------------------------


def test_a_rotated_out_refresh_token_presented_after_the_grace_ends_the_whole_session(app, client, account):
    """The issue's case 1: log in, refresh once, wait past the grace, present the first refresh
    token again: 401, and the newer pair (access and refresh) is 401 too."""
    newer = refreshed(client, account).get_json()
    assert works(client, newer)
    age_rotation(app, sid_of(account["access_token"]), app.config["REFRESH_REUSE_GRACE"] + 6)

    reused = assert_problem(refreshed(client, account), 401)
    assert reused["detail"] == "This refresh token was already used: the session has ended; log in again."

    assert_problem(client.get(ME, headers=bearer(newer["access_token"])), 401)
    assert_problem(refreshed(client, newer), 401)
    assert_problem(client.get(ME, headers=account["headers"]), 401)
    row = session_row(app, sid_of(account["access_token"]))
    assert row is not None and row.end_reason == "refresh_token_reuse"


def test_reuse_by_the_thief_first_ends_the_session_for_the_thief_too(app, client, account):
    """Either side may present the rotated-out token last: whoever does, the session ends."""
    stolen = refreshed(client, account).get_json()  # the thief rotates first
    age_rotation(app, sid_of(account["access_token"]), 11)
    assert_problem(refreshed(client, account), 401)  # the holder's now-stale token comes back
    assert_problem(client.get(ME, headers=bearer(stolen["access_token"])), 401)
    assert_problem(refreshed(client, stolen), 401)


def test_within_the_grace_a_second_refresh_is_refused_and_the_session_lives(app, client, account):
    """Two clients of one holder refreshing at once: exactly one new pair, and no logout."""
    newer = refreshed(client, account).get_json()
    second = assert_problem(refreshed(client, account), 401)
    assert (
        second["detail"]
        == "This refresh token was just used by another request of yours; use the pair it got."
    )
    assert works(client, newer)
    assert refreshed(client, newer).status_code == 200


def test_with_no_grace_an_immediate_reuse_ends_the_session(make_app, account):
    strict = make_app(REFRESH_REUSE_GRACE="0").test_client()
    newer = refreshed(strict, account).get_json()
    assert_problem(refreshed(strict, account), 401)
    assert_problem(strict.get(ME, headers=bearer(newer["access_token"])), 401)


def test_an_older_refresh_token_than_the_last_one_is_reuse_even_within_the_grace(app, client, account):
    second = refreshed(client, account).get_json()
    third = refreshed(client, second).get_json()
    assert_problem(refreshed(client, account), 401)  # two rotations old: never a concurrent refresh
    assert_problem(client.get(ME, headers=bearer(third["access_token"])), 401)


def test_a_refresh_token_of_an_ended_session_is_401_and_ends_nothing_else(client, make: Factory, account):
    other = make.login(account["username"])
    assert client.post(LOGOUT, headers=account["headers"]).status_code == 204
    assert assert_problem(refreshed(client, account), 401)["detail"] == "The session has ended; log in again."
    assert works(client, other)


def test_rotation_outcomes_at_the_grace_boundary(app, account):
    claims = pyjwt.decode(account["refresh_token"], options={"verify_signature": False})
    owner = uuid.UUID(account["id"])
    with app.app_context():
        assert rotate(claims["sid"], claims["jti"], owner).outcome == Outcome.ROTATED
    age_rotation(app, claims["sid"], app.config["REFRESH_REUSE_GRACE"] - 1)
    with app.app_context():
        assert rotate(claims["sid"], claims["jti"], owner).outcome == Outcome.CONCURRENT
    age_rotation(app, claims["sid"], app.config["REFRESH_REUSE_GRACE"] + 1)
    with app.app_context():
        assert rotate(claims["sid"], claims["jti"], owner).outcome == Outcome.REUSE_DETECTED
        assert rotate(claims["sid"], claims["jti"], owner).outcome == Outcome.DEAD
        assert rotate(random_uuid(), claims["jti"], owner).outcome == Outcome.DEAD


def test_each_refresh_keeps_the_session_and_issues_a_new_refresh_token(client, account):
    newer = refreshed(client, account).get_json()
    assert sid_of(newer["access_token"]) == sid_of(newer["refresh_token"]) == sid_of(account["access_token"])
    assert newer["refresh_token"] != account["refresh_token"]
    assert works(client, account)  # the access token of the same session lives on until it expires


# --- 2. logout ends the session ------------------------------------------------------------


def test_logout_with_the_access_token_alone_ends_its_refresh_token_too(client, account):
    """The issue's case 2."""
    assert client.post(LOGOUT, headers=account["headers"]).status_code == 204
    assert_problem(client.get(ME, headers=account["headers"]), 401)
    assert_problem(refreshed(client, account), 401)


def test_logout_ends_the_tokens_rotated_before_it_too(client, account):
    newer = refreshed(client, account).get_json()
    assert client.post(LOGOUT, headers=account["headers"]).status_code == 204
    assert_problem(client.get(ME, headers=bearer(newer["access_token"])), 401)
    assert_problem(refreshed(client, newer), 401)


def test_logout_leaves_the_other_sessions_alive(client, make: Factory, account):
    other = make.login(account["username"])
    assert client.post(LOGOUT, headers=account["headers"]).status_code == 204
    assert works(client, other)
    assert refreshed(client, other).status_code == 200


def test_two_logins_are_two_sessions(make: Factory, account):
    """A login never joins an existing session (no session fixation)."""
    other = make.login(account["username"])
    assert sid_of(other["access_token"]) != sid_of(account["access_token"])


# --- 3. changing a password ----------------------------------------------------------------


def change(client: Any, pair: dict[str, Any], current: str = PASSWORD, new: str = NEW_PASSWORD) -> Any:
    body = {"current_password": current, "new_password": new}
    return client.post(PASSWORD_CHANGE, json=body, headers=bearer(pair["access_token"]))


def test_password_change_is_204_ends_every_other_session_and_keeps_this_one(client, make: Factory, account):
    """The issue's case 3."""
    other = make.login(account["username"])
    response = change(client, account)
    assert response.status_code == 204
    assert response.data == b""
    assert response.headers["Cache-Control"] == "no-store"
    assert works(client, account)
    assert refreshed(client, account).status_code == 200
    assert_problem(client.get(ME, headers=bearer(other["access_token"])), 401)
    assert_problem(refreshed(client, other), 401)
    assert_problem(client.post(LOGIN, json={"username": account["username"], "password": PASSWORD}), 401)
    assert (
        client.post(LOGIN, json={"username": account["username"], "password": NEW_PASSWORD}).status_code
        == 200
    )


@pytest.mark.parametrize("current", ["Wrong-" + PASSWORD, "", "x", PASSWORD.upper(), PASSWORD + " "])
def test_password_change_with_a_wrong_current_password_is_403_and_changes_nothing(
    client, make: Factory, account, current
):
    other = make.login(account["username"])
    assert_problem(change(client, account, current=current), 403)
    assert works(client, other)
    assert client.post(LOGIN, json={"username": account["username"], "password": PASSWORD}).status_code == 200


@pytest.mark.parametrize("new", ["short-pw", "x" * 129, "administrator", "Password1234"])
def test_password_change_to_a_password_breaking_the_rules_is_422_naming_new_password(
    client, make: Factory, account, new
):
    other = make.login(account["username"])
    body = assert_problem(change(client, account, new=new), 422)
    assert list(body["errors"]) == ["new_password"]
    assert works(client, other)
    assert client.post(LOGIN, json={"username": account["username"], "password": PASSWORD}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"new_password": NEW_PASSWORD}, "current_password"),
        ({"current_password": PASSWORD}, "new_password"),
        ({"current_password": PASSWORD, "new_password": 123456789012}, "new_password"),
        ({"current_password": None, "new_password": NEW_PASSWORD}, "current_password"),
        ({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "account_id": "x"}, "account_id"),
    ],
)
def test_password_change_with_a_malformed_body_is_422(client, account, body, field):
    response = client.post(PASSWORD_CHANGE, json=body, headers=account["headers"])
    assert list(assert_problem(response, 422)["errors"]) == [field]


def test_password_change_needs_an_access_token_not_a_refresh_token(client, account):
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert_problem(client.post(PASSWORD_CHANGE, json=body), 401)
    assert_problem(client.post(PASSWORD_CHANGE, json=body, headers=bearer(account["refresh_token"])), 401)


def test_password_change_attempts_are_limited_per_account_from_any_address(make_app, account):
    """A stolen access token cannot guess the current password at the default rate."""
    limited = make_app(RATELIMIT_AUTH="2/minute", TRUSTED_PROXIES="1").test_client()
    statuses = [
        change(limited, account, current=f"guess-{n}-{PASSWORD}").status_code
        for n in range(3)
        for _ in [limited.environ_base.update(REMOTE_ADDR=f"203.0.113.{n}")]
    ]
    assert statuses == [403, 403, 429]
    assert limited.get(ME, headers=account["headers"]).status_code == 200  # other routes unaffected


def test_password_change_that_lost_a_race_is_409_and_ends_nothing(
    app, client, make: Factory, account, monkeypatch
):
    """The hash is replaced only if it is still the one the current password was checked against."""
    from api.accounts import services as accounts

    other = make.login(account["username"])
    real_hash = accounts.Passwords.hash

    def reset_meanwhile(self: Any, password: str) -> str:
        with app.app_context():
            from api.accounts.models import Account

            db.session.execute(
                update(Account).where(Account.id == uuid.UUID(account["id"])).values(password_hash="reset")
            )
            db.session.commit()
        return real_hash(self, password)

    monkeypatch.setattr(accounts.Passwords, "hash", reset_meanwhile)
    assert_problem(change(client, account), 409)
    assert works(client, other)


# --- 4. seeing and ending your sessions ------------------------------------------------------


def test_sessions_lists_the_callers_live_sessions_marking_the_current_one(client, make: Factory, account):
    """The issue's case 4, seeing."""
    other = make.login(account["username"])
    ended = make.login(account["username"])
    client.post(LOGOUT, headers=bearer(ended["access_token"]))
    make.account("survivor")  # another account's session is never listed

    response = client.get(SESSIONS, headers=account["headers"])

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert (body["total"], body["page"], body["page_size"]) == (2, 1, 20)
    by_id = {item["id"]: item for item in body["items"]}
    assert set(by_id) == {sid_of(account["access_token"]), sid_of(other["access_token"])}
    assert by_id[sid_of(account["access_token"])]["current"] is True
    assert by_id[sid_of(other["access_token"])]["current"] is False
    for item in body["items"]:
        assert list(item) == ["id", "created_at", "last_used_at", "expires_at", "user_agent", "current"]
        assert item["created_at"].endswith("Z") and item["expires_at"] > item["last_used_at"]


def test_sessions_never_show_a_token_id_or_a_hash(client, account):
    text = client.get(SESSIONS, headers=account["headers"]).get_data(as_text=True)
    claims = pyjwt.decode(account["refresh_token"], options={"verify_signature": False})
    assert claims["jti"] not in text
    assert "argon" not in text and "refresh_jti" not in text


def test_last_used_at_moves_on_refresh(app, client, account):
    set_session(app, sid_of(account["access_token"]), last_used_at=utcnow() - timedelta(hours=1))
    before = client.get(SESSIONS, headers=account["headers"]).get_json()["items"][0]["last_used_at"]
    newer = refreshed(client, account).get_json()
    after = client.get(SESSIONS, headers=bearer(newer["access_token"])).get_json()["items"][0]
    assert after["last_used_at"] > before
    assert after["created_at"] <= after["last_used_at"]


def test_sessions_are_paginated_with_links(client, make: Factory, account):
    for _ in range(3):
        make.login(account["username"])
    first = client.get(SESSIONS, query_string={"page_size": 2}, headers=account["headers"])
    assert first.get_json()["total"] == 4
    assert 'rel="next"' in first.headers["Link"]
    target = first.headers["Link"].split(">")[0].lstrip("<")
    second = client.get(target, headers=account["headers"])
    ids = [item["id"] for item in first.get_json()["items"] + second.get_json()["items"]]
    assert len(set(ids)) == 4


@pytest.mark.parametrize("query", [{"page": 0}, {"page_size": 101}, {"page": "x"}])
def test_sessions_with_a_bad_page_query_is_422(client, account, query):
    assert_problem(client.get(SESSIONS, query_string=query, headers=account["headers"]), 422)


def test_the_login_user_agent_tells_sessions_apart(client, account):
    client.post(
        LOGIN,
        json={"username": account["username"], "password": PASSWORD},
        headers={"User-Agent": "FieldApp/2.1 (\x1b[31mred\x7f)" + "y" * 400},
    )
    items = client.get(SESSIONS, headers=account["headers"]).get_json()["items"]
    kept = [item["user_agent"] for item in items if not item["current"]][0]
    assert kept.startswith("FieldApp/2.1 ([31mred)yyy")
    assert len(kept) == 256


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("\x00\x01", None),
        ("curl/8.5.0", "curl/8.5.0"),
        ("é-app", "-app"),
    ],
)
def test_printable_user_agent(given, kept):
    assert printable_user_agent(given) == kept


def test_ending_one_session_makes_its_tokens_401_at_once(client, make: Factory, account):
    """The issue's case 4, ending one."""
    other = make.login(account["username"])
    response = client.delete(f"{SESSIONS}/{sid_of(other['access_token'])}", headers=account["headers"])
    assert response.status_code == 204
    assert response.data == b""
    assert_problem(client.get(ME, headers=bearer(other["access_token"])), 401)
    assert_problem(refreshed(client, other), 401)
    assert works(client, account)
    assert [item["id"] for item in client.get(SESSIONS, headers=account["headers"]).get_json()["items"]] == [
        sid_of(account["access_token"])
    ]


def test_ending_your_current_session_is_a_logout(client, account):
    response = client.delete(f"{SESSIONS}/{sid_of(account['access_token'])}", headers=account["headers"])
    assert response.status_code == 204
    assert_problem(client.get(ME, headers=account["headers"]), 401)


def test_ending_another_accounts_session_is_404_and_ends_nothing(client, make: Factory, account):
    theirs = make.account("survivor")
    response = client.delete(f"{SESSIONS}/{sid_of(theirs['access_token'])}", headers=account["headers"])
    assert_problem(response, 404)
    assert works(client, theirs)


def test_an_admin_cannot_end_another_accounts_session_here_either(client, admin, account):
    response = client.delete(f"{SESSIONS}/{sid_of(account['access_token'])}", headers=admin["headers"])
    assert_problem(response, 404)
    assert works(client, account)


@pytest.mark.parametrize("session_id", [str(uuid.uuid4()), "not-a-uuid", "123", "%00"])
def test_ending_an_unknown_or_malformed_session_is_404(client, account, session_id):
    assert_problem(client.delete(f"{SESSIONS}/{session_id}", headers=account["headers"]), 404)


def test_ending_an_ended_session_is_404(client, make: Factory, account):
    other = make.login(account["username"])
    path = f"{SESSIONS}/{sid_of(other['access_token'])}"
    assert client.delete(path, headers=account["headers"]).status_code == 204
    assert_problem(client.delete(path, headers=account["headers"]), 404)


def test_ending_every_other_session_keeps_only_this_one(client, make: Factory, account):
    """The issue's case 4, ending all but the current one."""
    others = [make.login(account["username"]) for _ in range(3)]
    theirs = make.account("survivor")
    response = client.delete(SESSIONS, headers=account["headers"])
    assert response.status_code == 204
    for pair in others:
        assert_problem(client.get(ME, headers=bearer(pair["access_token"])), 401)
        assert_problem(refreshed(client, pair), 401)
    assert works(client, account)
    assert works(client, theirs)
    assert client.get(SESSIONS, headers=account["headers"]).get_json()["total"] == 1


def test_sessions_need_an_access_token(client, account):
    assert_problem(client.get(SESSIONS), 401)
    assert_problem(client.get(SESSIONS, headers=bearer(account["refresh_token"])), 401)
    assert_problem(client.delete(SESSIONS, headers=bearer(account["refresh_token"])), 401)


# --- an admin's password reset ---------------------------------------------------------------


def test_an_admin_password_reset_ends_every_session_of_the_account(client, admin, make: Factory, account):
    other = make.login(account["username"])
    response = client.patch(
        f"/api/v1/accounts/{account['id']}", json={"password": NEW_PASSWORD}, headers=admin["headers"]
    )
    assert response.status_code == 200
    assert "password" not in response.get_json()
    for pair in (account, other):
        assert_problem(client.get(ME, headers=bearer(pair["access_token"])), 401)
        assert_problem(refreshed(client, pair), 401)
    assert (
        client.post(LOGIN, json={"username": account["username"], "password": NEW_PASSWORD}).status_code
        == 200
    )
    assert works(client, admin)


def test_an_admin_cannot_reset_their_own_password_without_the_current_one(client, admin):
    response = client.patch(
        f"/api/v1/accounts/{admin['id']}", json={"password": NEW_PASSWORD}, headers=admin["headers"]
    )
    assert_problem(response, 409)
    assert works(client, admin)
    assert client.post(LOGIN, json={"username": admin["username"], "password": PASSWORD}).status_code == 200


def test_a_reset_to_a_common_password_is_422_and_ends_nothing(client, admin, account):
    response = client.patch(
        f"/api/v1/accounts/{account['id']}", json={"password": "password1234"}, headers=admin["headers"]
    )
    assert list(assert_problem(response, 422)["errors"]) == ["password"]
    assert works(client, account)


def test_a_reset_of_an_unknown_account_is_404(client, admin):
    response = client.patch(
        f"/api/v1/accounts/{random_uuid()}", json={"password": NEW_PASSWORD}, headers=admin["headers"]
    )
    assert_problem(response, 404)


# --- expiry ---------------------------------------------------------------------------------


def test_no_token_outlives_session_max_age(make_app, account):
    short = make_app(SESSION_MAX_AGE="100", JWT_REFRESH_TTL="3600", JWT_ACCESS_TTL="900")
    client = short.test_client()
    pair = client.post(LOGIN, json={"username": account["username"], "password": PASSWORD}).get_json()
    refresh_claims = pyjwt.decode(pair["refresh_token"], options={"verify_signature": False})
    access_claims = pyjwt.decode(pair["access_token"], options={"verify_signature": False})
    assert refresh_claims["exp"] - refresh_claims["iat"] <= 100
    assert access_claims["exp"] <= refresh_claims["exp"]
    assert pair["expires_in"] <= 100


def test_a_session_past_its_expiry_refuses_its_refresh_token(app, client, account):
    set_session(app, sid_of(account["access_token"]), expires_at=utcnow() - timedelta(seconds=1))
    assert_problem(refreshed(client, account), 401)
    assert_problem(client.get(ME, headers=account["headers"]), 401)
    assert client.get(SESSIONS, headers=bearer(account["access_token"])).status_code == 401


def test_the_refresh_window_slides_up_to_session_max_age(app, client, account):
    born = utcnow() - app.config["SESSION_MAX_AGE"] + timedelta(hours=1)
    set_session(app, sid_of(account["access_token"]), created_at=born)
    newer = refreshed(client, account).get_json()
    claims = pyjwt.decode(newer["refresh_token"], options={"verify_signature": False})
    assert 3500 <= claims["exp"] - claims["iat"] <= 3601


# --- clean-up -------------------------------------------------------------------------------


def add_session(app: Flask, account_id: str, expires_in: timedelta, ended: bool = False) -> str:
    with app.app_context():
        row = AccountSession(
            account_id=uuid.UUID(account_id),
            expires_at=utcnow() + expires_in,
            ended_at=utcnow() if ended else None,
            refresh_jti=str(uuid.uuid4()),
        )
        db.session.add(row)
        db.session.commit()
        return str(row.id)


def stored_ids(app: Flask) -> set[str]:
    with app.app_context():
        return {str(value) for value in db.session.scalars(select(AccountSession.id))}


def test_sessions_purge_deletes_expired_sessions_only(app, account):
    live = sid_of(account["access_token"])
    expired = [add_session(app, account["id"], timedelta(seconds=-5)) for _ in range(3)]
    ended_recently = add_session(app, account["id"], timedelta(minutes=10), ended=True)
    result = app.test_cli_runner().invoke(args=["sessions", "purge"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "purged 3 expired sessions"
    assert stored_ids(app) == {live, ended_recently}
    assert not set(expired) & stored_ids(app)


def test_sessions_purge_works_in_batches(app, account):
    from security.sessions import purge_expired

    for _ in range(5):
        add_session(app, account["id"], timedelta(seconds=-5))
    with app.app_context():
        assert purge_expired(batch=2) == 5
    assert stored_ids(app) == {sid_of(account["access_token"])}


def test_a_login_deletes_that_accounts_expired_sessions(app, make: Factory, account):
    mine = add_session(app, account["id"], timedelta(seconds=-5))
    someone = make.account("survivor")
    theirs = add_session(app, someone["id"], timedelta(seconds=-5))
    make.login(account["username"])
    assert mine not in stored_ids(app)
    assert theirs in stored_ids(app)


def test_an_ended_session_is_kept_only_while_its_access_tokens_may_live(app, client, account):
    client.post(LOGOUT, headers=account["headers"])
    row = session_row(app, sid_of(account["access_token"]))
    assert row is not None and row.ended_at is not None
    assert row.expires_at <= utcnow() + app.config["JWT_ACCESS_TOKEN_EXPIRES"]


def test_a_session_deleted_from_the_database_is_ended(app, client, account):
    with app.app_context():
        db.session.execute(
            AccountSession.__table__.delete().where(
                AccountSession.id == uuid.UUID(sid_of(account["access_token"]))
            )
        )
        db.session.commit()
    assert_problem(client.get(ME, headers=account["headers"]), 401)
    assert_problem(refreshed(client, account), 401)


# --- audit trail and metric ------------------------------------------------------------------


def test_the_session_lifecycle_is_audited_without_a_secret(
    app, client, make: Factory, account, admin, capsys
):
    capsys.readouterr()
    other = make.login(account["username"])
    started = audit_events(capsys, "session.started")
    assert [event["session_id"] for event in started] == [sid_of(other["access_token"])]

    newer = refreshed(client, other).get_json()
    (event,) = audit_events(capsys, "session.refreshed")
    assert (event["account_id"], event["session_id"]) == (account["id"], sid_of(other["access_token"]))

    age_rotation(app, sid_of(other["access_token"]), 60)
    refreshed(client, other)
    out = capsys.readouterr().out
    events = [json.loads(line) for line in out.splitlines()]
    (reuse,) = [e for e in events if e.get("event") == "session.reuse_detected"]
    (ended,) = [e for e in events if e.get("event") == "session.ended"]
    assert reuse["level"] == "warning"
    assert events.index(reuse) < events.index(ended)  # why first, then what it did
    assert ended["reason"] == "refresh_token_reuse"

    change(client, account)
    lines = capsys.readouterr().out
    assert [
        json.loads(line)["account_id"] for line in lines.splitlines() if '"password.changed"' in line
    ] == [account["id"]]
    client.patch(f"/api/v1/accounts/{account['id']}", json={"password": PASSWORD}, headers=admin["headers"])
    lines += capsys.readouterr().out
    reset = [json.loads(line) for line in lines.splitlines() if '"password.reset"' in line]
    assert [(e["target"], e["actor"]) for e in reset] == [(account["id"], admin["id"])]
    ended_reasons = [json.loads(line)["reason"] for line in lines.splitlines() if '"session.ended"' in line]
    assert ended_reasons == ["password_reset"]  # the change ended no other (the other had ended)
    for secret in (
        PASSWORD,
        NEW_PASSWORD,
        newer["refresh_token"],
        newer["access_token"],
        account["access_token"],
    ):
        assert secret not in out + lines


@pytest.mark.parametrize(
    ("request_path", "method", "reason"),
    [
        (LOGOUT, "post", "logout"),
        (SESSIONS, "delete", "ended_by_holder"),
    ],
)
def test_each_end_is_audited_with_its_reason(
    client, make: Factory, account, capsys, request_path, method, reason
):
    other = make.login(account["username"])
    capsys.readouterr()
    pair = other if method == "post" else account
    assert getattr(client, method)(request_path, headers=bearer(pair["access_token"])).status_code == 204
    (event,) = audit_events(capsys, "session.ended")
    assert (event["reason"], event["session_id"]) == (reason, sid_of(other["access_token"]))


def test_disable_ends_sessions_with_its_reason(client, admin, account, capsys):
    capsys.readouterr()
    client.patch(f"/api/v1/accounts/{account['id']}", json={"disabled": True}, headers=admin["headers"])
    (event,) = audit_events(capsys, "session.ended")
    assert event["reason"] == "account_disabled"


def test_detected_reuse_is_counted(app, client, account):
    before = REGISTRY.get_sample_value("refresh_token_reuse_total") or 0.0
    refreshed(client, account)
    refreshed(client, account)  # within the grace: a concurrent refresh, not counted
    assert (REGISTRY.get_sample_value("refresh_token_reuse_total") or 0.0) == before
    age_rotation(app, sid_of(account["access_token"]), 60)
    refreshed(client, account)
    assert REGISTRY.get_sample_value("refresh_token_reuse_total") == before + 1


# --- a login that overlaps a change of the account (found from outside) ----------------------


def during_verify(monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    """Run `change` while the next password verification runs (as a racing request would)."""
    from security.passwords import Passwords

    real_verify = Passwords.verify

    def verify(self: Passwords, stored: str, password: str) -> tuple[bool, str | None]:
        outcome = real_verify(self, stored, password)
        monkeypatch.setattr(Passwords, "verify", real_verify)
        change()
        return outcome

    monkeypatch.setattr(Passwords, "verify", verify)


def login_sessions(app: Flask, account: dict[str, Any]) -> int:
    with app.app_context():
        return len(
            db.session.scalars(
                select(AccountSession.id).where(AccountSession.account_id == uuid.UUID(account["id"]))
            ).all()
        )


@pytest.mark.parametrize(
    "change",
    [
        lambda client, admin, account: change(client, account),
        lambda client, admin, account: client.patch(
            f"/api/v1/accounts/{account['id']}", json={"password": NEW_PASSWORD}, headers=admin["headers"]
        ),
        lambda client, admin, account: client.patch(
            f"/api/v1/accounts/{account['id']}", json={"disabled": True}, headers=admin["headers"]
        ),
    ],
    ids=["password change", "admin reset", "disable"],
)
def test_a_login_that_checked_the_password_before_a_change_starts_no_session(
    app, client, admin, account, monkeypatch, change
):
    """The change ends every session there is; a login whose Argon2 ran before it must not add
    one after it (else the attacker the holder meant to lock out keeps a live session)."""
    made = []
    during_verify(monkeypatch, lambda: made.append(change(app.test_client(), admin, account)))
    before = login_sessions(app, account)
    response = client.post(LOGIN, json={"username": account["username"], "password": PASSWORD})
    assert made[0].status_code in (200, 204)
    assert_problem(response, 401)
    assert login_sessions(app, account) == before


def test_a_rehash_never_overwrites_a_password_changed_meanwhile(app, client, admin, account, monkeypatch):
    """A login with an outdated hash rehashes it, but only if it is still the stored one."""
    from argon2 import PasswordHasher

    with app.app_context():
        from api.accounts.models import Account

        outdated = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
        db.session.execute(
            update(Account).where(Account.id == uuid.UUID(account["id"])).values(password_hash=outdated)
        )
        db.session.commit()
    during_verify(
        monkeypatch,
        lambda: app.test_client().patch(
            f"/api/v1/accounts/{account['id']}", json={"password": NEW_PASSWORD}, headers=admin["headers"]
        ),
    )
    assert_problem(client.post(LOGIN, json={"username": account["username"], "password": PASSWORD}), 401)
    assert (
        client.post(LOGIN, json={"username": account["username"], "password": NEW_PASSWORD}).status_code
        == 200
    )
    assert_problem(client.post(LOGIN, json={"username": account["username"], "password": PASSWORD}), 401)


def test_a_refresh_token_pairing_an_account_with_another_accounts_session_is_refused(
    app, make: Factory, account
):
    """Only a leaked signing key could mint one; the session's owner decides, not the token."""
    other = make.account("survivor")
    claims = pyjwt.decode(other["refresh_token"], options={"verify_signature": False})
    with app.app_context():
        assert rotate(claims["sid"], claims["jti"], uuid.UUID(account["id"])).outcome == Outcome.DEAD
        assert rotate(claims["sid"], claims["jti"], uuid.UUID(other["id"])).outcome == Outcome.ROTATED
