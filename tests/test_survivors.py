"""Survivors and inventories through the HTTP interface, plus the survivor rules in services."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from api.pagination import Window
from api.problems import ProblemError
from tests.conftest import assert_problem, cursors_of, named, random_uuid

URL = "/api/v1/survivors"
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SURVIVOR_KEYS = {
    "id",
    "name",
    "age",
    "gender",
    "location",
    "infected",
    "infection_reports",
    "account_id",
    "created_at",
    "updated_at",
}
MALFORMED_IDS = ["123", "not-a-uuid", random_uuid() + "0", random_uuid()[:-1]]


def parse_links(header: str | None) -> dict[str, str]:
    """RFC 8288 Link header -> {rel: url}."""
    if not header:
        return {}
    links = {}
    for part in header.split(","):
        url, rel = re.fullmatch(r'\s*<([^>]+)>;\s*rel="(\w+)"\s*', part).groups()  # type: ignore[union-attr]
        links[rel] = url
    return links


def query_of(url: str) -> dict[str, str]:
    """The query of a URL as a flat dict."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


# --- create ----------------------------------------------------------------------------------


def test_create_survivor_returns_201_with_location_and_body(client, make):
    owner = make.account("survivor")
    body = make.survivor_body()
    response = client.post(URL, json=body, headers=owner["headers"])
    assert response.status_code == 201
    created = response.get_json()
    assert set(created) == SURVIVOR_KEYS
    assert uuid.UUID(created["id"]).version == 4
    assert response.headers["Location"].endswith(f"{URL}/{created['id']}")
    assert created["name"] == "Ada" and created["age"] == 34 and created["gender"] == "female"
    assert created["location"] == {"latitude": -33.92, "longitude": 18.42}
    assert created["infected"] is False
    assert created["infection_reports"] == 0
    assert created["account_id"] == owner["id"]
    assert RFC3339_UTC.match(created["created_at"]) and RFC3339_UTC.match(created["updated_at"])
    assert "inventory" not in created and "version" not in created
    again = client.get(response.headers["Location"], headers=owner["headers"])
    assert again.status_code == 200
    assert again.get_json() == created


def test_create_survivor_returns_its_etag(client, make):
    owner = make.account("survivor")
    response = client.post(URL, json=make.survivor_body(), headers=owner["headers"])
    read = client.get(response.headers["Location"], headers=owner["headers"])
    assert response.headers["ETag"] == read.headers["ETag"]


def test_create_survivor_links_the_account_profile(client, make):
    survivor = make.survivor()
    me = client.get("/api/v1/auth/me", headers=survivor["owner"]["headers"]).get_json()
    assert me["survivor_id"] == survivor["id"]


def test_create_survivor_trims_the_name(make):
    survivor = make.survivor(name="  Ada Lovelace \u00a0")
    assert survivor["name"] == "Ada Lovelace"


@pytest.mark.parametrize("name", ["Ada\u0000", "A\nda", "\tAda", "Ada\u001b[31m", "Ada\u007f", "Ada\u0085"])
def test_create_survivor_name_with_control_characters_is_422(client, make, name):
    # NUL used to reach PostgreSQL and fail there with a 500.
    owner = make.account("survivor")
    response = client.post(URL, json=make.survivor_body(name=name), headers=owner["headers"])
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["name"]
    assert client.get("/api/v1/auth/me", headers=owner["headers"]).get_json()["survivor_id"] is None


def test_create_survivor_name_keeps_inner_spaces_and_unicode(make):
    survivor = make.survivor(name="Zoë  Ångström-Ōkubo 李")
    assert survivor["name"] == "Zoë  Ångström-Ōkubo 李"


@pytest.mark.parametrize("name", ["", " ", " \t\n ", "x" * 101, " " + "x" * 101 + " "])
def test_create_survivor_blank_or_long_name_is_422(client, make, name):
    owner = make.account("survivor")
    response = client.post(URL, json=make.survivor_body(name=name), headers=owner["headers"])
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["name"]


def test_create_survivor_name_of_100_characters_after_trim_is_accepted(make):
    survivor = make.survivor(name="  " + "x" * 100 + "  ")
    assert survivor["name"] == "x" * 100


@pytest.mark.parametrize(
    "overrides",
    [
        {"age": 0},
        {"age": 150},
        {"gender": "male"},
        {"gender": "non-binary"},
        {"gender": "unspecified"},
        {"location": {"latitude": -90, "longitude": -180}},
        {"location": {"latitude": 90, "longitude": 180}},
        {"location": {"latitude": 0.000001, "longitude": -0.5}},
        {"inventory": {"water": 0, "food": 0, "medication": 0, "ammunition": 0}},
        {"inventory": {"water": 100000, "food": 100000, "medication": 100000, "ammunition": 100000}},
    ],
)
def test_create_survivor_values_on_the_bounds_are_accepted(client, make, overrides):
    survivor = make.survivor(**overrides)
    for key in ("age", "gender", "location"):
        if key in overrides:
            assert survivor[key] == overrides[key]
    if "inventory" in overrides:
        inventory = client.get(f"{URL}/{survivor['id']}/inventory", headers=survivor["owner"]["headers"])
        assert {item: inventory.get_json()[item] for item in overrides["inventory"]} == overrides["inventory"]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"age": -1}, "age"),
        ({"age": 151}, "age"),
        ({"age": 34.5}, "age"),
        ({"age": 34.0}, "age"),
        ({"age": "34"}, "age"),
        ({"age": True}, "age"),
        ({"age": None}, "age"),
        ({"gender": "robot"}, "gender"),
        ({"gender": "Female"}, "gender"),
        ({"gender": ""}, "gender"),
        ({"name": 42}, "name"),
        ({"name": None}, "name"),
        ({"location": {"latitude": -90.0001, "longitude": 0}}, "location.latitude"),
        ({"location": {"latitude": 90.0001, "longitude": 0}}, "location.latitude"),
        ({"location": {"latitude": 0, "longitude": -180.0001}}, "location.longitude"),
        ({"location": {"latitude": 0, "longitude": 180.0001}}, "location.longitude"),
        ({"location": {"latitude": "10", "longitude": 0}}, "location.latitude"),
        ({"location": {"latitude": True, "longitude": 0}}, "location.latitude"),
        ({"location": {"latitude": 0, "longitude": None}}, "location.longitude"),
        ({"location": {"latitude": 0, "longitude": [1]}}, "location.longitude"),
        ({"location": [0, 0]}, "location"),
        ({"location": None}, "location"),
        ({"inventory": {"water": -1}}, "inventory.water"),
        ({"inventory": {"food": 100001}}, "inventory.food"),
        ({"inventory": {"medication": 1.5}}, "inventory.medication"),
        ({"inventory": {"ammunition": 2.0}}, "inventory.ammunition"),
        ({"inventory": {"water": True}}, "inventory.water"),
        ({"inventory": {"water": "3"}}, "inventory.water"),
        ({"inventory": {"water": None}}, "inventory.water"),
        ({"inventory": None}, "inventory"),
        ({"inventory": [1, 2]}, "inventory"),
    ],
)
def test_create_survivor_out_of_bounds_value_is_422(client, make, overrides, path):
    owner = make.account("survivor")
    response = client.post(URL, json=make.survivor_body(**overrides), headers=owner["headers"])
    body = assert_problem(response, 422)
    assert list(body["errors"]) == [path]
    assert client.get("/api/v1/auth/me", headers=owner["headers"]).get_json()["survivor_id"] is None


def test_create_survivor_not_a_number_coordinate_is_400(client, make):
    owner = make.account("survivor")
    raw = '{"name": "Ada", "age": 1, "gender": "male", "location": {"latitude": NaN, "longitude": Infinity}}'
    response = client.post(URL, data=raw, content_type="application/json", headers=owner["headers"])
    assert "not a JSON number" in assert_problem(response, 400)["detail"]  # not I-JSON: never parsed


def test_create_survivor_errors_use_dotted_paths(client, make):
    owner = make.account("survivor")
    body = make.survivor_body(location={"latitude": 91, "longitude": -181}, inventory={"water": -1})
    problem = assert_problem(client.post(URL, json=body, headers=owner["headers"]), 422)
    assert set(problem["errors"]) == {"location.latitude", "location.longitude", "inventory.water"}
    assert all(isinstance(messages, list) and messages for messages in problem["errors"].values())


def test_create_survivor_missing_items_count_as_zero(client, make):
    partial = make.survivor(inventory={"water": 2})
    none = make.survivor(inventory={})
    body = make.survivor_body()
    del body["inventory"]
    owner = make.account("survivor")
    absent = client.post(URL, json=body, headers=owner["headers"]).get_json()
    for survivor, water in ((partial, 2), (none, 0), ({**absent, "owner": owner}, 0)):
        inventory = client.get(f"{URL}/{survivor['id']}/inventory", headers=survivor["owner"]["headers"])
        assert inventory.get_json() == {
            "survivor_id": survivor["id"],
            "water": water,
            "food": 0,
            "medication": 0,
            "ammunition": 0,
            "points": 4 * water,
        }


@pytest.mark.parametrize("field", ["name", "age", "gender", "location"])
def test_create_survivor_missing_required_field_is_422(client, make, field):
    owner = make.account("survivor")
    body = make.survivor_body()
    del body[field]
    problem = assert_problem(client.post(URL, json=body, headers=owner["headers"]), 422)
    assert list(problem["errors"]) == [field]


@pytest.mark.parametrize("field", ["latitude", "longitude"])
def test_create_survivor_missing_coordinate_is_422(client, make, field):
    owner = make.account("survivor")
    location = {"latitude": 1, "longitude": 2}
    del location[field]
    problem = assert_problem(
        client.post(URL, json=make.survivor_body(location=location), headers=owner["headers"]), 422
    )
    assert list(problem["errors"]) == [f"location.{field}"]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"nickname": "Countess"}, "nickname"),
        ({"location": {"latitude": 1, "longitude": 2, "altitude": 3}}, "location.altitude"),
        ({"inventory": {"water": 1, "gold": 5}}, "inventory.gold"),
    ],
)
def test_create_survivor_unknown_field_is_422(client, make, overrides, path):
    owner = make.account("survivor")
    problem = assert_problem(
        client.post(URL, json=make.survivor_body(**overrides), headers=owner["headers"]), 422
    )
    assert list(problem["errors"]) == [path]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("infected", True),
        ("infected", False),
        ("infection_reports", 0),
        ("infection_reports", 99),
        ("id", "00000000-0000-4000-8000-000000000000"),
        ("account_id", "00000000-0000-4000-8000-000000000000"),
        ("account_id", None),
        ("created_at", "2026-01-01T00:00:00Z"),
        ("updated_at", "2026-01-01T00:00:00Z"),
        ("version", 7),
        ("points", 7),
    ],
)
def test_create_survivor_server_field_in_body_is_422(client, make, admin, field, value):
    owner = make.account("survivor")
    for headers in (owner["headers"], admin["headers"]):
        response = client.post(URL, json=make.survivor_body(**{field: value}), headers=headers)
        problem = assert_problem(response, 422)
        assert list(problem["errors"]) == [field]
    assert client.get(URL, headers=admin["headers"]).get_json()["total"] == 0


@pytest.mark.parametrize("raw", ["[]", '[{"name": "Ada"}]', '"Ada"', "42", "true", "null"])
def test_create_survivor_body_that_is_not_an_object_is_422(client, make, raw):
    owner = make.account("survivor")
    response = client.post(URL, data=raw, content_type="application/json", headers=owner["headers"])
    assert_problem(response, 422)
    assert client.get(URL, headers=owner["headers"]).get_json()["total"] == 0


def test_create_survivor_malformed_json_is_400(client, make):
    owner = make.account("survivor")
    response = client.post(URL, data='{"name": ', content_type="application/json", headers=owner["headers"])
    assert_problem(response, 400)


def test_create_survivor_without_json_content_type_is_415(client, make):
    owner = make.account("survivor")
    response = client.post(URL, data="name=Ada", content_type="text/plain", headers=owner["headers"])
    assert_problem(response, 415)


def test_create_survivor_without_token_is_401(client, make):
    assert_problem(client.post(URL, json=make.survivor_body()), 401)


def test_create_survivor_second_profile_is_409(client, make):
    first = make.survivor()
    owner = first["owner"]
    response = client.post(URL, json=make.survivor_body(name="Second"), headers=owner["headers"])
    assert_problem(response, 409, detail="This account already has a survivor profile.")
    page = client.get(URL, headers=owner["headers"]).get_json()
    assert page["total"] == 1
    assert page["items"][0]["id"] == first["id"]


def test_create_survivor_by_admin_is_unlinked(client, make, admin):
    first = client.post(URL, json=make.survivor_body(name="One"), headers=admin["headers"])
    second = client.post(URL, json=make.survivor_body(name="Two"), headers=admin["headers"])
    assert first.status_code == second.status_code == 201
    assert first.get_json()["account_id"] is None
    assert second.get_json()["account_id"] is None
    assert client.get("/api/v1/auth/me", headers=admin["headers"]).get_json()["survivor_id"] is None


def test_create_survivor_by_observer_is_403(client, make, observer, admin):
    assert_problem(client.post(URL, json=make.survivor_body(), headers=observer["headers"]), 403)
    assert client.get(URL, headers=admin["headers"]).get_json()["total"] == 0


# --- read one --------------------------------------------------------------------------------


def test_get_survivor_returns_it_with_etag_and_cache_control(client, make, observer):
    survivor = make.survivor()
    response = client.get(f"{URL}/{survivor['id']}", headers=observer["headers"])
    assert response.status_code == 200
    assert response.get_json() == {key: value for key, value in survivor.items() if key != "owner"}
    assert re.fullmatch(r'"[^"]+"', response.headers["ETag"])  # strong: no W/ prefix
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_get_survivor_unknown_id_is_404(client, make):
    survivor = make.survivor()
    assert_problem(client.get(f"{URL}/{random_uuid()}", headers=survivor["owner"]["headers"]), 404)


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
def test_get_survivor_malformed_id_is_404(client, make, bad_id):
    survivor = make.survivor()
    assert_problem(client.get(f"{URL}/{bad_id}", headers=survivor["owner"]["headers"]), 404)


def test_get_survivor_without_token_is_401(client, make):
    survivor = make.survivor()
    assert_problem(client.get(f"{URL}/{survivor['id']}"), 401)


def test_get_survivor_matching_if_none_match_is_304_without_body(client, make):
    survivor = make.survivor()
    headers = survivor["owner"]["headers"]
    etag = client.get(f"{URL}/{survivor['id']}", headers=headers).headers["ETag"]
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get(f"{URL}/{survivor['id']}", headers={**headers, "If-None-Match": value})
        assert response.status_code == 304, value
        assert response.get_data() == b""
        assert response.headers["ETag"] == etag
        assert response.headers["Cache-Control"] == "private, no-cache"


def test_get_survivor_stale_if_none_match_is_200(client, make):
    survivor = make.survivor()
    headers = {**survivor["owner"]["headers"], "If-None-Match": '"stale"'}
    response = client.get(f"{URL}/{survivor['id']}", headers=headers)
    assert response.status_code == 200
    assert response.get_json()["id"] == survivor["id"]


def test_get_survivor_etag_changes_after_a_move(client, make):
    survivor = make.survivor()
    headers = survivor["owner"]["headers"]
    before = client.get(f"{URL}/{survivor['id']}", headers=headers).headers["ETag"]
    client.put(f"{URL}/{survivor['id']}/location", json={"latitude": 1, "longitude": 2}, headers=headers)
    after = client.get(f"{URL}/{survivor['id']}", headers={**headers, "If-None-Match": before})
    assert after.status_code == 200
    assert after.headers["ETag"] != before


def test_get_survivor_etags_differ_between_survivors(client, make):
    first, second = make.survivor(), make.survivor()
    headers = first["owner"]["headers"]
    etags = {client.get(f"{URL}/{s['id']}", headers=headers).headers["ETag"] for s in (first, second)}
    assert len(etags) == 2


# --- list ------------------------------------------------------------------------------------


def test_list_survivors_returns_the_page_envelope(client, make, observer):
    created = [make.survivor(name=f"S{index}") for index in range(3)]
    response = client.get(URL, headers=observer["headers"])
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"items", "page", "page_size", "total"}
    assert (body["page"], body["page_size"], body["total"]) == (1, 20, 3)
    assert [item["id"] for item in body["items"]] == [s["id"] for s in created]
    assert all(set(item) == SURVIVOR_KEYS for item in body["items"])
    assert "Link" not in response.headers


def test_list_survivors_empty_database_is_an_empty_page(client, observer):
    body = client.get(URL, headers=observer["headers"]).get_json()
    assert body == {"items": [], "page": 1, "page_size": 20, "total": 0}


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page=1.5", "page"),
        ("page=", "page"),
        ("page=1000001", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=abc", "page_size"),
        ("page_size=-5", "page_size"),
        ("infected=maybe", "infected"),
        ("infected=True", "infected"),
        ("infected=1", "infected"),
        ("infected=", "infected"),
    ],
)
def test_list_survivors_invalid_query_value_is_422(client, observer, query, path):
    problem = assert_problem(client.get(f"{URL}?{query}", headers=observer["headers"]), 422)
    assert list(problem["errors"]) == [path]


@pytest.mark.parametrize("page_size", [1, 100])
def test_list_survivors_page_size_bounds_are_accepted(client, make, observer, page_size):
    make.survivor()
    make.survivor()
    body = client.get(f"{URL}?page_size={page_size}", headers=observer["headers"]).get_json()
    assert body["page_size"] == page_size
    assert len(body["items"]) == min(page_size, 2)
    assert body["total"] == 2


def test_list_survivors_unknown_query_parameter_is_ignored(client, make, observer):
    # The contract makes invalid *values* of known parameters 422; an unknown parameter (a
    # client's cache-buster, say) is not a value of anything, so it is ignored.
    make.survivor()
    response = client.get(f"{URL}?foo=bar", headers=observer["headers"])
    assert response.status_code == 200
    assert response.get_json()["total"] == 1


def test_list_survivors_order_is_stable_across_pages(client, make, observer):
    created = [make.survivor(name=f"S{index}")["id"] for index in range(5)]
    seen = []
    for page in (1, 2, 3):
        body = client.get(f"{URL}?page={page}&page_size=2", headers=observer["headers"]).get_json()
        assert body["total"] == 5
        seen += [item["id"] for item in body["items"]]
    assert seen == created
    again = [
        i["id"] for i in client.get(f"{URL}?page_size=5", headers=observer["headers"]).get_json()["items"]
    ]
    assert again == created


def test_list_survivors_page_past_the_end_is_empty(client, make, observer):
    make.survivor()
    body = client.get(f"{URL}?page=3", headers=observer["headers"]).get_json()
    assert body == {"items": [], "page": 3, "page_size": 20, "total": 1}


def test_list_survivors_link_header_names_next_and_prev(client, make, observer):
    ids = [make.survivor(name=f"S{index}")["id"] for index in range(5)]
    headers = observer["headers"]
    first = parse_links(client.get(f"{URL}?page_size=2", headers=headers).headers.get("Link"))
    middle = parse_links(client.get(f"{URL}?page=2&page_size=2", headers=headers).headers.get("Link"))
    last = parse_links(client.get(f"{URL}?page=3&page_size=2", headers=headers).headers.get("Link"))
    queries = [{rel: query_of(url) for rel, url in links.items()} for links in (first, middle, last)]
    # next carries the cursor of the page's last item, prev that of its first (none to page 1).
    assert [cursors_of(links) for links in queries] == [
        {"next": ("after", ids[1])},
        {"next": ("after", ids[3])},
        {"prev": ("before", ids[4])},
    ]
    assert queries == [
        {"next": {"page": "2", "page_size": "2"}},
        {"prev": {"page": "1", "page_size": "2"}, "next": {"page": "3", "page_size": "2"}},
        {"prev": {"page": "2", "page_size": "2"}},
    ]
    assert all(url.startswith("/api/v1/survivors?") for url in (*first.values(), *middle.values()))
    # Following the links walks the pages in order.
    following = client.get(first["next"], headers=headers).get_json()
    assert following["page"] == 2 and [item["id"] for item in following["items"]] == ids[2:4]


def test_list_survivors_link_header_keeps_the_filter(client, make, observer):
    ids = [make.survivor(name=f"S{index}")["id"] for index in range(3)]
    response = client.get(f"{URL}?infected=false&page_size=1", headers=observer["headers"])
    links = parse_links(response.headers["Link"])
    assert links["next"].startswith("/api/v1/survivors?")
    query = query_of(links["next"])
    assert named(query.pop("after")) == ids[0]
    assert query == {"infected": "false", "page": "2", "page_size": "1"}


def test_list_survivors_filters_on_infected(client, make, observer):
    target = make.survivor(name="Target")
    reporters = make.infect(target)
    infected = client.get(f"{URL}?infected=true", headers=observer["headers"]).get_json()
    assert [item["id"] for item in infected["items"]] == [target["id"]]
    assert infected["total"] == 1 and infected["items"][0]["infected"] is True
    healthy = client.get(f"{URL}?infected=false", headers=observer["headers"]).get_json()
    assert [item["id"] for item in healthy["items"]] == [r["id"] for r in reporters]
    assert healthy["total"] == 3
    everyone = client.get(URL, headers=observer["headers"]).get_json()
    assert everyone["total"] == 4


def test_list_survivors_has_etag_and_cache_control(client, make, observer):
    make.survivor()
    response = client.get(URL, headers=observer["headers"])
    assert re.fullmatch(r'"[^"]+"', response.headers["ETag"])
    assert response.headers["Cache-Control"] == "private, no-cache"
    cached = client.get(URL, headers={**observer["headers"], "If-None-Match": response.headers["ETag"]})
    assert cached.status_code == 304
    assert cached.get_data() == b""
    assert cached.headers["ETag"] == response.headers["ETag"]


def test_list_survivors_etag_changes_with_the_page(client, make, observer):
    headers = observer["headers"]
    survivor = make.survivor()
    before = client.get(URL, headers=headers).headers["ETag"]
    client.put(
        f"{URL}/{survivor['id']}/location",
        json={"latitude": 5, "longitude": 5},
        headers=survivor["owner"]["headers"],
    )
    moved = client.get(URL, headers={**headers, "If-None-Match": before})
    assert moved.status_code == 200
    make.survivor()
    grown = client.get(URL, headers={**headers, "If-None-Match": moved.headers["ETag"]})
    assert grown.status_code == 200
    assert len({before, moved.headers["ETag"], grown.headers["ETag"]}) == 3
    assert client.get(f"{URL}?infected=true", headers=headers).headers["ETag"] != grown.headers["ETag"]


# --- location --------------------------------------------------------------------------------


def location_url(survivor: dict[str, Any]) -> str:
    return f"{URL}/{survivor['id']}/location"


def test_move_survivor_by_owner_is_200_with_new_etag(client, make):
    survivor = make.survivor()
    headers = survivor["owner"]["headers"]
    before = client.get(f"{URL}/{survivor['id']}", headers=headers).headers["ETag"]
    response = client.put(
        location_url(survivor), json={"latitude": 51.5, "longitude": -0.12}, headers=headers
    )
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == SURVIVOR_KEYS
    assert body["location"] == {"latitude": 51.5, "longitude": -0.12}
    assert response.headers["ETag"] != before
    read = client.get(f"{URL}/{survivor['id']}", headers=headers)
    assert read.headers["ETag"] == response.headers["ETag"]
    assert read.get_json()["location"] == {"latitude": 51.5, "longitude": -0.12}


def test_move_survivor_by_admin_is_200(client, make, admin):
    survivor = make.survivor()
    response = client.put(
        location_url(survivor), json={"latitude": -1, "longitude": 1}, headers=admin["headers"]
    )
    assert response.status_code == 200
    assert response.get_json()["location"] == {"latitude": -1, "longitude": 1}
    assert response.get_json()["account_id"] == survivor["owner"]["id"]


def test_move_survivor_by_another_survivor_is_403_and_changes_nothing(client, make):
    victim, attacker = make.survivor(), make.survivor()
    read = client.get(f"{URL}/{victim['id']}", headers=victim["owner"]["headers"])
    response = client.put(
        location_url(victim), json={"latitude": 0, "longitude": 0}, headers=attacker["owner"]["headers"]
    )
    assert_problem(response, 403)
    again = client.get(f"{URL}/{victim['id']}", headers=victim["owner"]["headers"])
    assert again.get_json() == read.get_json()
    assert again.headers["ETag"] == read.headers["ETag"]


def test_move_survivor_by_account_without_profile_is_403(client, make):
    victim = make.survivor()
    stranger = make.account("survivor")
    response = client.put(
        location_url(victim), json={"latitude": 0, "longitude": 0}, headers=stranger["headers"]
    )
    assert_problem(response, 403)
    assert (
        client.get(f"{URL}/{victim['id']}", headers=stranger["headers"]).get_json()["location"]
        == victim["location"]
    )


def test_move_survivor_by_observer_is_403(client, make, observer):
    survivor = make.survivor()
    response = client.put(
        location_url(survivor), json={"latitude": 0, "longitude": 0}, headers=observer["headers"]
    )
    assert_problem(response, 403)
    assert (
        client.get(f"{URL}/{survivor['id']}", headers=observer["headers"]).get_json()["location"]
        == survivor["location"]
    )


def test_move_survivor_by_owner_demoted_to_observer_is_403(client, make, admin):
    survivor = make.survivor()
    owner = survivor["owner"]
    demoted = client.patch(
        f"/api/v1/accounts/{owner['id']}", json={"role": "observer"}, headers=admin["headers"]
    )
    assert demoted.status_code == 200
    response = client.put(
        location_url(survivor), json={"latitude": 0, "longitude": 0}, headers=owner["headers"]
    )
    assert_problem(response, 403)
    assert (
        client.get(f"{URL}/{survivor['id']}", headers=admin["headers"]).get_json()["location"]
        == survivor["location"]
    )


def test_move_survivor_with_stale_if_match_is_412_and_writes_nothing(client, make):
    survivor = make.survivor()
    headers = survivor["owner"]["headers"]
    stale = client.get(f"{URL}/{survivor['id']}", headers=headers).headers["ETag"]
    client.put(location_url(survivor), json={"latitude": 10, "longitude": 10}, headers=headers)
    current = client.get(f"{URL}/{survivor['id']}", headers=headers)
    for value in (stale, '"nonsense"', f"W/{current.headers['ETag']}"):
        response = client.put(
            location_url(survivor),
            json={"latitude": 20, "longitude": 20},
            headers={**headers, "If-Match": value},
        )
        assert_problem(response, 412)
    after = client.get(f"{URL}/{survivor['id']}", headers=headers)
    assert after.get_json()["location"] == {"latitude": 10, "longitude": 10}
    assert after.headers["ETag"] == current.headers["ETag"]


def test_move_survivor_with_current_if_match_is_200(client, make):
    survivor = make.survivor()
    headers = survivor["owner"]["headers"]
    etag = client.get(f"{URL}/{survivor['id']}", headers=headers).headers["ETag"]
    response = client.put(
        location_url(survivor), json={"latitude": 3, "longitude": 4}, headers={**headers, "If-Match": etag}
    )
    assert response.status_code == 200
    assert response.get_json()["location"] == {"latitude": 3, "longitude": 4}
    listed = client.put(
        location_url(survivor),
        json={"latitude": 5, "longitude": 6},
        headers={**headers, "If-Match": f'"other", {response.headers["ETag"]}'},
    )
    assert listed.status_code == 200
    star = client.put(
        location_url(survivor), json={"latitude": 7, "longitude": 8}, headers={**headers, "If-Match": "*"}
    )
    assert star.status_code == 200
    assert star.get_json()["location"] == {"latitude": 7, "longitude": 8}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"latitude": 90.5, "longitude": 0}, "latitude"),
        ({"latitude": -91, "longitude": 0}, "latitude"),
        ({"latitude": 0, "longitude": 180.5}, "longitude"),
        ({"latitude": 0, "longitude": -181}, "longitude"),
        ({"latitude": "north", "longitude": 0}, "latitude"),
        ({"latitude": "45", "longitude": 0}, "latitude"),
        ({"latitude": False, "longitude": 0}, "latitude"),
        ({"longitude": 0}, "latitude"),
        ({"latitude": 0}, "longitude"),
        ({"latitude": 0, "longitude": 0, "altitude": 5}, "altitude"),
    ],
)
def test_move_survivor_bad_coordinates_are_422(client, make, body, path):
    survivor = make.survivor()
    headers = survivor["owner"]["headers"]
    problem = assert_problem(client.put(location_url(survivor), json=body, headers=headers), 422)
    assert list(problem["errors"]) == [path]
    assert (
        client.get(f"{URL}/{survivor['id']}", headers=headers).get_json()["location"] == survivor["location"]
    )


def test_move_survivor_without_body_is_422(client, make):
    survivor = make.survivor()
    assert_problem(client.put(location_url(survivor), headers=survivor["owner"]["headers"]), 422)


def test_move_survivor_unknown_id_is_404(client, admin):
    response = client.put(
        f"{URL}/{random_uuid()}/location", json={"latitude": 0, "longitude": 0}, headers=admin["headers"]
    )
    assert_problem(response, 404)


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
def test_move_survivor_malformed_id_is_404(client, admin, bad_id):
    response = client.put(
        f"{URL}/{bad_id}/location", json={"latitude": 0, "longitude": 0}, headers=admin["headers"]
    )
    assert_problem(response, 404)


# --- inventory -------------------------------------------------------------------------------


def test_get_inventory_returns_items_and_points(client, make, observer):
    survivor = make.survivor(inventory={"water": 3, "food": 2, "medication": 1, "ammunition": 10})
    for headers in (survivor["owner"]["headers"], observer["headers"], make.survivor()["owner"]["headers"]):
        response = client.get(f"{URL}/{survivor['id']}/inventory", headers=headers)
        assert response.status_code == 200
        assert response.get_json() == {
            "survivor_id": survivor["id"],
            "water": 3,
            "food": 2,
            "medication": 1,
            "ammunition": 10,
            "points": 3 * 4 + 2 * 3 + 1 * 2 + 10 * 1,
        }
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("item", "points"), [("water", 4), ("food", 3), ("medication", 2), ("ammunition", 1)]
)
def test_get_inventory_points_per_item(client, make, item, points):
    survivor = make.survivor(inventory={item: 7})
    body = client.get(f"{URL}/{survivor['id']}/inventory", headers=survivor["owner"]["headers"]).get_json()
    assert body["points"] == 7 * points


def test_get_inventory_of_infected_survivor_is_403_except_for_admin(client, make, observer, admin):
    target = make.survivor(inventory={"water": 1, "food": 1, "medication": 1, "ammunition": 1})
    reporters = make.infect(target)
    url = f"{URL}/{target['id']}/inventory"
    for headers in (target["owner"]["headers"], reporters[0]["owner"]["headers"], observer["headers"]):
        response = client.get(url, headers=headers)
        assert_problem(response, 403)
        assert response.headers["Cache-Control"] == "no-store"
    response = client.get(url, headers=admin["headers"])
    assert response.status_code == 200
    assert response.get_json()["points"] == 10
    assert response.headers["Cache-Control"] == "no-store"


def test_get_inventory_unknown_survivor_is_404(client, admin):
    assert_problem(client.get(f"{URL}/{random_uuid()}/inventory", headers=admin["headers"]), 404)


def test_get_inventory_without_token_is_401(client, make):
    survivor = make.survivor()
    assert_problem(client.get(f"{URL}/{survivor['id']}/inventory"), 401)


def test_put_inventory_is_405(client, make):
    survivor = make.survivor()
    response = client.put(
        f"{URL}/{survivor['id']}/inventory", json={"water": 100}, headers=survivor["owner"]["headers"]
    )
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


# --- services (the rules, without HTTP) ------------------------------------------------------


def test_move_failed_precondition_writes_nothing(app, make):
    from api.accounts.services import load_active
    from api.extensions import db
    from api.survivors import services
    from api.survivors.models import Survivor

    survivor = make.survivor()
    survivor_id = uuid.UUID(survivor["id"])
    seen = []
    with app.app_context():
        owner = load_active(survivor["owner"]["id"])
        with pytest.raises(ProblemError) as raised:
            services.move(
                owner, survivor_id, {"latitude": 9, "longitude": 9}, lambda etag: seen.append(etag) and False
            )
        assert raised.value.status == 412
        db.session.expire_all()
        stored = db.session.get(Survivor, survivor_id)
        assert (stored.latitude, stored.longitude, stored.version) == (-33.92, 18.42, 1)
        assert seen == [stored.etag]
        moved = services.move(owner, survivor_id, {"latitude": 9, "longitude": 9}, lambda etag: True)
        assert moved.version == 2 and moved.etag != seen[0]


def test_create_survivor_second_profile_is_refused_by_the_database(app, make):
    from api.accounts.services import load_active
    from api.survivors import services

    account = make.account("survivor")
    data = {"name": "Ada", "age": 1, "gender": "female", "location": {"latitude": 0, "longitude": 0}}
    with app.app_context():
        actor = load_active(account["id"])
        services.create_survivor(actor, data)
        # The same actor, loaded before its profile existed (survivor_id None), as a request
        # racing the first one would be: the unique key refuses the second profile.
        with pytest.raises(ProblemError) as raised:
            services.create_survivor(actor, data)
        assert raised.value.status == 409
        assert raised.value.detail == services.SECOND_PROFILE
        assert services.list_survivors(Window(1, 10))[1] == 1
