"""HTTP caching (docs/api.md, Caching): ETags from a stored version, 304s, fresh reports after every write."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
def test_a_body_rendered_across_a_write_is_never_kept_by_its_etag(
    request, make_app, observer, monkeypatch, shared
):
    """Found from outside: the version is read before the body is rendered, and a write may commit
    in between. The body's ETag (the older version) then never earns a 304 once the write is
    done: the client is sent the current body, never kept on a stale one."""
    environ = {"REDIS_URL": request.getfixturevalue("redis_url")} if shared else {}
    client = make_app(**environ).test_client()
    # The write goes through another replica: a request nested in one app's request would share
    # its app context (and g) with it.
    writer = make_app(**environ)
    make = Factory(writer, writer.test_client())
    owner = make.account("survivor")
    original = report_services.infection_summary
    writes: list[int] = []

    def rendered_across_a_write() -> dict[str, Any]:
        if not writes:
            made = make.client.post(SURVIVORS, json=make.survivor_body(), headers=owner["headers"])
            writes.append(made.status_code)
        return original()

    monkeypatch.setattr(report_services, "infection_summary", rendered_across_a_write)
    across = client.get(INFECTION, headers=observer["headers"])
    assert writes == [201]
    assert across.status_code == 200  # the body of either side of the write, by the database
    assert across.headers["ETag"] and across.headers["Cache-Control"] == caching.CACHE_CONTROL
    revalidated = client.get(
        INFECTION, headers={**observer["headers"], "If-None-Match": across.headers["ETag"]}
    )
    assert revalidated.status_code == 200 and revalidated.get_json()["total"] == 1
    assert revalidated.headers["ETag"] != across.headers["ETag"]
    again = client.get(
        INFECTION, headers={**observer["headers"], "If-None-Match": revalidated.headers["ETag"]}
    )
    assert again.status_code == 304


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


# --- data versions: write_transaction bumps what a write declares, last, at its commit ----------


@pytest.fixture
def statements(app: Any) -> Iterator[list[str]]:
    """Every statement the app's engine runs (BEGIN and COMMIT too, SQLite sends them as SQL)."""
    from sqlalchemy import event

    from api.extensions import db

    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        verb = statement.split(None, 1)[0].upper()
        seen.append(f"{verb} data_versions" if "data_versions" in statement else verb)

    def commit(_conn: Any) -> None:
        seen.append("COMMIT")

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(engine, "commit", commit)


def _versions() -> dict[str, int]:
    from api.robots.services import ROBOTS

    return {name: caching.current_version(name) for name in (caching.SURVIVORS, ROBOTS)}


def _touch(session: Any) -> None:
    """A write to some other row: the block's own work, which must come before the version row."""
    from sqlalchemy import update

    from api.survivors.models import TOTALS_ROW, SurvivorTotals

    session.execute(update(SurvivorTotals).where(SurvivorTotals.id == TOTALS_ROW).values(survivors=0))


def test_declared_change_bumps_its_version_once_last_before_commit(app, statements):
    from api.database import mark_changed, write_transaction

    with app.app_context():
        before = _versions()
        with write_transaction(changes=caching.SURVIVORS) as session:
            statements.clear()  # from inside: what ended the read before it is no part of this
            _touch(session)
            mark_changed(caching.SURVIVORS)  # declared twice, bumped once
        written = [s for s in statements if s != "SELECT"]
        assert written == ["UPDATE", "UPDATE data_versions", "COMMIT"]
        assert _versions() == {**before, caching.SURVIVORS: before[caching.SURVIVORS] + 1}


def test_each_marked_data_set_is_bumped_in_one_order(app, statements):
    from api.database import mark_changed, write_transaction
    from api.robots.services import ROBOTS

    with app.app_context():
        before = _versions()
        with write_transaction(changes=caching.SURVIVORS):
            statements.clear()
            mark_changed(ROBOTS)
        assert statements.count("UPDATE data_versions") == 2
        assert _versions() == {name: version + 1 for name, version in before.items()}


def test_rolled_back_transaction_bumps_nothing(app, statements):
    from api.database import mark_changed, write_transaction

    with app.app_context():
        before = _versions()
        with pytest.raises(RuntimeError, match="abort"):
            with write_transaction(changes=caching.SURVIVORS) as session:
                statements.clear()
                _touch(session)
                mark_changed(caching.SURVIVORS)
                raise RuntimeError("abort")
        assert "UPDATE data_versions" not in statements and "COMMIT" not in statements
        assert _versions() == before
        with write_transaction():  # what the failed block declared does not leak into the next
            pass
        assert _versions() == before


def test_undeclared_transaction_bumps_nothing(app, statements):
    from api.database import write_transaction

    with app.app_context():
        before = _versions()
        with write_transaction() as session:
            statements.clear()
            _touch(session)
        assert "UPDATE data_versions" not in statements and "COMMIT" in statements
        assert _versions() == before


def test_mark_changed_outside_a_write_transaction_is_an_error(app):
    from api.database import mark_changed

    with app.app_context(), pytest.raises(RuntimeError, match="inside write_transaction"):
        mark_changed(caching.SURVIVORS)
