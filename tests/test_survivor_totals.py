"""Survivor totals: kept by every write, always equal to a recount, and the reports built on them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import BigInteger, case, cast, func, inspect, select, text

from api.extensions import db
from api.survivors import totals
from api.survivors.models import ITEMS, POINTS, Survivor
from tests.conftest import Factory, assert_totals_match

REPORTS = "/api/v1/reports"


def reference_reports(app: Any) -> dict[str, Any]:
    """Both reports computed the way they were before the totals: aggregates over every row."""
    healthy = ~Survivor.infected
    averages = [func.avg(case((healthy, getattr(Survivor, item)), else_=None)) for item in ITEMS]
    points = sum(POINTS[item] * cast(getattr(Survivor, item), BigInteger) for item in ITEMS)
    lost = func.coalesce(func.sum(case((Survivor.infected, points), else_=0)), 0)
    infected = func.coalesce(func.sum(case((Survivor.infected, 1), else_=0)), 0)
    with app.app_context():
        row = db.session.execute(select(func.count(), infected, *averages, cast(lost, BigInteger))).one()
        db.session.remove()
    total, sick = int(row[0]), int(row[1])

    def percent(part: int) -> float:
        return round(100.0 * part / total, 2) if total else 0.0

    return {
        "infection": {
            "total": total,
            "infected": sick,
            "non_infected": total - sick,
            "infected_percentage": percent(sick),
            "non_infected_percentage": percent(total - sick),
        },
        "resources": {
            "average_per_survivor": {
                item: round(float(value), 2) if value is not None else 0.0
                for item, value in zip(ITEMS, row[2:-1], strict=True)
            },
            "points_lost": int(row[-1]),
        },
    }


def assert_reports_match_the_rows(app: Any, client: Any, headers: dict[str, str]) -> None:
    assert_totals_match(app)
    want = reference_reports(app)
    for name in ("infection", "resources"):
        assert client.get(f"{REPORTS}/{name}", headers=headers).get_json() == want[name], name


def test_totals_equal_a_recount_through_registrations_trades_and_infections(app, client, make, observer):
    headers = observer["headers"]
    assert_reports_match_the_rows(app, client, headers)
    # Inventories whose averages land on awkward decimals: thirds, sixths, halves.
    inventories = [
        {"water": 1, "food": 2, "medication": 0, "ammunition": 7},
        {"water": 0, "food": 1, "medication": 5},
        {"water": 2, "ammunition": 1},
        {"food": 4, "medication": 1, "ammunition": 100_000},
        {},
        {"water": 100_000, "food": 100_000, "medication": 100_000, "ammunition": 100_000},
    ]
    people = [make.survivor(inventory=inventory) for inventory in inventories]
    assert_reports_match_the_rows(app, client, headers)
    # A trade moves items between two healthy survivors: every sum stays the same.
    trade = make.trade(people[0], people[5], {"water": 1}, {"ammunition": 4})
    accepted = client.post(f"/api/v1/trades/{trade['id']}/accept", headers=people[5]["owner"]["headers"])
    assert accepted.status_code == 200
    assert_reports_match_the_rows(app, client, headers)
    # Infected while holding what the trade gave it: those items become points lost.
    for reporter in people[1:4]:
        assert make.report(reporter, people[0]["id"]).status_code == 201
        assert_reports_match_the_rows(app, client, headers)
    # Reports on an infected survivor keep counting; nothing moves twice.
    assert make.report(people[4], people[0]["id"]).status_code == 201
    assert make.report(people[4], people[0]["id"]).status_code == 200
    make.infect(people[5])
    assert_reports_match_the_rows(app, client, headers)
    body = client.get(f"{REPORTS}/resources", headers=headers).get_json()
    # After the trade people[0] held food 2 and ammunition 11; people[5] water 100,001, food and
    # medication 100,000, ammunition 99,996.
    assert body["points_lost"] == (2 * 3 + 11) + (100_001 * 4 + 100_000 * 3 + 100_000 * 2 + 99_996)


def test_infection_past_a_lowered_threshold_moves_the_items_once(app, make, make_app, observer):
    target = make.survivor(inventory={"water": 5})
    for reporter in (make.survivor(), make.survivor()):
        assert make.report(reporter, target["id"]).get_json()["infected"] is False
    # Restarted with a threshold of 1: the next report (the third) crosses it, past its value.
    lenient = make_app(INFECTION_THRESHOLD="1")
    strict_make = Factory(lenient, lenient.test_client())
    body = strict_make.report(strict_make.survivor(), target["id"]).get_json()
    assert (body["infection_reports"], body["infected"]) == (3, True)
    again = strict_make.report(strict_make.survivor(), target["id"]).get_json()
    assert (again["infection_reports"], again["infected"]) == (4, True)
    assert_totals_match(app)
    with app.app_context():
        assert totals.current().points_lost == 5 * 4
        db.session.remove()


def test_list_totals_come_from_the_counters(app, client, make, observer):
    make.infect(make.survivor())
    with app.app_context():
        # Rows written behind the app's back are not seen until a recount: the totals are not counted.
        db.session.execute(
            text(
                "INSERT INTO survivors (id, name, age, gender, latitude, longitude, infected, "
                "infection_reports, water, food, medication, ammunition, version, created_at, updated_at) "
                "VALUES (:id, 'Ghost', 1, 'female', 0, 0, :infected, 0, 0, 0, 0, 0, 1, :now, :now)"
            ),
            {"id": uuid.uuid4().hex, "infected": False, "now": "2026-01-01 00:00:00.000000"},
        )
        db.session.execute(text("UPDATE data_versions SET version = version + 1"))
        db.session.commit()
    lists = ["/api/v1/survivors", "/api/v1/survivors?infected=true", f"{REPORTS}/non-infected-survivors"]
    assert [client.get(path, headers=observer["headers"]).get_json()["total"] for path in lists] == [4, 1, 3]
    with app.app_context():
        totals.reset(db.session)
        db.session.execute(text("UPDATE data_versions SET version = version + 1"))
        db.session.commit()
    assert [client.get(path, headers=observer["headers"]).get_json()["total"] for path in lists] == [5, 1, 4]
    assert_totals_match(app)


def test_migration_starts_the_totals_from_the_rows_already_there(app, make):
    from flask_migrate import downgrade, upgrade

    make.survivor(inventory={"water": 3, "ammunition": 2})
    make.infect(make.survivor(inventory={"food": 7, "medication": 1}))
    directory = app.extensions["migrate"].directory
    with app.app_context():
        db.session.remove()
        downgrade(directory=directory, revision="0004")
        try:
            assert "survivor_totals" not in inspect(db.engine).get_table_names()
        finally:
            upgrade(directory=directory)
        kept = dict(zip(totals.FIELDS, totals.current(), strict=True))
        db.session.remove()
    assert kept == {
        "survivors": 5,
        "infected": 1,
        "water": 3 + 3 * 3,  # the three reporters hold the factory's default inventory
        "food": 3 * 2,
        "medication": 3 * 1,
        "ammunition": 2 + 3 * 10,
        "points_lost": 7 * 3 + 1 * 2,
    }
    assert_totals_match(app)


def test_bench_bulk_seeding_keeps_the_survivor_totals(app):
    # bench/seed.py loads survivors around the app (COPY, batched inserts): it moves the totals too.
    from bench import seed

    seed.bulk_survivors(app, 500)
    seed.bulk_survivors(app, 300)
    assert_totals_match(app)
    with app.app_context():
        now = totals.current()
        db.session.remove()
        assert (now.survivors, now.infected) == (800, 800 // seed.INFECTED_EVERY)
