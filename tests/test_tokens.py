"""JWT edge cases and attacks: every bad token is a 401 problem with a Bearer challenge, never 422.

Tokens are minted here with PyJWT directly, with the test secret where the attack needs a
correctly signed token (a stolen-key or forged-claims scenario) and with other keys elsewhere.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from jwt.warnings import InsecureKeyLengthWarning

from security import jwt as jwt_module
from security.sessions import Grant
from security.tokens import decode_refresh_token, issue_pair, well_formed
from tests.conftest import SECRET, assert_problem

ME = "/api/v1/auth/me"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ISSUER, AUDIENCE = "resistance-api", "resistance-api-clients"
DROP = object()


def claims(account: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The claims the app itself puts in an access token, changed as asked (DROP removes one)."""
    now = int(time.time())
    base = {
        "fresh": False,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "type": "access",
        "sub": account["id"],
        "nbf": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sid": unverified(account["access_token"])["sid"],
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not DROP}


def unverified(token: str) -> dict[str, Any]:
    return pyjwt.decode(token, options={"verify_signature": False})


def mint(payload: dict[str, Any], key: str | None = SECRET, algorithm: str = "HS256") -> str:
    with warnings.catch_warnings():
        # PyJWT warns that the test secret is short for HS512: the attack needs that very key.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return pyjwt.encode(payload, key, algorithm=algorithm)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def assert_refused(response: Any) -> dict[str, Any]:
    """401 problem+json with a Bearer challenge and nothing from the JWT library's own errors."""
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="resistance-api"')
    assert "msg" not in body
    assert "errors" not in body
    return body


@pytest.fixture
def account(make) -> dict[str, Any]:
    return make.account("survivor")


# --- attacks on access-token routes ---------------------------------------------------------


def _attack_token(kind: str, account: dict[str, Any]) -> str:
    now = int(time.time())
    good = claims(account)
    if kind == "alg none":
        return mint(good, None, "none")
    if kind == "alg none, no signature, capitalised":
        return f"{b64({'alg': 'None', 'typ': 'JWT'})}.{b64(good)}."
    if kind == "other key":
        return mint(good, "another-secret-" + "k" * 32)
    if kind == "right key, HS512":
        return mint(good, SECRET, "HS512")
    if kind == "right key, HS384":
        return mint(good, SECRET, "HS384")
    if kind == "expired":
        return mint(claims(account, iat=now - 1200, nbf=now - 1200, exp=now - 600))
    if kind == "expired a second ago":
        return mint(claims(account, iat=now - 901, nbf=now - 901, exp=now - 1))
    if kind == "not yet valid":
        return mint(claims(account, nbf=now + 600, exp=now + 1200))
    if kind == "wrong iss":
        return mint(claims(account, iss="someone-else"))
    if kind == "no iss":
        return mint(claims(account, iss=DROP))
    if kind == "wrong aud":
        return mint(claims(account, aud="other-clients"))
    if kind == "no aud":
        return mint(claims(account, aud=DROP))
    if kind == "no sub":
        return mint(claims(account, sub=DROP))
    if kind == "sub not a uuid":
        return mint(claims(account, sub="admin"))
    if kind == "sub of no account":
        return mint(claims(account, sub=str(uuid.uuid4())))
    if kind == "sub not a string":
        return mint(claims(account, sub=12345))
    if kind == "another session":
        return mint(claims(account, sid=str(uuid.uuid4())))
    if kind == "no sid":
        return mint(claims(account, sid=DROP))
    if kind == "sid not a uuid":
        return mint(claims(account, sid="session-1"))
    if kind == "sid not canonical":
        return mint(claims(account, sid=unverified(account["access_token"])["sid"].upper()))
    if kind == "no jti":
        return mint(claims(account, jti=DROP))
    if kind == "jti too long":
        return mint(claims(account, jti="j" * 65))
    if kind == "jti not a string":
        return mint(claims(account, jti=7))
    if kind == "no exp":
        return mint(claims(account, exp=DROP))
    if kind == "unknown type":
        return mint(claims(account, type="admin"))
    if kind == "refresh type":
        return account["refresh_token"]
    if kind == "tampered payload":
        header, _payload, signature = account["access_token"].split(".")
        return f"{header}.{b64(claims(account, sub=str(uuid.uuid4())))}.{signature}"
    if kind == "truncated signature":
        return account["access_token"][:-4]
    if kind == "garbage":
        return "not.a.token"
    if kind == "not base64":
        return "@@@.###.$$$"
    raise AssertionError(kind)


ATTACKS = [
    "alg none",
    "alg none, no signature, capitalised",
    "other key",
    "right key, HS512",
    "right key, HS384",
    "expired",
    "expired a second ago",
    "not yet valid",
    "wrong iss",
    "no iss",
    "wrong aud",
    "no aud",
    "no sub",
    "sub not a uuid",
    "sub of no account",
    "sub not a string",
    "another session",
    "no sid",
    "sid not a uuid",
    "sid not canonical",
    "no jti",
    "jti too long",
    "jti not a string",
    "no exp",
    "unknown type",
    "refresh type",
    "tampered payload",
    "truncated signature",
    "garbage",
    "not base64",
]


@pytest.mark.parametrize("kind", ATTACKS)
def test_access_route_with_bad_token_is_401(client, account, kind):
    response = client.get(ME, headers={"Authorization": f"Bearer {_attack_token(kind, account)}"})
    assert_refused(response)
    assert account["id"] not in response.get_data(as_text=True)


@pytest.mark.parametrize("kind", ATTACKS)
def test_body_route_with_bad_token_is_401_not_422(client, account, kind):
    token = _attack_token(kind, account)
    response = client.post(LOGOUT, json={"refresh_token": 5}, headers={"Authorization": f"Bearer {token}"})
    assert_refused(response)
    # nothing was revoked by the refused request
    assert client.get(ME, headers=account["headers"]).status_code == 200


def test_well_formed_token_minted_with_the_key_is_accepted(client, account):
    """The control for the attacks above: the same minting with nothing changed works."""
    response = client.get(ME, headers={"Authorization": f"Bearer {mint(claims(account))}"})
    assert response.status_code == 200
    assert response.get_json()["id"] == account["id"]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "bearer", "Basic dXNlcjpwYXNz", "Token abc", "Bearer a b", "JWT abc"],
)
def test_missing_or_malformed_authorization_header_is_401(client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_refused(client.get(ME, headers=headers))


@pytest.mark.parametrize("scheme", ["bearer", "BEARER"])
def test_bearer_scheme_in_any_case_with_valid_token_is_accepted(client, account, scheme):
    """RFC 9110 §11.1: the scheme is case-insensitive (contract v1.1); the token is what counts."""
    response = client.get(ME, headers={"Authorization": f"{scheme} {account['access_token']}"})
    assert response.status_code == 200


@pytest.mark.parametrize("parameter", ["jwt", "access_token", "token"])
def test_token_in_query_string_is_401(client, account, parameter):
    response = client.get(f"{ME}?{parameter}={account['access_token']}")
    assert_refused(response)


def test_token_in_cookie_is_401(client, account):
    client.set_cookie("access_token_cookie", account["access_token"])
    assert_refused(client.get(ME))


def test_token_in_json_body_is_401(client, account):
    response = client.post(LOGOUT, json={"access_token": account["access_token"]})
    assert_refused(response)


def test_token_of_an_ended_session_says_so(client, account):
    client.post(LOGOUT, headers=account["headers"])
    assert (
        assert_refused(client.get(ME, headers=account["headers"]))["detail"]
        == "The session has ended; log in again."
    )


def test_expired_token_detail_says_expired(client, account):
    now = int(time.time())
    token = mint(claims(account, iat=now - 100, exp=now - 50))
    body = assert_refused(client.get(ME, headers={"Authorization": f"Bearer {token}"}))
    assert body["detail"] == "The token has expired."


def test_bad_token_detail_is_ours_not_the_librarys(client, account):
    token = mint(claims(account, aud="other-clients"))
    body = assert_refused(client.get(ME, headers={"Authorization": f"Bearer {token}"}))
    assert "audience" not in body["detail"].lower()
    assert body["detail"] == "The token is malformed, wrongly signed or of the wrong type."


# --- attacks on the refresh route ----------------------------------------------------------


def _refresh_attack(kind: str, account: dict[str, Any]) -> str:
    now = int(time.time())
    refresh = claims(account, type="refresh")
    return {
        "alg none": mint(refresh, None, "none"),
        "other key": mint(refresh, "another-secret-" + "k" * 32),
        "expired": mint({**refresh, "iat": now - 100, "exp": now - 10}),
        "wrong aud": mint({**refresh, "aud": "x"}),
        "access token": account["access_token"],
        "no jti": mint({k: v for k, v in refresh.items() if k != "jti"}),
        "another session": mint({**refresh, "sid": str(uuid.uuid4())}),
    }[kind]


@pytest.mark.parametrize(
    "kind", ["alg none", "other key", "expired", "wrong aud", "access token", "no jti", "another session"]
)
def test_refresh_route_with_bad_token_is_401(client, account, kind):
    response = client.post(REFRESH, headers={"Authorization": f"Bearer {_refresh_attack(kind, account)}"})
    assert_refused(response)


def test_refresh_minted_with_the_key_and_right_claims_is_accepted(client, account):
    token = mint(claims(account, type="refresh", jti=unverified(account["refresh_token"])["jti"]))
    assert client.post(REFRESH, headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- the loaders normal traffic cannot reach ------------------------------------------------


@pytest.mark.parametrize(
    ("callback", "detail"),
    [
        ("_needs_fresh_token_callback", "A fresh token is required."),
        ("_token_verification_failed_callback", "The token's claims were refused."),
        ("_user_lookup_error_callback", "The token's account is disabled or no longer valid."),
        ("_expired_token_callback", "The token has expired."),
        ("_revoked_token_callback", "The session has ended; log in again."),
    ],
)
def test_jwt_loader_answers_401_problem(app, callback, detail):
    with app.test_request_context(ME):
        from flask import g

        g.request_id = "loader-test"
        response = getattr(jwt_module.jwt, callback)({"alg": "HS256"}, {"sub": "x"})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="resistance-api", error="invalid_token"'
    body = response.get_json()
    assert (body["status"], body["detail"], body["request_id"]) == (401, detail, "loader-test")


def test_token_verification_failure_reaches_the_client_as_401(client, account):
    token = mint(claims(account, jti=DROP))
    body = assert_refused(client.get(ME, headers={"Authorization": f"Bearer {token}"}))
    assert body["detail"] == "The token's claims were refused."


# --- configuration of the manager ----------------------------------------------------------


def test_configure_pins_algorithm_issuer_audience_and_location():
    app = Flask("configure-test")
    app.config.update(JWT_ACCESS_TOKEN_EXPIRES=60, JWT_REFRESH_TOKEN_EXPIRES=120)
    jwt_module.configure(app)
    assert app.config["JWT_ALGORITHM"] == "HS256"
    assert app.config["JWT_DECODE_ALGORITHMS"] == ["HS256"]
    assert app.config["JWT_DECODE_ISSUER"] == app.config["JWT_ENCODE_ISSUER"] == ISSUER
    assert app.config["JWT_DECODE_AUDIENCE"] == app.config["JWT_ENCODE_AUDIENCE"] == AUDIENCE
    assert app.config["JWT_TOKEN_LOCATION"] == ["headers"]
    assert app.config["JWT_DECODE_LEEWAY"] == 0
    assert app.config["JWT_ACCESS_TOKEN_EXPIRES"] == timedelta(seconds=60)
    assert app.config["JWT_REFRESH_TOKEN_EXPIRES"] == timedelta(seconds=120)


def test_configure_keeps_lifetimes_already_given_as_timedelta():
    app = Flask("configure-test")
    app.config.update(
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(minutes=2), JWT_REFRESH_TOKEN_EXPIRES=timedelta(hours=1)
    )
    jwt_module.configure(app)
    assert app.config["JWT_ACCESS_TOKEN_EXPIRES"] == timedelta(minutes=2)
    assert app.config["JWT_REFRESH_TOKEN_EXPIRES"] == timedelta(hours=1)


@pytest.fixture
def short_ttl_app(make_app):
    return make_app(JWT_ACCESS_TTL="60", JWT_REFRESH_TTL="120")


def test_token_lifetimes_follow_the_configuration(short_ttl_app, account):
    client = short_ttl_app.test_client()
    response = client.post(
        "/api/v1/auth/login", json={"username": account["username"], "password": account["password"]}
    )
    body = response.get_json()
    assert body["expires_in"] == 60
    access = pyjwt.decode(body["access_token"], SECRET, algorithms=["HS256"], audience=AUDIENCE)
    refresh = pyjwt.decode(body["refresh_token"], SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert access["exp"] - access["iat"] == 60
    assert refresh["exp"] - refresh["iat"] == 120


def test_lifetimes_count_from_the_moment_the_session_was_granted(short_ttl_app):
    """The pair is stamped with the grant's moment, not a later clock reading: a second that
    ticks between the session's write and the signing must not shorten the refresh token (CI
    once saw 119 s of a 120 s lifetime)."""
    granted = datetime.now(UTC).replace(microsecond=999_000) - timedelta(seconds=5)
    grant = Grant(str(uuid.uuid4()), str(uuid.uuid4()), granted + timedelta(seconds=120), granted)
    with short_ttl_app.app_context():
        pair = issue_pair(uuid.uuid4(), grant)
    access = pyjwt.decode(pair["access_token"], SECRET, algorithms=["HS256"], audience=AUDIENCE)
    refresh = pyjwt.decode(pair["refresh_token"], SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert access["iat"] == refresh["iat"] == int(granted.timestamp())
    assert access["exp"] - access["iat"] == 60
    assert refresh["exp"] - refresh["iat"] == 120
    assert pair["expires_in"] == 60


def test_tokens_of_one_app_are_valid_on_another_with_the_same_secret(short_ttl_app, client, account):
    """Every worker and replica verifies every token: nothing per process in the key."""
    other = short_ttl_app.test_client()
    assert other.get(ME, headers=account["headers"]).status_code == 200
    client.post(LOGOUT, headers=account["headers"])
    assert_refused(other.get(ME, headers=account["headers"]))


# --- security.tokens units ------------------------------------------------------------------


SID = "0b0e8c8e-51a4-4b3e-9c8f-1f2d3c4b5a69"


def _claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "jti": "abc",
        "type": "access",
        "exp": 2_000_000_000,
        "iat": 1_900_000_000,
        "sid": SID,
        "sub": SID,
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not DROP}


@pytest.mark.parametrize(
    "changes",
    [{}, {"type": "refresh"}, {"jti": "j" * 64}],
)
def test_well_formed_accepts_claims_we_issue(changes):
    assert well_formed(_claims(**changes)) is True


@pytest.mark.parametrize(
    "changes",
    [
        {"jti": DROP},
        {"jti": None},
        {"jti": ""},
        {"jti": "j" * 65},
        {"jti": 5},
        {"type": "id"},
        {"type": DROP},
        {"exp": DROP},
        {"exp": "2000000000"},
        {"exp": True},
        {"exp": 2_000_000_000.5},
        {"exp": 1e300},
        {"sid": DROP},
        {"sid": None},
        {"sid": 7},
        {"sid": "not-a-uuid"},
        {"sid": SID.upper()},
        {"sid": "{" + SID + "}"},
        {"sub": DROP},
        {"sub": 7},
        {"iat": DROP},
        {"iat": 1.5},
        {"iat": True},
        {"sub": SID.upper()},
        {"sub": "{" + SID + "}"},
        {"sub": "urn:uuid:" + SID},
        {"sub": SID.replace("-", "")},
    ],
)
def test_well_formed_refuses_claims_we_never_issue(changes):
    assert well_formed(_claims(**changes)) is False


def test_decode_refresh_token_returns_claims_of_a_refresh_token(app, account):
    with app.app_context():
        decoded = decode_refresh_token(account["refresh_token"])
    assert decoded is not None
    assert (decoded["sub"], decoded["type"]) == (account["id"], "refresh")


@pytest.mark.parametrize("kind", ["access", "garbage", "other key", "malformed claims", "expired"])
def test_decode_refresh_token_refuses_anything_else(app, account, kind):
    now = int(time.time())
    token = {
        "access": account["access_token"],
        "garbage": "garbage",
        "other key": mint(claims(account, type="refresh"), "another-secret-" + "k" * 32),
        "malformed claims": mint(claims(account, type="refresh", sid=DROP)),
        "expired": mint(claims(account, type="refresh", iat=now - 100, exp=now - 1)),
    }[kind]
    with app.app_context():
        assert decode_refresh_token(token) is None


def test_a_request_verifies_its_token_once(app: Flask, client, make, monkeypatch):
    """The rate limiter's key and authentication share one verification of the token."""
    import flask_jwt_extended.jwt_manager as manager
    from flask_jwt_extended import decode_token

    verified: list[str] = []
    real = manager._decode_jwt

    def counted(**kwargs: Any) -> Any:
        verified.append(kwargs["encoded_token"])
        return real(**kwargs)

    monkeypatch.setattr(manager, "_decode_jwt", counted)
    account = make.account()
    token = account["headers"]["Authorization"].removeprefix("Bearer ")
    verified.clear()
    assert client.get(ME, headers=account["headers"]).status_code == 200
    assert verified == [token]

    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    verified.clear()
    assert_problem(client.get(ME, headers={"Authorization": f"Bearer {forged}"}), 401)
    assert verified == [forged]  # refused once, and the refusal remembered for the second look

    verified.clear()
    with app.app_context():  # outside a request nothing is remembered: each call verifies
        assert decode_token(token)["sub"] == decode_token(token)["sub"]
    assert verified == [token, token]


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic YWRtaW46YWRtaW4=", "Token abc", "Bearer", "Bearer ", "bearer \t "],
)
def test_a_request_without_a_bearer_token_gets_a_challenge_naming_no_error(client, authorization):
    """RFC 6750 §3.1: no authentication information (or an unsupported scheme) is answered with
    the bare challenge; error="invalid_token" is for a token that was sent and refused."""
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get(ME, headers=headers)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="resistance-api"'
    assert response.get_json()["detail"] == "A bearer token is required in the Authorization header."
    sent = client.get(ME, headers={"Authorization": "Bearer not.a.token"})
    assert sent.headers["WWW-Authenticate"] == 'Bearer realm="resistance-api", error="invalid_token"'
