"""/api/v1/accounts: admin account management, roles and disabling (docs/api.md, Accounts)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from api.accounts.models import Account
from api.extensions import db
from security.sessions import AccountSession
from tests.conftest import PASSWORD, assert_problem, random_uuid, unique_name

ACCOUNTS = "/api/v1/accounts"
ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SECRETS_MARKERS = ("argon2", "password", "$argon", "token_generation", "username_key")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def patch(client, admin: dict[str, Any], account_id: str, body: dict[str, Any]):
    return client.patch(f"{ACCOUNTS}/{account_id}", json=body, headers=admin["headers"])


def assert_no_secrets(response: Any) -> None:
    text = response.get_data(as_text=True).lower()
    for marker in SECRETS_MARKERS:
        assert marker not in text, marker


def live_sessions(app, account_id: str) -> int:
    with app.app_context():
        return len(
            db.session.scalars(
                select(AccountSession.id).where(
                    AccountSession.account_id == uuid.UUID(account_id), AccountSession.ended_at.is_(None)
                )
            ).all()
        )


# --- create ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "survivor", "observer"])
def test_create_account_as_admin_with_any_role_is_201(client, admin, role):
    body = {"username": unique_name("new"), "password": PASSWORD, "role": role}
    response = client.post(ACCOUNTS, json=body, headers=admin["headers"])
    assert response.status_code == 201
    created = response.get_json()
    assert list(created) == ["id", "username", "role", "disabled", "created_at"]
    assert uuid.UUID(created["id"])
    assert (created["username"], created["role"], created["disabled"]) == (body["username"], role, False)
    assert RFC3339_UTC.match(created["created_at"])
    assert_no_secrets(response)
    tokens = client.post(LOGIN, json={"username": body["username"], "password": PASSWORD}).get_json()
    me = client.get(ME, headers=bearer(tokens["access_token"])).get_json()
    assert (me["id"], me["role"]) == (created["id"], role)


def test_create_account_taken_username_is_409(client, admin):
    body = {"username": "Taken", "password": PASSWORD, "role": "observer"}
    assert client.post(ACCOUNTS, json=body, headers=admin["headers"]).status_code == 201
    response = client.post(ACCOUNTS, json={**body, "username": "TAKEN"}, headers=admin["headers"])
    assert list(assert_problem(response, 409)["errors"]) == ["username"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "administrator"}, "password"),
        ({"username": "no"}, "username"),
        ({"role": "superuser"}, "role"),
        ({"role": None}, "role"),
        ({"disabled": True}, "disabled"),
        ({"token_generation": 5}, "token_generation"),
    ],
)
def test_create_account_invalid_body_is_422_and_creates_nothing(client, admin, change, field):
    body = {"username": "candidate", "password": PASSWORD, "role": "observer", **change}
    response = client.post(ACCOUNTS, json=body, headers=admin["headers"])
    assert list(assert_problem(response, 422)["errors"]) == [field]
    listed = client.get(ACCOUNTS, headers=admin["headers"]).get_json()
    assert "candidate" not in {item["username"] for item in listed["items"]}


def test_create_account_without_role_is_422(client, admin):
    response = client.post(
        ACCOUNTS, json={"username": "norole", "password": PASSWORD}, headers=admin["headers"]
    )
    assert list(assert_problem(response, 422)["errors"]) == ["role"]


# --- list -----------------------------------------------------------------------------------


def test_list_accounts_returns_every_account_paginated(client, admin, make):
    others = [make.account(role) for role in ("survivor", "observer", "admin", "survivor")]
    expected_ids = {admin["id"], *(account["id"] for account in others)}

    first = client.get(f"{ACCOUNTS}?page_size=2", headers=admin["headers"])
    assert first.status_code == 200
    body = first.get_json()
    assert (body["page"], body["page_size"], body["total"], len(body["items"])) == (1, 2, 5, 2)
    assert 'rel="next"' in first.headers["Link"] and 'rel="prev"' not in first.headers["Link"]

    seen = []
    for page in (1, 2, 3):
        response = client.get(f"{ACCOUNTS}?page={page}&page_size=2", headers=admin["headers"])
        seen += [item["id"] for item in response.get_json()["items"]]
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == expected_ids
    last = client.get(f"{ACCOUNTS}?page=3&page_size=2", headers=admin["headers"])
    assert 'rel="prev"' in last.headers["Link"] and 'rel="next"' not in last.headers["Link"]
    # the order is stable from one request to the next
    again = client.get(f"{ACCOUNTS}?page=1&page_size=5", headers=admin["headers"]).get_json()
    assert [item["id"] for item in again["items"]] == seen


def test_list_accounts_items_have_the_account_shape(client, admin):
    response = client.get(ACCOUNTS, headers=admin["headers"])
    (item,) = response.get_json()["items"]
    assert item == {
        "id": admin["id"],
        "username": admin["username"],
        "role": "admin",
        "disabled": False,
        "created_at": item["created_at"],
    }
    assert RFC3339_UTC.match(item["created_at"])
    assert "Link" not in response.headers


def test_list_accounts_page_past_the_end_is_empty(client, admin):
    body = client.get(f"{ACCOUNTS}?page=9", headers=admin["headers"]).get_json()
    assert (body["items"], body["total"]) == ([], 1)


@pytest.mark.parametrize("query", ["page=0", "page_size=0", "page_size=101", "page=abc", "page_size=1.5"])
def test_list_accounts_invalid_query_is_422(client, admin, query):
    assert "errors" in assert_problem(client.get(f"{ACCOUNTS}?{query}", headers=admin["headers"]), 422)


def test_account_responses_never_carry_a_password_hash(client, admin, make):
    survivor = make.account("survivor")
    responses = [
        client.post("/api/v1/auth/register", json={"username": unique_name(), "password": PASSWORD}),
        client.post(
            ACCOUNTS,
            json={"username": unique_name(), "password": PASSWORD, "role": "observer"},
            headers=admin["headers"],
        ),
        client.get(f"{ACCOUNTS}?page_size=100", headers=admin["headers"]),
        patch(client, admin, survivor["id"], {"role": "observer"}),
        client.get(ME, headers=survivor["headers"]),
    ]
    for response in responses:
        assert response.status_code in (200, 201)
        assert_no_secrets(response)


# --- update: roles --------------------------------------------------------------------------


def test_patch_role_takes_effect_on_the_next_request(client, admin, make):
    survivor = make.account("survivor")
    assert_problem(client.get(ACCOUNTS, headers=survivor["headers"]), 403)
    response = patch(client, admin, survivor["id"], {"role": "admin"})
    assert response.status_code == 200
    assert response.get_json()["role"] == "admin"
    # same token, no new login: the role is read per request
    assert client.get(ACCOUNTS, headers=survivor["headers"]).status_code == 200
    assert client.get(ME, headers=survivor["headers"]).get_json()["role"] == "admin"


def test_patch_demoted_admin_loses_admin_rights_at_once(client, admin, make):
    other_admin = make.account("admin")
    assert client.get(ACCOUNTS, headers=other_admin["headers"]).status_code == 200
    assert patch(client, admin, other_admin["id"], {"role": "observer"}).status_code == 200
    assert_problem(client.get(ACCOUNTS, headers=other_admin["headers"]), 403)


def test_patch_returns_the_account(client, admin, make):
    target = make.account("observer")
    response = patch(client, admin, target["id"], {"role": "survivor"})
    assert response.get_json() == {
        "id": target["id"],
        "username": target["username"],
        "role": "survivor",
        "disabled": False,
        "created_at": response.get_json()["created_at"],
    }
    assert_no_secrets(response)


def test_patch_empty_body_changes_nothing(client, admin, make):
    target = make.account("observer")
    response = patch(client, admin, target["id"], {})
    assert response.status_code == 200
    assert (response.get_json()["role"], response.get_json()["disabled"]) == ("observer", False)
    assert client.get(ME, headers=target["headers"]).status_code == 200


# --- update: disable / enable ---------------------------------------------------------------


def test_patch_disable_kills_every_token_of_the_account_at_once(client, admin, make):
    target = make.account("survivor")
    second = make.login(target["username"])
    response = patch(client, admin, target["id"], {"disabled": True})
    assert response.status_code == 200
    assert response.get_json()["disabled"] is True
    for access in (target["access_token"], second["access_token"]):
        assert_problem(client.get(ME, headers=bearer(access)), 401)
    for refresh in (target["refresh_token"], second["refresh_token"]):
        assert_problem(client.post(REFRESH, headers=bearer(refresh)), 401)
    assert_problem(client.post(LOGIN, json={"username": target["username"], "password": PASSWORD}), 401)


def test_patch_disable_leaves_other_accounts_working(client, admin, make):
    target, bystander = make.account("survivor"), make.account("survivor")
    patch(client, admin, target["id"], {"disabled": True})
    assert client.get(ME, headers=bystander["headers"]).status_code == 200


def test_patch_reenable_keeps_old_tokens_dead_and_allows_a_new_login(client, admin, make):
    target = make.account("survivor")
    patch(client, admin, target["id"], {"disabled": True})
    response = patch(client, admin, target["id"], {"disabled": False})
    assert response.status_code == 200
    assert response.get_json()["disabled"] is False
    assert_problem(client.get(ME, headers=target["headers"]), 401)
    assert_problem(client.post(REFRESH, headers=bearer(target["refresh_token"])), 401)
    fresh = make.login(target["username"])
    assert client.get(ME, headers=bearer(fresh["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(fresh["refresh_token"])).status_code == 200


def test_patch_disable_ends_every_session_and_twice_is_the_same(app, client, admin, make):
    target = make.account("survivor")
    make.login(target["username"])
    assert live_sessions(app, target["id"]) == 2
    assert patch(client, admin, target["id"], {"disabled": True}).status_code == 200
    assert live_sessions(app, target["id"]) == 0
    response = patch(client, admin, target["id"], {"disabled": True})
    assert response.status_code == 200
    assert response.get_json()["disabled"] is True


def test_patch_enable_an_enabled_account_keeps_its_tokens(app, client, admin, make):
    target = make.account("survivor")
    assert patch(client, admin, target["id"], {"disabled": False}).status_code == 200
    assert live_sessions(app, target["id"]) == 1
    assert client.get(ME, headers=target["headers"]).status_code == 200


def test_patch_admin_can_disable_another_admin(client, admin, make):
    other_admin = make.account("admin")
    assert patch(client, admin, other_admin["id"], {"disabled": True}).status_code == 200
    assert_problem(client.get(ACCOUNTS, headers=other_admin["headers"]), 401)


def test_patch_disable_and_role_together_applies_both(client, admin, make):
    target = make.account("survivor")
    response = patch(client, admin, target["id"], {"role": "observer", "disabled": True})
    assert (response.get_json()["role"], response.get_json()["disabled"]) == ("observer", True)


# --- update: the admin's own account --------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [{"disabled": True}, {"role": "observer"}, {"role": "survivor"}, {"role": "observer", "disabled": False}],
)
def test_patch_admin_cannot_disable_or_demote_itself(client, admin, change):
    assert_problem(patch(client, admin, admin["id"], change), 409)
    me = client.get(ME, headers=admin["headers"])
    assert me.status_code == 200
    assert me.get_json()["role"] == "admin"
    assert client.get(ACCOUNTS, headers=admin["headers"]).status_code == 200


@pytest.mark.parametrize("change", [{}, {"role": "admin"}, {"disabled": False}])
def test_patch_admin_own_account_without_loss_is_200(client, admin, change):
    response = patch(client, admin, admin["id"], change)
    assert response.status_code == 200
    assert (response.get_json()["role"], response.get_json()["disabled"]) == ("admin", False)
    assert client.get(ME, headers=admin["headers"]).status_code == 200


# --- update: errors -------------------------------------------------------------------------


def test_patch_unknown_account_is_404(client, admin):
    assert_problem(patch(client, admin, random_uuid(), {"role": "observer"}), 404)


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", "%00"])
def test_patch_malformed_id_is_404(client, admin, bad_id):
    assert_problem(patch(client, admin, bad_id, {"role": "observer"}), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"disabled": "true"}, "disabled"),
        ({"disabled": 1}, "disabled"),
        ({"disabled": None}, "disabled"),
        ({"role": "root"}, "role"),
        ({"role": "Admin"}, "role"),
        ({"username": "renamed"}, "username"),
        ({"password": "short"}, "password"),
        ({"password": "administrator"}, "password"),
        ({"password": None}, "password"),
        ({"token_generation": 0}, "token_generation"),
    ],
)
def test_patch_invalid_body_is_422_and_changes_nothing(client, admin, make, body, field):
    target = make.account("survivor")
    response = patch(client, admin, target["id"], body)
    assert list(assert_problem(response, 422)["errors"]) == [field]
    me = client.get(ME, headers=target["headers"])
    assert me.status_code == 200
    assert (me.get_json()["role"], me.get_json()["username"]) == ("survivor", target["username"])


def test_get_single_account_is_405(client, admin):
    response = client.get(f"{ACCOUNTS}/{admin['id']}", headers=admin["headers"])
    assert_problem(response, 405)


# --- who may -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["survivor", "observer"])
def test_accounts_routes_forbid_non_admins(client, admin, make, role):
    caller = make.account(role)
    victim = make.account("survivor")
    attempts = [
        client.get(ACCOUNTS, headers=caller["headers"]),
        client.post(
            ACCOUNTS,
            json={"username": "minted", "password": PASSWORD, "role": "admin"},
            headers=caller["headers"],
        ),
        client.patch(f"{ACCOUNTS}/{victim['id']}", json={"disabled": True}, headers=caller["headers"]),
        client.patch(f"{ACCOUNTS}/{caller['id']}", json={"role": "admin"}, headers=caller["headers"]),
        client.patch(f"{ACCOUNTS}/{random_uuid()}", json={"role": "admin"}, headers=caller["headers"]),
    ]
    for response in attempts:
        assert_problem(response, 403)
    # nothing happened: no new account, the victim still works, the caller kept its role
    assert_problem(client.post(LOGIN, json={"username": "minted", "password": PASSWORD}), 401)
    assert client.get(ME, headers=victim["headers"]).status_code == 200
    assert client.get(ME, headers=caller["headers"]).get_json()["role"] == role


@pytest.mark.parametrize("role", ["survivor", "observer"])
def test_accounts_routes_forbid_non_admins_before_reading_the_body(client, make, role):
    caller = make.account(role)
    response = client.post(ACCOUNTS, json={"nonsense": True}, headers=caller["headers"])
    assert_problem(response, 403)


def test_accounts_routes_without_token_are_401(client, admin):
    for response in (
        client.get(ACCOUNTS),
        client.post(ACCOUNTS, json={"username": "x", "password": PASSWORD, "role": "admin"}),
        client.patch(f"{ACCOUNTS}/{admin['id']}", json={"disabled": True}),
    ):
        assert_problem(response, 401)
    assert client.get(ME, headers=admin["headers"]).status_code == 200


def test_token_of_account_disabled_without_ending_its_sessions_is_401(app, client, make):
    """The disabled flag alone also stops tokens (say, an operator's direct database update)."""
    target = make.account("survivor")
    with app.app_context():
        account = db.session.get(Account, uuid.UUID(target["id"]))
        account.disabled = True
        db.session.commit()
    assert live_sessions(app, target["id"]) == 1
    assert_problem(client.get(ME, headers=target["headers"]), 401)
    assert_problem(client.post(REFRESH, headers=bearer(target["refresh_token"])), 401)


# --- services (the per-request actor query, without HTTP) ------------------------------------


def test_actor_query_carries_the_survivor_id_or_none_in_one_statement(app, make):
    from sqlalchemy import event

    from api.accounts.models import Actor, Role
    from api.accounts.services import load_active

    survivor, observer, admin = make.survivor(), make.account("observer"), make.account("admin")
    owner = survivor["owner"]
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):  # not SQLite's BEGIN
            statements.append(statement)

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            linked = load_active(owner["id"])
            unlinked = load_active(observer["id"])
            assert len(statements) == 2  # one query per actor, the survivor id joined in
            assert all("LEFT OUTER JOIN survivors" in statement for statement in statements)
            assert load_active(admin["id"]) == Actor(
                uuid.UUID(admin["id"]), admin["username"], Role.ADMIN, None
            )
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert linked == Actor(
        uuid.UUID(owner["id"]), owner["username"], Role.SURVIVOR, uuid.UUID(survivor["id"])
    )
    assert unlinked is not None and unlinked.survivor_id is None
