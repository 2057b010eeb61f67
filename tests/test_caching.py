"""HTTP caching (contract §1): ETags from a stored version, 304s, fresh reports after every write."""

from __future__ import annotations

from typing import Any

import pytest

from api import caching
from api.reports import services as report_services
from tests.conftest import Factory, assert_problem

SURVIVORS = "/api/v1/survivors"
INFECTION = "/api/v1/reports/infection"
CACHED_GETS = [
    SURVIVORS,
    SURVIVORS + "?infected=false",
    INFECTION,
    "/api/v1/reports/resources",
    "/api/v1/reports/infected-survivors",
    "/api/v1/reports/non-infected-survivors",
]


@pytest.mark.parametrize("path", CACHED_GETS)
def test_cached_get_has_strong_etag_and_private_no_cache(client, observer, path):
    first = client.get(path, headers=observer["headers"])
    second = client.get(path, headers=observer["headers"])
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "private, no-cache"
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert second.headers["ETag"] == etag
    assert second.get_data() == first.get_data()


@pytest.mark.parametrize("path", CACHED_GETS)
def test_matching_if_none_match_is_304_without_body(client, observer, path):
    etag = client.get(path, headers=observer["headers"]).headers["ETag"]
    response = client.get(path, headers={**observer["headers"], "If-None-Match": etag})
    assert response.status_code == 304
    assert response.get_data() == b""
    assert response.headers["ETag"] == etag


def test_different_pages_have_different_etags(client, observer, make: Factory):
    make.survivor()
    make.survivor()
    one = client.get(SURVIVORS + "?page_size=1", headers=observer["headers"])
    two = client.get(SURVIVORS + "?page_size=1&page=2", headers=observer["headers"])
    assert one.headers["ETag"] != two.headers["ETag"]
    assert one.get_json()["items"] != two.get_json()["items"]


def test_every_survivor_write_changes_list_and_report_etags(client, observer, make: Factory):
    def etags() -> tuple[str, str]:
        return (
            client.get(SURVIVORS, headers=observer["headers"]).headers["ETag"],
            client.get(INFECTION, headers=observer["headers"]).headers["ETag"],
        )

    before = etags()
    target = make.survivor()
    after_create = etags()
    moved = client.put(
        f"{SURVIVORS}/{target['id']}/location",
        json={"latitude": 1.5, "longitude": 2.5},
        headers=target["owner"]["headers"],
    )
    assert moved.status_code == 200
    after_move = etags()
    make.infect(target, reporters=1)
    after_report = etags()
    assert len({before, after_create, after_move, after_report}) == 4
    listed = client.get(SURVIVORS, headers=observer["headers"]).get_json()["items"]
    assert {"latitude": 1.5, "longitude": 2.5} in [item["location"] for item in listed]


def test_report_is_fresh_on_another_worker_right_after_a_write(make_app, observer, make: Factory):
    # Two app instances, each with its own in-process cache: two gunicorn workers in miniature.
    reader, writer = make_app(), make_app()
    reading = reader.test_client()
    assert reading.get(INFECTION, headers=observer["headers"]).get_json()["total"] == 0
    target = make.survivor()
    writer.test_client().post(
        f"{SURVIVORS}/{target['id']}/infection-reports", headers=make.survivor()["owner"]["headers"]
    )
    body = reading.get(INFECTION, headers=observer["headers"]).get_json()
    assert body["total"] == 2


def test_cached_report_is_never_served_without_a_valid_token(client, observer, make: Factory):
    make.survivor()
    warm = client.get(INFECTION, headers=observer["headers"])
    assert warm.status_code == 200
    for headers in ({}, {"Authorization": "Bearer forged"}, {"If-None-Match": warm.headers["ETag"]}):
        response = client.get(INFECTION, headers=headers)
        assert_problem(response, 401)
        assert b"total" not in response.get_data()


def test_second_read_and_304_do_not_recompute_the_report(client, observer, monkeypatch):
    calls: list[int] = []
    original = report_services.infection_summary

    def counting() -> dict[str, Any]:
        calls.append(1)
        return original()

    monkeypatch.setattr(report_services, "infection_summary", counting)
    first = client.get(INFECTION, headers=observer["headers"])
    client.get(INFECTION, headers=observer["headers"])
    client.get(INFECTION, headers={**observer["headers"], "If-None-Match": first.headers["ETag"]})
    assert calls == [1]


def test_cached_list_keeps_its_link_header(client, observer, make: Factory):
    make.survivor()
    make.survivor()
    first = client.get(SURVIVORS + "?page_size=1", headers=observer["headers"])
    second = client.get(SURVIVORS + "?page_size=1", headers=observer["headers"])
    assert 'rel="next"' in first.headers["Link"]
    assert second.headers["Link"] == first.headers["Link"]


def test_errors_are_not_cached(client, observer, monkeypatch):
    stored: list[str] = []
    monkeypatch.setattr(caching.cache, "set", lambda key, value: stored.append(key))
    assert_problem(client.get(SURVIVORS + "?page=0", headers=observer["headers"]), 422)
    assert stored == []


def test_redis_cache_holds_json_not_pickle(make_app, redis_url, observer):
    import redis

    cached_app = make_app(REDIS_URL=redis_url)
    response = cached_app.test_client().get(INFECTION, headers=observer["headers"])
    assert response.status_code == 200
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.keys("resistance:view:*"))
        assert keys, "the report was not cached in Redis"
        raw = client.get(keys[0])
    finally:
        client.close()
    assert raw.startswith(b"{") and b'"body"' in raw


def test_missing_redis_cache_entry_reads_as_none():
    assert caching._JSONCacheSerializer().loads(None) is None
