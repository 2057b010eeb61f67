"""Infection reports: the order of checks, counting once per reporter, the threshold, races."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from typing import Any

import pytest

from tests.conftest import Factory, assert_problem, random_uuid


def reports_url(survivor_id: str) -> str:
    return f"/api/v1/survivors/{survivor_id}/infection-reports"


def read(client: Any, survivor_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"/api/v1/survivors/{survivor_id}", headers=headers)
    assert response.status_code == 200
    return response.get_json()


def as_admin(client: Any, admin: dict[str, Any], target_id: str, reporter_id: str) -> Any:
    return client.post(reports_url(target_id), json={"reporter_id": reporter_id}, headers=admin["headers"])


# --- the order of checks (docs/api.md, Infection reports) ---------------------------------------


def test_report_unknown_survivor_is_404(client, make, admin):
    reporter = make.survivor()
    assert_problem(make.report(reporter, random_uuid()), 404)
    assert_problem(as_admin(client, admin, random_uuid(), reporter["id"]), 404)


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", random_uuid() + "0"])
def test_report_malformed_survivor_id_is_404(client, make, bad_id):
    reporter = make.survivor()
    assert_problem(client.post(reports_url(bad_id), headers=reporter["owner"]["headers"]), 404)


def test_report_unknown_survivor_by_account_without_profile_is_404(client, make):
    # 404 comes before 409: the target is checked before the reporter.
    stranger = make.account("survivor")
    assert_problem(client.post(reports_url(random_uuid()), headers=stranger["headers"]), 404)


def test_report_unknown_survivor_with_unknown_reporter_is_404(client, admin):
    assert_problem(as_admin(client, admin, random_uuid(), random_uuid()), 404)


def test_report_by_account_without_profile_is_409(client, make, admin):
    target = make.survivor()
    stranger = make.account("survivor")
    assert_problem(
        client.post(reports_url(target["id"]), headers=stranger["headers"]),
        409,
        detail="Register your survivor profile before reporting.",
    )
    # 409 comes before the survivor-account body check (422).
    with_body = client.post(
        reports_url(target["id"]), json={"reporter_id": target["id"]}, headers=stranger["headers"]
    )
    assert_problem(with_body, 409, detail="Register your survivor profile before reporting.")
    assert read(client, target["id"], admin["headers"])["infection_reports"] == 0


def test_report_admin_reporter_naming_no_survivor_is_422(client, make, admin):
    target = make.survivor()
    body = assert_problem(as_admin(client, admin, target["id"], random_uuid()), 422)
    assert list(body["errors"]) == ["reporter_id"]
    assert read(client, target["id"], admin["headers"])["infection_reports"] == 0


def test_report_yourself_is_422(client, make, admin):
    survivor = make.survivor()
    body = assert_problem(make.report(survivor, survivor["id"]), 422)
    assert body["errors"]
    assert_problem(as_admin(client, admin, survivor["id"], survivor["id"]), 422)
    assert read(client, survivor["id"], admin["headers"])["infection_reports"] == 0


def test_report_yourself_while_infected_is_422(client, make):
    # Reporting yourself (422) is checked before the infected reporter (403).
    target = make.survivor()
    make.infect(target)
    assert_problem(make.report(target, target["id"]), 422)


def test_report_by_infected_reporter_is_403(client, make, admin):
    infected = make.survivor()
    make.infect(infected)
    victim = make.survivor()
    assert_problem(make.report(infected, victim["id"]), 403)
    assert_problem(as_admin(client, admin, victim["id"], infected["id"]), 403)
    assert read(client, victim["id"], admin["headers"])["infection_reports"] == 0


def test_report_by_infected_reporter_with_body_is_403(client, make):
    # The infected reporter (403) is checked before a survivor account's body (422).
    infected = make.survivor()
    make.infect(infected)
    victim = make.survivor()
    response = client.post(
        reports_url(victim["id"]), json={"reporter_id": infected["id"]}, headers=infected["owner"]["headers"]
    )
    assert_problem(response, 403)


@pytest.mark.parametrize("own", [True, False])
def test_report_body_from_survivor_account_is_422(client, make, admin, own):
    target = make.survivor()
    reporter = make.survivor()
    other = make.survivor()
    reporter_id = reporter["id"] if own else other["id"]
    response = client.post(
        reports_url(target["id"]), json={"reporter_id": reporter_id}, headers=reporter["owner"]["headers"]
    )
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["reporter_id"]
    assert read(client, target["id"], admin["headers"])["infection_reports"] == 0


def test_report_body_with_unknown_field_is_422(client, make, admin):
    target = make.survivor()
    reporter = make.survivor()
    for headers, body in (
        (reporter["owner"]["headers"], {"reason": "cough"}),
        (admin["headers"], {"reporter_id": reporter["id"], "x": 1}),
    ):
        problem = assert_problem(client.post(reports_url(target["id"]), json=body, headers=headers), 422)
        assert "reporter_id" not in problem["errors"]
    assert read(client, target["id"], admin["headers"])["infection_reports"] == 0


def test_report_by_observer_is_403(client, make, observer, admin):
    target = make.survivor()
    reporter = make.survivor()
    assert_problem(client.post(reports_url(target["id"]), headers=observer["headers"]), 403)
    response = client.post(
        reports_url(target["id"]), json={"reporter_id": reporter["id"]}, headers=observer["headers"]
    )
    assert_problem(response, 403)
    assert read(client, target["id"], admin["headers"])["infection_reports"] == 0


def test_report_without_token_is_401(client, make):
    target = make.survivor()
    assert_problem(client.post(reports_url(target["id"])), 401)


@pytest.mark.parametrize(
    "body", [None, {}, {"reporter_id": None}, {"reporter_id": "abc"}, {"reporter_id": 5}]
)
def test_report_by_admin_without_valid_reporter_is_422(client, make, admin, body):
    target = make.survivor()
    kwargs = {} if body is None else {"json": body}
    problem = assert_problem(client.post(reports_url(target["id"]), headers=admin["headers"], **kwargs), 422)
    assert list(problem["errors"]) == ["reporter_id"]
    assert read(client, target["id"], admin["headers"])["infection_reports"] == 0


# --- counting --------------------------------------------------------------------------------


def test_report_first_time_is_201_with_body(client, make):
    target, reporter = make.survivor(), make.survivor()
    response = make.report(reporter, target["id"])
    assert response.status_code == 201
    assert response.get_json() == {
        "survivor_id": target["id"],
        "reporter_id": reporter["id"],
        "infection_reports": 1,
        "infected": False,
    }


def test_report_with_empty_json_object_from_survivor_is_201(client, make):
    target, reporter = make.survivor(), make.survivor()
    response = client.post(reports_url(target["id"]), json={}, headers=reporter["owner"]["headers"])
    assert response.status_code == 201
    assert response.get_json()["reporter_id"] == reporter["id"]


def test_report_same_reporter_again_is_200_and_counted_once(client, make, admin):
    target, reporter = make.survivor(), make.survivor()
    assert make.report(reporter, target["id"]).status_code == 201
    for _ in range(3):
        again = make.report(reporter, target["id"])
        assert again.status_code == 200
        assert again.get_json() == {
            "survivor_id": target["id"],
            "reporter_id": reporter["id"],
            "infection_reports": 1,
            "infected": False,
        }
    # The same reporter through an admin is the same pair: still counted once.
    assert as_admin(client, admin, target["id"], reporter["id"]).status_code == 200
    assert read(client, target["id"], admin["headers"])["infection_reports"] == 1


def test_report_by_admin_on_behalf_is_201(client, make, admin):
    target, reporter = make.survivor(), make.survivor()
    response = as_admin(client, admin, target["id"], reporter["id"])
    assert response.status_code == 201
    assert response.get_json() == {
        "survivor_id": target["id"],
        "reporter_id": reporter["id"],
        "infection_reports": 1,
        "infected": False,
    }
    assert make.report(reporter, target["id"]).status_code == 200


def test_report_admin_can_name_an_unlinked_reporter(client, make, admin):
    unlinked = client.post(
        "/api/v1/survivors", json=make.survivor_body(), headers=admin["headers"]
    ).get_json()
    target = make.survivor()
    response = as_admin(client, admin, target["id"], unlinked["id"])
    assert response.status_code == 201
    assert response.get_json()["reporter_id"] == unlinked["id"]


def test_report_infects_at_the_threshold_of_distinct_reporters(client, make, admin):
    target = make.survivor()
    reporters = [make.survivor() for _ in range(3)]
    for count, reporter in enumerate(reporters[:2], start=1):
        body = make.report(reporter, target["id"]).get_json()
        assert (body["infection_reports"], body["infected"]) == (count, False)
        make.report(reporter, target["id"])  # repeats never push towards the threshold
    assert read(client, target["id"], admin["headers"])["infected"] is False
    third = make.report(reporters[2], target["id"])
    assert third.status_code == 201
    assert third.get_json() == {
        "survivor_id": target["id"],
        "reporter_id": reporters[2]["id"],
        "infection_reports": 3,
        "infected": True,
    }
    stored = read(client, target["id"], admin["headers"])
    assert (stored["infection_reports"], stored["infected"]) == (3, True)


def test_report_after_infection_keeps_counting_and_stays_infected(client, make, admin):
    target = make.survivor()
    reporters = make.infect(target)
    fourth = make.report(make.survivor(), target["id"])
    assert fourth.status_code == 201
    assert fourth.get_json()["infection_reports"] == 4 and fourth.get_json()["infected"] is True
    repeat = make.report(reporters[0], target["id"])
    assert repeat.status_code == 200
    assert repeat.get_json()["infection_reports"] == 4 and repeat.get_json()["infected"] is True
    stored = read(client, target["id"], admin["headers"])
    assert (stored["infection_reports"], stored["infected"]) == (4, True)


def test_report_changes_the_survivor_etag(client, make, admin):
    target, reporter = make.survivor(), make.survivor()
    before = client.get(f"/api/v1/survivors/{target['id']}", headers=admin["headers"]).headers["ETag"]
    make.report(reporter, target["id"])
    response = client.get(
        f"/api/v1/survivors/{target['id']}", headers={**admin["headers"], "If-None-Match": before}
    )
    assert response.status_code == 200
    assert response.headers["ETag"] != before
    unchanged = response.headers["ETag"]
    make.report(reporter, target["id"])  # a repeat writes nothing
    cached = client.get(
        f"/api/v1/survivors/{target['id']}", headers={**admin["headers"], "If-None-Match": unchanged}
    )
    assert cached.status_code == 304


def test_report_updates_updated_at_not_created_at(client, make, admin):
    target, reporter = make.survivor(), make.survivor()
    make.report(reporter, target["id"])
    stored = read(client, target["id"], admin["headers"])
    assert stored["created_at"] == target["created_at"]
    assert stored["updated_at"] >= target["updated_at"]


def test_report_logs_the_infection_once(client, make, caplog):
    target = make.survivor()
    reporters = [make.survivor() for _ in range(4)]
    with caplog.at_level(logging.INFO, logger="resistance.audit"):
        for reporter in reporters:
            make.report(reporter, target["id"])
        make.report(reporters[2], target["id"])
    events = [r for r in caplog.records if getattr(r, "event", None) == "survivor.infected"]
    assert len(events) == 1
    assert events[0].survivor_id == target["id"]


def test_report_concurrent_reports_count_each_reporter_once(app, make, admin):
    target = make.survivor()
    reporters = [make.survivor() for _ in range(5)]
    barrier = threading.Barrier(len(reporters) * 2)
    statuses: list[int] = []
    lock = threading.Lock()

    def post(reporter: dict[str, Any]) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(reports_url(target["id"]), headers=reporter["owner"]["headers"])
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=(r,)) for r in reporters * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Counter(statuses) == {201: 5, 200: 5}
    stored = read(app.test_client(), target["id"], admin["headers"])
    assert (stored["infection_reports"], stored["infected"]) == (5, True)


# --- configuration ---------------------------------------------------------------------------


@pytest.fixture
def strict_app(make_app):
    """A second app on the same database with INFECTION_THRESHOLD=1 (app keeps the cleanup)."""
    return make_app(INFECTION_THRESHOLD="1")


def test_report_threshold_is_configurable(strict_app):
    assert strict_app.config["INFECTION_THRESHOLD"] == 1
    client = strict_app.test_client()
    make = Factory(strict_app, client)
    target, reporter, late = make.survivor(), make.survivor(), make.survivor()
    first = make.report(reporter, target["id"])
    assert first.status_code == 201
    assert first.get_json() == {
        "survivor_id": target["id"],
        "reporter_id": reporter["id"],
        "infection_reports": 1,
        "infected": True,
    }
    assert make.report(late, target["id"]).get_json()["infection_reports"] == 2
    # The infected target can no longer report anyone.
    assert_problem(make.report(target, reporter["id"]), 403)


def test_report_default_threshold_is_three(app):
    assert app.config["INFECTION_THRESHOLD"] == 3


# --- services (the rule without HTTP) --------------------------------------------------------


def test_report_service_counts_a_pair_once(app, make):
    from api.accounts.services import load_active
    from api.infections import services

    target, reporter = make.survivor(), make.survivor()
    with app.app_context():
        actor = load_active(reporter["owner"]["id"])
        first, counted = services.report(actor, uuid.UUID(target["id"]), {})
        again, counted_again = services.report(actor, uuid.UUID(target["id"]), {})
    assert (counted, counted_again) == (True, False)
    assert first == {**again, "infection_reports": 1}
    assert first["reporter_id"] == uuid.UUID(reporter["id"])
