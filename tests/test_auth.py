"""/api/v1/auth: register, login, refresh, logout and me, as clients use them (docs/api.md, Auth
and sessions)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import jwt as pyjwt
import pytest
from argon2 import PasswordHasher, Type
from flask import Flask
from sqlalchemy import select

from api.accounts.models import Account
from api.extensions import db
from security.passwords import Passwords
from tests.conftest import PASSWORD, SECRET, assert_problem, unique_name

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ISSUER, AUDIENCE = "resistance-api", "resistance-api-clients"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict[str, Any]:
    """Verify a token the way the app does and return its claims."""
    return pyjwt.decode(token, SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE)


def stored_hash(app: Flask, username: str) -> str:
    with app.app_context():
        return db.session.scalar(
            select(Account.password_hash).where(Account.username_key == username.lower())
        )


def set_stored_hash(app: Flask, username: str, password_hash: str) -> None:
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username_key == username.lower()))
        account.password_hash = password_hash
        db.session.commit()


def comparable(response: Any) -> dict[str, Any]:
    """What a client can observe of a failed login, minus what differs on every request anyway."""
    body = response.get_json()
    body.pop("request_id")
    body.pop("instance")
    headers = sorted(
        (k, v)
        for k, v in response.headers.items()
        if k not in {"X-Request-ID", "Content-Length"} and not k.startswith("RateLimit-")
    )
    return {"status": response.status_code, "body": body, "headers": headers}


@pytest.fixture
def closed_app(make_app):
    """A second app on the same database with ALLOW_REGISTRATION=false."""
    return make_app(ALLOW_REGISTRATION="false")


# --- register -------------------------------------------------------------------------------


def test_register_valid_body_is_201_survivor(client):
    response = client.post(REGISTER, json={"username": "Ada.Lovelace", "password": PASSWORD})
    assert response.status_code == 201
    body = response.get_json()
    assert list(body) == ["id", "username", "role", "created_at"]
    assert uuid.UUID(body["id"]).version == 4
    assert body["username"] == "Ada.Lovelace"
    assert body["role"] == "survivor"
    assert RFC3339_UTC.match(body["created_at"])
    assert b"password" not in response.data
    assert b"argon2" not in response.data


def test_register_then_login_works(client):
    client.post(REGISTER, json={"username": "grace_h", "password": PASSWORD})
    assert client.post(LOGIN, json={"username": "grace_h", "password": PASSWORD}).status_code == 200


def test_register_stores_an_argon2id_hash_not_the_password(app, client):
    client.post(REGISTER, json={"username": "hashme", "password": PASSWORD})
    stored = stored_hash(app, "hashme")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


@pytest.mark.parametrize("other_case", ["ada", "ADA", "aDa"])
def test_register_username_taken_in_any_case_is_409(client, other_case):
    assert client.post(REGISTER, json={"username": "Ada", "password": PASSWORD}).status_code == 201
    response = client.post(REGISTER, json={"username": other_case, "password": PASSWORD})
    body = assert_problem(response, 409)
    assert "username" in body["errors"]


@pytest.mark.parametrize(
    "username",
    ["ab", "x" * 33, "bad name", "ada!", "ada\n", "\nada", "ada\x00", "émile", "", "a/b"],
)
def test_register_bad_username_is_422(client, username):
    response = client.post(REGISTER, json={"username": username, "password": PASSWORD})
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["username"]


@pytest.mark.parametrize("username", ["abc", "x" * 32, "A.b_c-9"])
def test_register_username_at_bounds_is_201(client, username):
    response = client.post(REGISTER, json={"username": username, "password": PASSWORD})
    assert response.status_code == 201


def test_register_username_with_trailing_newline_is_not_a_second_account(client):
    assert client.post(REGISTER, json={"username": "ada", "password": PASSWORD}).status_code == 201
    response = client.post(REGISTER, json={"username": "ada\n", "password": PASSWORD})
    assert_problem(response, 422)


@pytest.mark.parametrize(
    "password",
    [
        "x1y2z3w4q5r",  # 11 characters
        "x1y2z3w4q5r6" * 10 + "x" * 9,  # 129 characters
        "correcthorsebatterystaple",  # on the common list
        "CorrectHorseBatteryStaple",  # on the list in another case
        "aaaaaaaaaaaaaaaa",
        "abababababababab",
        "abcdefghijklmnop",
        "12345678901234",
    ],
)
def test_register_unacceptable_password_is_422_and_creates_nothing(client, password):
    response = client.post(REGISTER, json={"username": "weakling", "password": password})
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["password"]
    assert password not in response.get_data(as_text=True)
    assert client.post(REGISTER, json={"username": "weakling", "password": PASSWORD}).status_code == 201


@pytest.mark.parametrize("length", [12, 128])
def test_register_password_at_length_bounds_is_201(client, length):
    password = ("Zq7-wX2!mP4#" * 11)[:length]
    response = client.post(REGISTER, json={"username": unique_name(), "password": password})
    assert response.status_code == 201


@pytest.mark.parametrize("extra", [{"role": "admin"}, {"disabled": False}, {"id": str(uuid.uuid4())}])
def test_register_unknown_field_is_422(client, extra):
    response = client.post(REGISTER, json={"username": "sneaky", "password": PASSWORD, **extra})
    body = assert_problem(response, 422)
    assert list(body["errors"]) == list(extra)
    assert client.post(LOGIN, json={"username": "sneaky", "password": PASSWORD}).status_code == 401


@pytest.mark.parametrize(
    "body", [{}, {"username": "lonely"}, {"password": PASSWORD}, {"username": 5, "password": PASSWORD}]
)
def test_register_missing_or_mistyped_field_is_422(client, body):
    assert "errors" in assert_problem(client.post(REGISTER, json=body), 422)


def test_register_when_closed_is_403_and_creates_nothing(closed_app, client):
    closed = closed_app.test_client()
    response = closed.post(REGISTER, json={"username": "latecomer", "password": PASSWORD})
    assert_problem(response, 403)
    assert client.post(LOGIN, json={"username": "latecomer", "password": PASSWORD}).status_code == 401


@pytest.mark.parametrize("body", [{}, {"username": "x", "password": "short", "role": "admin"}])
def test_register_when_closed_is_403_whatever_the_body(closed_app, body):
    response = closed_app.test_client().post(REGISTER, json=body)
    assert_problem(response, 403, detail="Registration is closed on this server.")


def test_register_when_closed_still_allows_login(closed_app, make):
    account = make.account("survivor")
    closed = closed_app.test_client()
    response = closed.post(LOGIN, json={"username": account["username"], "password": PASSWORD})
    assert response.status_code == 200


# --- login ----------------------------------------------------------------------------------


def test_login_valid_credentials_returns_token_pair(client, make):
    account = make.account("observer")
    response = client.post(LOGIN, json={"username": account["username"], "password": PASSWORD})
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["access_token", "refresh_token", "token_type", "expires_in"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert response.headers["Cache-Control"] == "no-store"
    access, refresh = claims_of(body["access_token"]), claims_of(body["refresh_token"])
    assert pyjwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    assert access["sub"] == refresh["sub"] == account["id"]
    assert (access["type"], refresh["type"]) == ("access", "refresh")
    assert access["exp"] - access["iat"] == 900
    assert refresh["exp"] - refresh["iat"] == 7 * 86400
    assert access["jti"] != refresh["jti"]
    assert access["sid"] == refresh["sid"] == str(uuid.UUID(access["sid"]))


def test_login_username_in_other_case_succeeds(client, make):
    make.account("survivor", username="MixedCase")
    for name in ("mixedcase", "MIXEDCASE", "MixedCase"):
        assert client.post(LOGIN, json={"username": name, "password": PASSWORD}).status_code == 200


def test_login_password_is_case_sensitive(client, make):
    account = make.account("survivor")
    response = client.post(LOGIN, json={"username": account["username"], "password": PASSWORD.upper()})
    assert_problem(response, 401)


def _disable(client, admin, account_id: str) -> None:
    response = client.patch(
        f"/api/v1/accounts/{account_id}", json={"disabled": True}, headers=admin["headers"]
    )
    assert response.status_code == 200


def test_login_failures_are_all_the_same_401(client, make, admin):
    known = make.account("survivor")
    disabled = make.account("survivor")
    _disable(client, admin, disabled["id"])
    attempts = {
        "unknown user": {"username": "nobody-here", "password": PASSWORD},
        "wrong password": {"username": known["username"], "password": PASSWORD + "!"},
        "malformed username": {"username": "no such name!", "password": PASSWORD},
        "NUL in username": {"username": "ad\x00min", "password": PASSWORD},
        "username too long for any account": {"username": "x" * 200, "password": PASSWORD},
        "disabled account": {"username": disabled["username"], "password": PASSWORD},
        "empty password": {"username": known["username"], "password": ""},
    }
    seen = {}
    for name, credentials in attempts.items():
        response = client.post(LOGIN, json=credentials)
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        seen[name] = comparable(response)
    reference = seen["unknown user"]
    for name, observed in seen.items():
        assert observed == reference, name


@pytest.mark.parametrize("case", ["unknown", "wrong password", "malformed", "disabled", "valid"])
def test_login_runs_exactly_one_password_verification(client, make, admin, monkeypatch, case):
    known = make.account("survivor")
    if case == "disabled":
        _disable(client, admin, known["id"])
    credentials = {
        "unknown": {"username": "ghost-user", "password": PASSWORD},
        "wrong password": {"username": known["username"], "password": "not-the-password-1"},
        "malformed": {"username": "ghost user!", "password": PASSWORD},
        "disabled": {"username": known["username"], "password": PASSWORD},
        "valid": {"username": known["username"], "password": PASSWORD},
    }[case]
    calls: list[str] = []
    real_verify = Passwords.verify

    def counting_verify(self, stored, password):
        calls.append(stored)
        return real_verify(self, stored, password)

    monkeypatch.setattr(Passwords, "verify", counting_verify)
    client.post(LOGIN, json=credentials)
    assert len(calls) == 1
    assert calls[0].startswith("$argon2id$")


@pytest.mark.parametrize("username", ["ghost-user", "ghost user!", "x" * 100])
def test_login_unknown_user_calls_dummy_verify(client, monkeypatch, username):
    spied: list[str] = []
    real = Passwords.dummy_verify

    def spy(self, password):
        spied.append(password)
        return real(self, password)

    monkeypatch.setattr(Passwords, "dummy_verify", spy)
    response = client.post(LOGIN, json={"username": username, "password": PASSWORD})
    assert_problem(response, 401)
    assert spied == [PASSWORD]


def test_login_known_user_does_not_call_dummy_verify(client, make, monkeypatch):
    account = make.account("survivor")
    spied: list[str] = []
    monkeypatch.setattr(Passwords, "dummy_verify", lambda self, password: spied.append(password))
    response = client.post(LOGIN, json={"username": account["username"], "password": "wrong-password-99"})
    assert_problem(response, 401)
    assert spied == []


@pytest.mark.parametrize(
    "old_hasher",
    [
        PasswordHasher(time_cost=2, memory_cost=16, parallelism=1, hash_len=16, salt_len=16),
        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=4, salt_len=8, type=Type.I),
    ],
    ids=["other-parameters", "argon2i"],
)
def test_login_with_outdated_hash_replaces_it(app, client, make, old_hasher):
    account = make.account("survivor")
    old_hash = old_hasher.hash(PASSWORD)
    set_stored_hash(app, account["username"], old_hash)
    assert client.post(LOGIN, json={"username": account["username"], "password": PASSWORD}).status_code == 200
    new_hash = stored_hash(app, account["username"])
    assert new_hash != old_hash
    current = app.extensions["passwords"].hasher
    assert current.verify(new_hash, PASSWORD)
    assert not current.check_needs_rehash(new_hash)
    assert client.post(LOGIN, json={"username": account["username"], "password": PASSWORD}).status_code == 200


def test_login_with_outdated_hash_and_wrong_password_keeps_it(app, client, make):
    account = make.account("survivor")
    old_hash = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    set_stored_hash(app, account["username"], old_hash)
    response = client.post(LOGIN, json={"username": account["username"], "password": "wrong-password-99"})
    assert_problem(response, 401)
    assert stored_hash(app, account["username"]) == old_hash


def test_login_with_current_hash_keeps_it(app, client, make):
    account = make.account("survivor")
    before = stored_hash(app, account["username"])
    assert client.post(LOGIN, json={"username": account["username"], "password": PASSWORD}).status_code == 200
    assert stored_hash(app, account["username"]) == before


def test_login_unknown_field_is_422(client, make):
    account = make.account("survivor")
    body = {"username": account["username"], "password": PASSWORD, "otp": "123456"}
    assert list(assert_problem(client.post(LOGIN, json=body), 422)["errors"]) == ["otp"]


@pytest.mark.parametrize("body", [{}, {"username": "abc"}, {"username": 1, "password": PASSWORD}])
def test_login_missing_or_mistyped_field_is_422(client, body):
    assert "errors" in assert_problem(client.post(LOGIN, json=body), 422)


# --- refresh --------------------------------------------------------------------------------


def test_refresh_returns_a_new_working_pair(client, make):
    account = make.account("survivor")
    response = client.post(REFRESH, headers=bearer(account["refresh_token"]))
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["access_token", "refresh_token", "token_type", "expires_in"]
    assert body["access_token"] != account["access_token"]
    assert body["refresh_token"] != account["refresh_token"]
    assert claims_of(body["access_token"])["sub"] == account["id"]
    assert client.get(ME, headers=bearer(body["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(body["refresh_token"])).status_code == 200


def test_refresh_reused_token_is_401(client, make):
    account = make.account("survivor")
    assert client.post(REFRESH, headers=bearer(account["refresh_token"])).status_code == 200
    response = client.post(REFRESH, headers=bearer(account["refresh_token"]))
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_refresh_leaves_the_old_access_token_working(client, make):
    account = make.account("survivor")
    client.post(REFRESH, headers=bearer(account["refresh_token"]))
    assert client.get(ME, headers=account["headers"]).status_code == 200


def test_refresh_with_access_token_is_401(client, make):
    account = make.account("survivor")
    response = client.post(REFRESH, headers=account["headers"])
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # the access token was not consumed by the refused attempt
    assert client.get(ME, headers=account["headers"]).status_code == 200


def test_refresh_token_as_access_token_is_401(client, make):
    account = make.account("survivor")
    response = client.get(ME, headers=bearer(account["refresh_token"]))
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_refresh_without_token_is_401(client):
    assert_problem(client.post(REFRESH), 401)


def test_rotate_same_refresh_token_twice_concurrently_is_401(app, make):
    """Two requests that both passed the session check: only the first may rotate; the second,
    within the grace, is refused without ending the session."""
    from security.sessions import Outcome, rotate

    account = make.account("survivor")
    claims = claims_of(account["refresh_token"])
    with app.app_context():
        first = rotate(claims["sid"], claims["jti"], uuid.UUID(account["id"]))
        second = rotate(claims["sid"], claims["jti"], uuid.UUID(account["id"]))
    assert first.outcome == Outcome.ROTATED
    assert first.grant is not None and first.grant.session_id == claims["sid"]
    assert first.grant.refresh_jti != claims["jti"]
    assert (second.outcome, second.grant) == (Outcome.CONCURRENT, None)


# --- logout ---------------------------------------------------------------------------------


def test_logout_is_204_and_kills_the_access_token(client, make):
    account = make.account("survivor")
    response = client.post(LOGOUT, headers=account["headers"])
    assert response.status_code == 204
    assert response.data == b""
    assert_problem(
        client.get(ME, headers=account["headers"]), 401, detail="The session has ended; log in again."
    )


def test_logout_without_refresh_token_ends_the_session_its_refresh_token_too(client, make):
    """docs/api.md, POST /api/v1/auth/logout: logout ends the session the access token belongs to."""
    account = make.account("survivor")
    assert client.post(LOGOUT, headers=account["headers"]).status_code == 204
    assert_problem(client.post(REFRESH, headers=bearer(account["refresh_token"])), 401)


def test_logout_with_empty_body_is_204(client, make):
    account = make.account("survivor")
    assert client.post(LOGOUT, json={}, headers=account["headers"]).status_code == 204
    assert_problem(client.get(ME, headers=account["headers"]), 401)


def test_logout_with_refresh_token_kills_both(client, make):
    account = make.account("survivor")
    response = client.post(
        LOGOUT, json={"refresh_token": account["refresh_token"]}, headers=account["headers"]
    )
    assert response.status_code == 204
    assert_problem(client.get(ME, headers=account["headers"]), 401)
    assert_problem(client.post(REFRESH, headers=bearer(account["refresh_token"])), 401)


def test_logout_leaves_other_sessions_of_the_account_working(client, make):
    account = make.account("survivor")
    other = make.login(account["username"])
    client.post(LOGOUT, json={"refresh_token": account["refresh_token"]}, headers=account["headers"])
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(other["refresh_token"])).status_code == 200


def test_logout_twice_with_the_same_token_is_401(client, make):
    account = make.account("survivor")
    assert client.post(LOGOUT, headers=account["headers"]).status_code == 204
    assert_problem(client.post(LOGOUT, headers=account["headers"]), 401)


def test_logout_with_a_rotated_out_refresh_token_is_204_and_ends_the_session(client, make):
    account = make.account("survivor")
    rotated = client.post(REFRESH, headers=bearer(account["refresh_token"])).get_json()
    response = client.post(
        LOGOUT, json={"refresh_token": account["refresh_token"]}, headers=account["headers"]
    )
    assert response.status_code == 204
    assert_problem(client.post(REFRESH, headers=bearer(rotated["refresh_token"])), 401)
    assert_problem(client.get(ME, headers=bearer(rotated["access_token"])), 401)


def test_logout_with_refresh_token_of_another_account_is_422_and_revokes_nothing(client, make):
    mine, theirs = make.account("survivor"), make.account("survivor")
    response = client.post(LOGOUT, json={"refresh_token": theirs["refresh_token"]}, headers=mine["headers"])
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["refresh_token"]
    assert client.get(ME, headers=mine["headers"]).status_code == 200
    assert client.post(REFRESH, headers=bearer(theirs["refresh_token"])).status_code == 200


def _foreign_refresh_token(account: dict[str, Any], **changes: Any) -> str:
    import time

    now = int(time.time())
    claims = {
        "sub": account["id"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "type": "refresh",
        "fresh": False,
        "gen": 0,
        **changes,
    }
    key = claims.pop("key", SECRET)
    return pyjwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="HS256")


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "three-parts",
        "own access token",
        "expired",
        "other key",
        "jti too long",
        "no exp",
        "no jti",
    ],
)
def test_logout_with_invalid_refresh_token_is_422_and_revokes_nothing(client, make, kind):
    import time

    account = make.account("survivor")
    token = {
        "garbage": "garbage",
        "three-parts": "a.b.c",
        "own access token": account["access_token"],
        "expired": _foreign_refresh_token(account, exp=int(time.time()) - 10, iat=int(time.time()) - 700),
        "other key": _foreign_refresh_token(account, key=SECRET[::-1]),
        "jti too long": _foreign_refresh_token(account, jti="j" * 65),
        "no exp": _foreign_refresh_token(account, exp=None),
        "no jti": _foreign_refresh_token(account, jti=None),
    }[kind]
    response = client.post(LOGOUT, json={"refresh_token": token}, headers=account["headers"])
    assert list(assert_problem(response, 422)["errors"]) == ["refresh_token"]
    assert client.get(ME, headers=account["headers"]).status_code == 200


@pytest.mark.parametrize("body", [{"refresh_token": 42}, {"refresh_token": "x" * 4097}, {"everything": True}])
def test_logout_with_invalid_body_is_422(client, make, body):
    account = make.account("survivor")
    assert "errors" in assert_problem(client.post(LOGOUT, json=body, headers=account["headers"]), 422)
    assert client.get(ME, headers=account["headers"]).status_code == 200


# --- me -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "survivor", "observer"])
def test_me_returns_the_account_without_survivor(client, make, role):
    account = make.account(role)
    response = client.get(ME, headers=account["headers"])
    assert response.status_code == 200
    assert response.get_json() == {
        "id": account["id"],
        "username": account["username"],
        "role": role,
        "survivor_id": None,
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_me_after_creating_a_survivor_names_it(client, make):
    account = make.account("survivor")
    survivor = make.survivor(owner=account)
    body = client.get(ME, headers=account["headers"]).get_json()
    assert body["survivor_id"] == survivor["id"]


def test_me_without_token_is_401(client):
    response = client.get(ME)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- which routes authenticate (security.permissions.auth_mode) -----------------------------


def test_head_on_protected_route_needs_a_token(client, make):
    account = make.account("survivor")
    assert client.head(ME).status_code == 401
    assert client.head(ME, headers=account["headers"]).status_code == 200


def test_options_on_protected_route_answers_without_token(client):
    response = client.options(ME)
    assert response.status_code == 200
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert response.data == b""


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/openapi.json"])
def test_public_route_answers_without_token(client, path):
    assert client.get(path).status_code == 200


def test_unknown_path_is_404_not_401(client):
    assert_problem(client.get("/api/v1/auth/nothing-here"), 404)


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [
        ("GET", "/healthz", "public"),  # a function view marked @public
        ("GET", "/api/v1/openapi.json", "public"),  # a library endpoint on the public list
        ("POST", LOGIN, "public"),
        ("POST", REFRESH, "refresh"),
        ("GET", ME, "access"),
        ("HEAD", ME, "access"),  # HEAD follows GET
        ("OPTIONS", ME, "access"),  # no handler: the default; the JWT library exempts OPTIONS
        ("GET", "/no/such/path", None),
    ],
)
def test_auth_mode_names_how_each_route_authenticates(app, method, path, mode):
    from security.permissions import auth_mode

    with app.test_request_context(path, method=method):
        assert auth_mode() == mode
