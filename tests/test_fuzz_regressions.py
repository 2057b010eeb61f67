"""What Schemathesis found against the running app (tests/run_schemathesis.py), pinned through HTTP.

Each test names the check that failed. The spec half of a finding is checked on the app's own
spec, which `test_openapi.py` keeps identical to openapi.yaml.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.openapi import app_api
from tests.conftest import PASSWORD, assert_problem, unique_name

ACCOUNTS = "/api/v1/accounts"
REGISTER = "/api/v1/auth/register"
SURVIVORS = "/api/v1/survivors"


@pytest.fixture
def spec(app) -> dict[str, Any]:
    with app.app_context():
        return app_api().spec.to_dict()


def operation(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return spec["paths"][path][method]


# --- status_code_conformance: statuses the app gives but the spec did not list ----------------


def test_create_account_taken_username_is_a_documented_409(client, admin, spec):
    body = {"username": unique_name(), "password": PASSWORD, "role": "survivor"}
    assert client.post(ACCOUNTS, json=body, headers=admin["headers"]).status_code == 201
    body["username"] = body["username"].upper()
    assert_problem(client.post(ACCOUNTS, json=body, headers=admin["headers"]), 409)
    assert "409" in operation(spec, ACCOUNTS, "post")["responses"]


def test_register_taken_username_is_a_documented_409(client, spec):
    body = {"username": unique_name(), "password": PASSWORD}
    assert client.post(REGISTER, json=body).status_code == 201
    assert_problem(client.post(REGISTER, json=body), 409)
    assert "409" in operation(spec, REGISTER, "post")["responses"]


def test_register_closed_is_a_documented_403(make_app, spec):
    closed = make_app(ALLOW_REGISTRATION="false").test_client()
    response = closed.post(REGISTER, json={"username": unique_name(), "password": PASSWORD})
    assert_problem(response, 403)
    assert "403" in operation(spec, REGISTER, "post")["responses"]


def test_patch_own_admin_account_demotion_is_a_documented_409(client, admin, spec):
    response = client.patch(f"{ACCOUNTS}/{admin['id']}", json={"role": "survivor"}, headers=admin["headers"])
    assert_problem(response, 409)
    assert "409" in operation(spec, ACCOUNTS + "/{account_id}", "patch")["responses"]


# --- negative_data_rejection: the spec called a body required that the app never needed -------


def test_patch_account_without_body_changes_nothing_and_the_body_is_optional(client, admin, make, spec):
    target = make.account("survivor")
    response = client.patch(f"{ACCOUNTS}/{target['id']}", headers=admin["headers"])
    assert response.status_code == 200
    assert response.get_json()["role"] == "survivor"
    assert response.get_json()["disabled"] is False
    request_body = operation(spec, ACCOUNTS + "/{account_id}", "patch")["requestBody"]
    assert request_body.get("required", False) is False


# --- stateful phase: links from a created object to what can be done with it -------------------


@pytest.mark.parametrize(
    ("path", "targets"),
    [
        (
            SURVIVORS,
            {"getSurvivorById", "putSurvivorLocation", "getSurvivorInventory", "postInfectionReports"},
        ),
        (ACCOUNTS, {"patchAccountById"}),
    ],
)
def test_created_responses_link_to_operations_on_the_new_object(spec, path, targets):
    links = operation(spec, path, "post")["responses"]["201"]["links"]
    # operationId -> the names in its path template ({survivor_id}, …)
    path_params = {
        op["operationId"]: set(re.findall(r"{(\w+)}", item_path))
        for item_path, item in spec["paths"].items()
        for method, op in item.items()
        if method != "parameters"
    }
    assert {link["operationId"] for link in links.values()} == targets
    for link in links.values():
        assert set(link["parameters"]) == path_params[link["operationId"]], link
        assert set(link["parameters"].values()) == {"$response.body#/id"}


def test_created_survivor_id_reaches_the_linked_operations(client, admin):
    body = {
        "name": "Linked",
        "age": 30,
        "gender": "female",
        "location": {"latitude": 1.0, "longitude": 2.0},
    }
    created = client.post(SURVIVORS, json=body, headers=admin["headers"])
    assert created.status_code == 201
    survivor_id = created.get_json()["id"]
    headers = admin["headers"]
    assert client.get(f"{SURVIVORS}/{survivor_id}", headers=headers).status_code == 200
    assert client.get(f"{SURVIVORS}/{survivor_id}/inventory", headers=headers).status_code == 200
    moved = client.put(
        f"{SURVIVORS}/{survivor_id}/location", json={"latitude": 3.0, "longitude": 4.0}, headers=headers
    )
    assert moved.status_code == 200
