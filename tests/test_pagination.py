"""Paging: direct jumps from either end, keyset cursors in the Link header, and their validation."""

from __future__ import annotations

import base64
import re
import struct
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from api.schemas import decode_cursor, encode_cursor
from tests.conftest import Factory, assert_problem, cursors_of

SURVIVORS = "/api/v1/survivors"
REPORTS = "/api/v1/reports"
LISTS = [
    (SURVIVORS, None),
    (f"{SURVIVORS}?infected=false", False),
    (f"{SURVIVORS}?infected=true", True),
    (f"{REPORTS}/non-infected-survivors", False),
    (f"{REPORTS}/infected-survivors", True),
]
LINK = re.compile(r'\s*<([^>]+)>;\s*rel="(\w+)"\s*')


def links_of(response: Any) -> dict[str, str]:
    """{rel: path?query} of a response's Link header."""
    links = {}
    for part in filter(None, (response.headers.get("Link") or "").split(",")):
        url, rel = LINK.fullmatch(part).groups()  # type: ignore[union-attr]
        parts = urlsplit(url)
        links[rel] = f"{parts.path}?{parts.query}"
    return links


def ids(response: Any) -> list[str]:
    return [item["id"] for item in response.get_json()["items"]]


def with_query(path: str, query: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{query}"


@pytest.fixture
def population(make: Factory) -> dict[str, Any]:
    """Eleven survivors, two of them (the 3rd and 9th) infected: {"order": ids, "infected": ids}."""
    survivors = [make.survivor(name=f"S{index}") for index in range(11)]
    infected = [survivors[2], survivors[8]]
    for target in infected:
        # Reporters from the population itself: no survivor is added after the eleven.
        reporters = [s for s in survivors if s not in infected][:3]
        for reporter in reporters:
            assert make.report(reporter, target["id"]).status_code == 201
    return {"order": [s["id"] for s in survivors], "infected": {s["id"] for s in infected}}


def expected(population: dict[str, Any], infected: bool | None) -> list[str]:
    order = population["order"]
    if infected is None:
        return order
    return [i for i in order if (i in population["infected"]) == infected]


# --- direct jumps ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "infected"), LISTS)
@pytest.mark.parametrize("page_size", [1, 2, 3, 4, 20])
def test_every_page_by_number_is_its_slice_of_the_order(
    client, observer, population, path, infected, page_size
):
    # Pages in the back half are walked from the end of the index: they must be the same slices.
    want = expected(population, infected)
    last = -(-len(want) // page_size)
    for page in range(1, last + 2):
        response = client.get(
            with_query(path, f"page={page}&page_size={page_size}"), headers=observer["headers"]
        )
        body = response.get_json()
        assert (body["page"], body["page_size"], body["total"]) == (page, page_size, len(want))
        assert ids(response) == want[(page - 1) * page_size : page * page_size], (page, page_size)


# --- following the links ---------------------------------------------------------------------


@pytest.mark.parametrize(("path", "infected"), LISTS)
def test_following_next_then_prev_links_walks_every_page(client, observer, population, path, infected):
    want = expected(population, infected)
    headers = observer["headers"]
    response = client.get(with_query(path, "page_size=2"), headers=headers)
    pages = [ids(response)]
    while "next" in links_of(response):
        link = links_of(response)["next"]
        assert dict(parse_qsl(urlsplit(link).query))["after"]  # a keyset step, not an offset
        response = client.get(link, headers=headers)
        assert response.get_json()["page"] == len(pages) + 1
        pages.append(ids(response))
    assert [i for page in pages for i in page] == want
    assert [len(page) for page in pages[:-1]] == [2] * (len(pages) - 1)
    backwards = [ids(response)]
    while "prev" in links_of(response):
        response = client.get(links_of(response)["prev"], headers=headers)
        backwards.insert(0, ids(response))
    assert backwards == pages


def test_cursor_pages_do_not_skip_when_an_earlier_item_leaves_the_list(client, make, observer):
    survivors = [make.survivor(name=f"S{index}") for index in range(6)]
    path = f"{REPORTS}/non-infected-survivors?page_size=2"
    first = client.get(path, headers=observer["headers"])
    assert ids(first) == [s["id"] for s in survivors[:2]]
    # The first survivor is infected after page 1 was read: an offset would now skip survivors[2].
    for reporter in survivors[3:6]:
        assert make.report(reporter, survivors[0]["id"]).status_code == 201
    second = client.get(links_of(first)["next"], headers=observer["headers"])
    assert ids(second) == [s["id"] for s in survivors[2:4]]
    assert second.get_json()["total"] == 5


def test_before_cursor_gives_the_items_just_before_in_order(client, observer, population):
    order = population["order"]
    response = client.get(f"{SURVIVORS}?page_size=3&page=2", headers=observer["headers"])
    assert ids(response) == order[3:6]
    previous = client.get(links_of(response)["prev"], headers=observer["headers"])
    assert ids(previous) == order[0:3]
    # The next link's cursor names order[5]: the page ending right before it is order[2:5].
    cursor = cursor_in(response, "next", "after")
    before = client.get(f"{SURVIVORS}?page_size=3&page=2&before={cursor}", headers=observer["headers"])
    assert ids(before) == order[2:5]


def test_cursor_page_links_carry_their_own_cursors(client, observer, population):
    order = population["order"]
    first = client.get(f"{SURVIVORS}?page_size=4", headers=observer["headers"])
    second = client.get(links_of(first)["next"], headers=observer["headers"])
    links = {rel: dict(parse_qsl(urlsplit(url).query)) for rel, url in links_of(second).items()}
    assert cursors_of(links) == {"next": ("after", order[7])}  # prev goes to page 1: no cursor
    assert links == {
        "prev": {"page": "1", "page_size": "4"},
        "next": {"page": "3", "page_size": "4"},
    }


def test_cursor_past_the_end_is_an_empty_page(client, observer, population):
    last = encode_cursor(datetime(9999, 1, 1, tzinfo=UTC), uuid.UUID(int=0))
    response = client.get(f"{SURVIVORS}?page=2&after={last}", headers=observer["headers"])
    assert response.get_json() == {"items": [], "page": 2, "page_size": 20, "total": 11}
    assert links_of(response) == {"prev": f"{SURVIVORS}?page=1&page_size=20"}


def test_trades_and_accounts_follow_cursor_links_too(client, make, admin):
    proposer, partner = make.survivor(), make.survivor()
    trades = [make.trade(proposer, partner)["id"] for _ in range(5)]
    for path, want in (("/api/v1/trades", trades), ("/api/v1/accounts", None)):
        everything = client.get(f"{path}?page_size=100", headers=admin["headers"]).get_json()["items"]
        want = want or [item["id"] for item in everything]
        response = client.get(f"{path}?page_size=2", headers=admin["headers"])
        seen = ids(response)
        while "next" in links_of(response):
            assert "after=" in links_of(response)["next"]
            response = client.get(links_of(response)["next"], headers=admin["headers"])
            seen += ids(response)
        assert seen == want
        start = (len(want) - 1) // 2 * 2  # where the last page begins
        back = client.get(links_of(response)["prev"], headers=admin["headers"])
        assert ids(back) == want[start - 2 : start]


# --- validation ------------------------------------------------------------------------------


def cursor_bytes(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MALFORMED = [
    "x",
    "not-a-cursor",
    "A" * 31,
    "A" * 33,
    "A" * 31 + "=",
    "A" * 31 + "+",
    "A" * 31 + "%C3%A9",
]


@pytest.mark.parametrize("name", ["after", "before"])
@pytest.mark.parametrize("value", MALFORMED)
@pytest.mark.parametrize(
    "path", [SURVIVORS, f"{REPORTS}/infected-survivors", "/api/v1/trades", "/api/v1/accounts"]
)
def test_malformed_cursor_is_422(client, admin, name, value, path):
    problem = assert_problem(client.get(f"{path}?{name}={value}", headers=admin["headers"]), 422)
    assert list(problem["errors"]) == [name]


def cursor_in(response: Any, rel: str, name: str) -> str:
    """The cursor parameter `name` of a response's `rel` link."""
    return dict(parse_qsl(urlsplit(links_of(response)[rel]).query))[name]


def test_after_and_before_together_give_the_items_between(client, observer, population):
    order, headers = population["order"], observer["headers"]
    low = cursor_in(client.get(f"{SURVIVORS}?page_size=2", headers=headers), "next", "after")  # order[1]
    high = cursor_in(client.get(f"{SURVIVORS}?page_size=9", headers=headers), "next", "after")  # order[8]
    between = client.get(f"{SURVIVORS}?after={low}&before={high}", headers=headers)
    assert ids(between) == order[2:8]
    capped = client.get(f"{SURVIVORS}?page_size=3&after={low}&before={high}", headers=headers)
    assert ids(capped) == order[2:5]
    assert ids(client.get(f"{SURVIVORS}?after={high}&before={low}", headers=headers)) == []


def test_cursor_round_trips_to_the_microsecond():
    when = datetime(2026, 11, 26, 3, 4, 5, 123456, tzinfo=UTC)
    key = uuid.uuid4()
    cursor = encode_cursor(when, key)
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", cursor)
    position = decode_cursor(cursor)
    assert (position.created_at, position.id) == (when, key)
    early = decode_cursor(encode_cursor(datetime(1, 1, 1, tzinfo=UTC), key))
    assert early.created_at == datetime(1, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("micros", "when"),
    [
        (2**63 - 1, datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        (2**62, datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        (-(2**63), datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_cursor_beyond_the_calendar_stands_for_its_first_or_last_instant(micros, when):
    # Every value the documented pattern allows is a position: none is refused.
    position = decode_cursor(cursor_bytes(struct.pack(">q16s", micros, bytes(16))))
    assert position.created_at == when


@pytest.mark.parametrize("extreme", ["A" * 32, "_" * 32, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "-" * 32])
def test_any_cursor_of_the_documented_shape_is_answered(client, observer, population, extreme):
    for name in ("after", "before"):
        response = client.get(f"{SURVIVORS}?{name}={extreme}", headers=observer["headers"])
        assert response.status_code == 200, response.get_json()
