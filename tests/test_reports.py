"""Reports: infection figures, infected / non-infected pages, resources — all database aggregates."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, insert

from api.caching import SURVIVORS
from api.database import write_transaction
from api.extensions import db
from api.survivors import totals
from api.survivors.models import Survivor
from tests.conftest import Factory, assert_problem

REPORTS = "/api/v1/reports"
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
EMPTY_AVERAGES = {"water": 0.0, "food": 0.0, "medication": 0.0, "ammunition": 0.0}


def infect(make: Factory, target: dict[str, Any], reporters: list[dict[str, Any]]) -> None:
    for reporter in reporters:
        assert make.report(reporter, target["id"]).status_code == 201


def inventory(water: int = 0, food: int = 0, medication: int = 0, ammunition: int = 0) -> dict[str, int]:
    return {"water": water, "food": food, "medication": medication, "ammunition": ammunition}


def insert_survivors(app: Any, count: int, **values: Any) -> None:
    """Many rows at once, straight into the table (the HTTP path is too slow for thousands)."""
    if not count:
        return
    row = {"name": "Bulk", "age": 30, "gender": "unspecified", "latitude": 0.0, "longitude": 0.0, **values}
    # Declared as every write declares it: cached reports must not outlive it.
    with app.app_context(), write_transaction(changes=SURVIVORS) as session:
        session.execute(insert(Survivor), [{**row, "id": uuid.uuid4()} for _ in range(count)])
        totals.reset(session)  # rows written behind the app's back: recount them


@contextmanager
def counted_statements(app: Any) -> Iterator[list[str]]:
    """Record every SQL statement the app's engine runs inside the block."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not TRANSACTION_CONTROL.match(statement):  # SQLite's BEGIN is issued as SQL
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def assert_totals_only(statement: str) -> None:
    """A single primary-key read of the survivor totals: no survivor row is read or counted."""
    text = statement.lower()
    assert text.lstrip().startswith("select") and "from survivor_totals" in text
    assert "survivor_totals.id = " in text
    assert "from survivors" not in text and "count(" not in text and "group by" not in text


# --- /reports/infection ----------------------------------------------------------------------


def test_infection_report_on_empty_database_is_all_zero(client, observer):
    response = client.get(f"{REPORTS}/infection", headers=observer["headers"])
    assert response.status_code == 200
    assert response.get_json() == {
        "total": 0,
        "infected": 0,
        "non_infected": 0,
        "infected_percentage": 0.0,
        "non_infected_percentage": 0.0,
    }


def test_infection_report_rounds_percentages_to_two_decimals(client, make, observer):
    target = make.survivor()
    reporters = [make.survivor(), make.survivor(), make.survivor()]
    infect(make, target, reporters)
    # 1 infected of 4: exact quarters.
    body = client.get(f"{REPORTS}/infection", headers=observer["headers"]).get_json()
    assert body == {
        "total": 4,
        "infected": 1,
        "non_infected": 3,
        "infected_percentage": 25.0,
        "non_infected_percentage": 75.0,
    }
    # 1 infected of 6: 16.666… and 83.333…
    make.survivor()
    make.survivor()
    body = client.get(f"{REPORTS}/infection", headers=observer["headers"]).get_json()
    assert (body["total"], body["infected"], body["non_infected"]) == (6, 1, 5)
    assert (body["infected_percentage"], body["non_infected_percentage"]) == (16.67, 83.33)


@pytest.fixture
def lenient_app(make_app):
    """A second app on the same database with INFECTION_THRESHOLD=1 (app keeps the cleanup)."""
    return make_app(INFECTION_THRESHOLD="1")


def test_infection_report_one_of_three_is_33_33(lenient_app):
    client = lenient_app.test_client()
    make = Factory(lenient_app, client)
    a, b, c = make.survivor(), make.survivor(), make.survivor()
    assert make.report(a, b["id"]).get_json()["infected"] is True
    body = client.get(f"{REPORTS}/infection", headers=a["owner"]["headers"]).get_json()
    assert body == {
        "total": 3,
        "infected": 1,
        "non_infected": 2,
        "infected_percentage": 33.33,
        "non_infected_percentage": 66.67,
    }
    assert make.report(a, c["id"]).get_json()["infected"] is True
    body = client.get(f"{REPORTS}/infection", headers=a["owner"]["headers"]).get_json()
    assert (body["infected_percentage"], body["non_infected_percentage"]) == (66.67, 33.33)


def test_infection_report_uses_whole_database_figures(app, client, observer):
    insert_survivors(app, 1, infected=True)
    insert_survivors(app, 2, infected=False)
    body = client.get(f"{REPORTS}/infection", headers=observer["headers"]).get_json()
    assert body == {
        "total": 3,
        "infected": 1,
        "non_infected": 2,
        "infected_percentage": 33.33,
        "non_infected_percentage": 66.67,
    }
    insert_survivors(app, 1, infected=True)
    body = client.get(f"{REPORTS}/infection", headers=observer["headers"]).get_json()
    assert (body["infected_percentage"], body["non_infected_percentage"]) == (50.0, 50.0)


def test_infection_report_all_infected_is_100(app, client, observer):
    insert_survivors(app, 3, infected=True)
    body = client.get(f"{REPORTS}/infection", headers=observer["headers"]).get_json()
    assert body == {
        "total": 3,
        "infected": 3,
        "non_infected": 0,
        "infected_percentage": 100.0,
        "non_infected_percentage": 0.0,
    }


# --- infected / non-infected pages -----------------------------------------------------------


def test_infected_survivors_lists_only_the_infected(client, make, observer):
    target = make.survivor(name="Target")
    reporters = [make.survivor(name=f"R{i}") for i in range(3)]
    infect(make, target, reporters)
    response = client.get(f"{REPORTS}/infected-survivors", headers=observer["headers"])
    assert response.status_code == 200
    body = response.get_json()
    assert (body["page"], body["page_size"], body["total"]) == (1, 20, 1)
    assert [item["id"] for item in body["items"]] == [target["id"]]
    assert body["items"][0]["infected"] is True and body["items"][0]["infection_reports"] == 3


def test_non_infected_survivors_lists_only_the_healthy_in_order(client, make, observer):
    target = make.survivor(name="Target")
    reporters = [make.survivor(name=f"R{i}") for i in range(3)]
    infect(make, target, reporters)
    body = client.get(f"{REPORTS}/non-infected-survivors", headers=observer["headers"]).get_json()
    assert body["total"] == 3
    assert [item["id"] for item in body["items"]] == [r["id"] for r in reporters]
    assert all(item["infected"] is False for item in body["items"])


def test_survivor_report_pages_on_empty_database_are_empty(client, observer):
    for path in ("infected-survivors", "non-infected-survivors"):
        body = client.get(f"{REPORTS}/{path}", headers=observer["headers"]).get_json()
        assert body == {"items": [], "page": 1, "page_size": 20, "total": 0}


def test_non_infected_survivors_pages_with_link_header(client, make, observer):
    created = [make.survivor(name=f"S{i}")["id"] for i in range(3)]
    response = client.get(f"{REPORTS}/non-infected-survivors?page=2&page_size=1", headers=observer["headers"])
    body = response.get_json()
    assert [item["id"] for item in body["items"]] == [created[1]]
    assert (body["page"], body["page_size"], body["total"]) == (2, 1, 3)
    link = response.headers["Link"]
    assert 'rel="prev"' in link and 'rel="next"' in link
    assert "/api/v1/reports/non-infected-survivors?" in link


@pytest.mark.parametrize("path", ["infected-survivors", "non-infected-survivors"])
@pytest.mark.parametrize("query", ["page=0", "page=abc", "page_size=0", "page_size=101"])
def test_survivor_report_pages_invalid_paging_is_422(client, observer, path, query):
    problem = assert_problem(client.get(f"{REPORTS}/{path}?{query}", headers=observer["headers"]), 422)
    assert list(problem["errors"]) == [query.split("=")[0]]


# --- /reports/resources ----------------------------------------------------------------------


def test_resources_report_on_empty_database_is_zero(client, observer):
    response = client.get(f"{REPORTS}/resources", headers=observer["headers"])
    assert response.status_code == 200
    assert response.get_json() == {"average_per_survivor": EMPTY_AVERAGES, "points_lost": 0}


def test_resources_report_averages_non_infected_and_counts_points_lost(client, make, observer):
    a = make.survivor(inventory=inventory(water=1, food=2, medication=3, ammunition=4))
    b = make.survivor(inventory=inventory(water=2, food=2))
    c = make.survivor(inventory=inventory(ammunition=1))
    target = make.survivor(inventory=inventory(water=10, food=1, ammunition=5))
    before = client.get(f"{REPORTS}/resources", headers=observer["headers"]).get_json()
    assert before == {
        "average_per_survivor": {"water": 3.25, "food": 1.25, "medication": 0.75, "ammunition": 2.5},
        "points_lost": 0,
    }
    infect(make, target, [a, b, c])
    body = client.get(f"{REPORTS}/resources", headers=observer["headers"]).get_json()
    assert body == {
        # water 3/3, food 4/3, medication 3/3, ammunition 5/3 — over the three healthy ones only
        "average_per_survivor": {"water": 1.0, "food": 1.33, "medication": 1.0, "ammunition": 1.67},
        "points_lost": 10 * 4 + 1 * 3 + 0 * 2 + 5 * 1,
    }


def test_resources_report_with_everyone_infected_averages_zero(app, client, observer):
    insert_survivors(app, 2, infected=True, water=1, food=1, medication=1, ammunition=1)
    body = client.get(f"{REPORTS}/resources", headers=observer["headers"]).get_json()
    assert body == {"average_per_survivor": EMPTY_AVERAGES, "points_lost": 2 * (4 + 3 + 2 + 1)}


def test_resources_report_points_lost_beyond_32_bits(app, client, observer):
    # 2,200 infected survivors holding the maximum: 2.2 billion points, more than an int32.
    most = {"water": 100_000, "food": 100_000, "medication": 100_000, "ammunition": 100_000}
    insert_survivors(app, 2_200, infected=True, **most)
    insert_survivors(app, 1, water=1)
    body = client.get(f"{REPORTS}/resources", headers=observer["headers"]).get_json()
    assert body["points_lost"] == 2_200 * 1_000_000
    assert body["average_per_survivor"] == {**EMPTY_AVERAGES, "water": 1.0}


# --- caching and access ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["infection", "infected-survivors", "non-infected-survivors", "resources"])
def test_report_has_etag_and_304_on_match(client, make, observer, path):
    make.survivor()
    response = client.get(f"{REPORTS}/{path}", headers=observer["headers"])
    assert re.fullmatch(r'"[^"]+"', response.headers["ETag"])
    assert response.headers["Cache-Control"] == "private, no-cache"
    cached = client.get(
        f"{REPORTS}/{path}", headers={**observer["headers"], "If-None-Match": response.headers["ETag"]}
    )
    assert cached.status_code == 304
    assert cached.get_data() == b""
    assert cached.headers["ETag"] == response.headers["ETag"]
    assert cached.headers["Cache-Control"] == "private, no-cache"


@pytest.mark.parametrize("path", ["infection", "infected-survivors", "non-infected-survivors", "resources"])
def test_report_etag_changes_when_the_data_does(client, make, observer, path):
    target = make.survivor(inventory=inventory(water=1))
    reporters = [make.survivor() for _ in range(3)]
    before = client.get(f"{REPORTS}/{path}", headers=observer["headers"]).headers["ETag"]
    infect(make, target, reporters)
    after = client.get(f"{REPORTS}/{path}", headers={**observer["headers"], "If-None-Match": before})
    assert after.status_code == 200
    assert after.headers["ETag"] != before


@pytest.mark.parametrize("path", ["infection", "infected-survivors", "non-infected-survivors", "resources"])
def test_report_is_readable_by_every_role_and_401_without_token(client, make, admin, observer, path):
    survivor = make.survivor()
    for headers in (admin["headers"], observer["headers"], survivor["owner"]["headers"]):
        assert client.get(f"{REPORTS}/{path}", headers=headers).status_code == 200
    assert_problem(client.get(f"{REPORTS}/{path}"), 401)


# --- services: maintained totals, read in O(1) ------------------------------------------------


@pytest.mark.parametrize("rows", [0, 1, 60])
def test_report_services_read_one_totals_row_whatever_the_row_count(app, rows):
    from api.reports import services

    insert_survivors(app, rows, water=2)
    with app.app_context():
        with counted_statements(app) as statements:
            summary = services.infection_summary()
        assert summary["total"] == rows
        assert len(statements) == 1
        assert_totals_only(statements[0])
        with counted_statements(app) as statements:
            resources = services.resources()
        assert resources["average_per_survivor"]["water"] == (2.0 if rows else 0.0)
        assert len(statements) == 1
        assert_totals_only(statements[0])


def test_report_services_return_plain_numbers(app):
    from api.reports import services

    insert_survivors(app, 3, water=1)
    insert_survivors(app, 1, infected=True, food=2)
    with app.app_context():
        summary = services.infection_summary()
        resources = services.resources()
    assert all(type(summary[key]) is int for key in ("total", "infected", "non_infected"))
    assert all(type(value) is float for value in resources["average_per_survivor"].values())
    assert type(resources["points_lost"]) is int and resources["points_lost"] == 6
