"""What generated clients type from openapi.yaml: required fields, one type per enum, declared
headers, and answers that match them (issue: a client generated from the spec must not lie)."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from api.schemas import UTCDateTimeField, rfc3339_utc
from tests.conftest import PASSWORD
from tests.contract import declared_headers, operations, spec, undeclared_headers

SPEC = spec()
SCHEMAS = SPEC["components"]["schemas"]
# One side of a trade names only the items it trades (1-4 of them): a map, not a record.
PARTIAL_RESPONSE_SCHEMAS = {"TradeItems"}
NAMED_ENUMS = {"Role", "Gender", "TradeStatus", "RobotCategory", "RobotDataSource", "TokenType"}


def _referenced(node: Any) -> Iterator[str]:
    """Names of the component schemas a schema object refers to, at any depth."""
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"].rsplit("/", 1)[-1]
        for value in node.values():
            yield from _referenced(value)
    elif isinstance(node, list):
        for value in node:
            yield from _referenced(value)


def _response_schemas() -> set[str]:
    """Every component schema a 2xx body uses, directly or nested."""
    pending = [
        name
        for _path, _method, operation in operations(SPEC)
        for status, response in operation["responses"].items()
        if status.startswith("2")
        for name in _referenced(response.get("content", {}))
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_referenced(SCHEMAS[name]))
    return seen


def _enums(node: Any, where: str = "") -> Iterator[tuple[str, tuple[Any, ...]]]:
    if isinstance(node, dict):
        if "enum" in node:
            yield where, tuple(node["enum"])
        for key, value in node.items():
            yield from _enums(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _enums(value, f"{where}/{index}")


def test_every_field_of_a_response_body_is_required():
    """The server sends every field of what it answers (null where there is no value), so a
    generated client types none of them as maybe-absent."""
    response_schemas = _response_schemas()
    assert {"Survivor", "TokenPair", "Trade", "Inventory", "Me", "Account", "Robot"} <= response_schemas
    for name in sorted(response_schemas - PARTIAL_RESPONSE_SCHEMAS - NAMED_ENUMS):
        schema = SCHEMAS[name]
        assert set(schema.get("required", [])) == set(schema["properties"]), name
    assert set(SCHEMAS["Problem"]["required"]) == {"type", "title", "status", "detail"}


def test_nullable_fields_are_json_schema_null_types():
    """OpenAPI 3.1: a value that may be null says so in its type, which every generator reads
    (3.0's `nullable` beside `required` was read as never null by some)."""
    assert SPEC["openapi"] == "3.1.0"
    assert "nullable" not in str(SPEC)
    fetched_at = SCHEMAS["RobotPage"]["properties"]["fetched_at"]
    assert fetched_at["type"] == ["string", "null"]
    assert "fetched_at" in SCHEMAS["RobotPage"]["required"]


def test_each_enum_is_one_named_schema():
    """A set of values is written once, as a named schema every field using it refers to: a
    survivor's gender read back has the type SurvivorCreate takes."""
    for name in NAMED_ENUMS:
        assert set(SCHEMAS[name]) == {"type", "enum"}, name
    everywhere = Counter(values for _where, values in _enums({"paths": SPEC["paths"], "schemas": SCHEMAS}))
    repeated = {values: count for values, count in everywhere.items() if count > 1 and len(values) > 1}
    assert not repeated, repeated
    gender = {"$ref": "#/components/schemas/Gender"}
    assert SCHEMAS["Survivor"]["properties"]["gender"] == gender
    assert SCHEMAS["SurvivorCreate"]["properties"]["gender"] == gender


def test_request_bodies_carry_no_defaults():
    """A property with a default is required in some generators' types (openapi-typescript):
    every inventory item stays optional, missing meaning 0."""
    assert "default" not in str(SCHEMAS["InventoryIn"])
    assert "required" not in SCHEMAS["InventoryIn"]


def test_created_answers_declare_location_and_send_it(client, make, admin):
    for path in ("/api/v1/accounts", "/api/v1/survivors", "/api/v1/trades"):
        assert "location" in declared_headers(path, "post", 201), path
    assert "etag" in declared_headers("/api/v1/survivors", "post", 201)
    body = {"username": "located1", "password": PASSWORD, "role": "observer"}
    headers = {**admin["headers"], "Idempotency-Key": "located-1"}
    created = client.post("/api/v1/accounts", json=body, headers=headers)
    assert created.status_code == 201
    location = created.headers["Location"]
    assert location == f"/api/v1/accounts/{created.get_json()['id']}"  # relative, never from Host
    replay = client.post("/api/v1/accounts", json=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["Location"] == location
    changed = client.patch(location, json={"disabled": True}, headers=admin["headers"])
    assert changed.status_code == 200 and changed.get_json()["disabled"] is True


def test_no_content_answers_carry_no_content_type(client, make):
    """RFC 9110 §15.3.5: a 204 has no content, so nothing to type, first time or replayed."""
    account = make.account()
    second = make.login(account["username"])
    key = {"Idempotency-Key": "pw-1"}
    change = {"current_password": PASSWORD, "new_password": "another-lantern-river-77"}
    answers = [
        client.delete("/api/v1/auth/sessions", headers=account["headers"]),
        client.post("/api/v1/auth/password", json=change, headers={**account["headers"], **key}),
        client.post("/api/v1/auth/password", json=change, headers={**account["headers"], **key}),
        client.post("/api/v1/auth/logout", headers=account["headers"]),
    ]
    assert answers[2].headers["Idempotent-Replayed"] == "true"
    for answer in answers:
        assert answer.status_code == 204
        assert "Content-Type" not in answer.headers
        assert answer.data == b""
    assert second["access_token"]  # the other session existed, and the first call ended it


def test_the_contract_client_catches_an_undeclared_header(client, make):
    """tests/contract.py holds every answer to the headers openapi.yaml declares: a Location on
    /auth/me, which declares none, is caught."""
    account = make.account()
    answer = client.get("/api/v1/auth/me", headers=account["headers"])
    assert undeclared_headers(client, answer) == set()
    answer.headers["Location"] = "/api/v1/elsewhere"
    answer.headers["X-Content-Type-Options"] = "nosniff"  # a browser's header, not a client's
    assert undeclared_headers(client, answer) == {"location"}
    assert declared_headers("/api/v1/nowhere", "get", 200) is None
    assert declared_headers("/api/v1/auth/me", "get", 599) is None


def test_statuses_any_operation_can_meet_are_declared_on_each():
    """What the server answers anywhere is in every operation's responses, so a generated
    client parses it as a Problem instead of raising on an unexpected status."""
    for path, method, operation in operations(SPEC):
        declared = set(operation["responses"])
        assert {"400", "414", "417", "431", "500"} <= declared, (method, path)
        if path.startswith("/api/v1/"):  # a dependency down (failover): retry with the same key
            assert "503" in declared, (method, path)
            assert "retry-after" in declared_headers(path, method, 503)
        if method in {"post", "put", "patch", "delete"}:  # a body is judged on each
            assert {"413", "415"} <= declared, (method, path)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(999, 5, 5, tzinfo=UTC), "0999-05-05T00:00:00Z"),  # strftime wrote "999-…"
        (datetime(2026, 11, 30, 12, 0, 1, 999999), "2026-11-30T12:00:01Z"),  # naive is UTC
        (datetime(2026, 11, 30, 1, 0, tzinfo=timezone(timedelta(hours=2))), "2026-11-29T23:00:00Z"),
    ],
)
def test_timestamps_are_rfc3339_utc_whatever_the_year(moment, text):
    assert rfc3339_utc(moment) == text
    assert UTCDateTimeField().serialize("at", {"at": moment}) == text
    assert re.fullmatch(SCHEMAS["Survivor"]["properties"]["created_at"]["pattern"], text)


def test_every_body_method_declares_its_body():
    """POST, PUT, PATCH and DELETE all read a body (security/bodies.py): each operation says what
    it takes, NoBody where nothing, so a field sent is never silently dropped."""
    for path, method, operation in operations(SPEC):
        if method in {"post", "put", "patch", "delete"}:
            assert "requestBody" in operation, (method, path)


def test_operations_that_take_no_body_refuse_a_field(client, make, admin):
    """A field sent to refresh, robots refresh or ending sessions is 422, as everywhere (refresh
    used to answer 200 and drop it); no body, or {}, is taken."""
    account = make.account()
    refresh = {"Authorization": f"Bearer {account['refresh_token']}"}
    session = f"/api/v1/auth/sessions/{uuid.uuid4()}"
    calls = [
        ("post", "/api/v1/auth/refresh", refresh),
        ("delete", "/api/v1/auth/sessions", account["headers"]),
        ("delete", session, account["headers"]),
        ("post", "/api/v1/robots/refresh", admin["headers"]),
    ]
    for method, path, headers in calls:
        answer = getattr(client, method)(path, json={"x": 1}, headers=headers)
        assert answer.status_code == 422, (method, path, answer.get_json())
        assert answer.get_json()["errors"] == {"x": ["Unknown field."]}
    assert client.post("/api/v1/auth/refresh", json={}, headers=refresh).status_code == 200
    assert client.delete("/api/v1/auth/sessions", json={}, headers=account["headers"]).status_code == 204
    assert client.delete(session, headers=account["headers"]).status_code == 404
