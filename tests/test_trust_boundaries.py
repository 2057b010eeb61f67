"""Nothing a request controls reaches an emitted URL, a cache key or a cached response.

The kind (PortSwigger's web cache poisoning; docs/api.md, Conventions): `Host`, `X-Forwarded-*` and query
text the schema did not accept. Links and Location are relative references built by the router
from the validated query; ETags and cached bodies are keyed by the route and that query alone, so
an attacker's request first and another account's second get the same bytes, and no client can
grow the shared cache. Also: the bearer scheme is case-insensitive (RFC 9110 §11.1) and an
HTTP/1.1 request without Host is 400 (RFC 9112 §3.2).
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from werkzeug.test import EnvironBuilder

from api import caching
from api.schemas import encode_cursor
from security.jwt import bearer_token
from tests.conftest import Factory, assert_problem, random_uuid

SURVIVORS = "/api/v1/survivors"
FORGED = {
    "Host": "evil.example",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Prefix": "/evil",
    "X-Forwarded-Port": "6666",
    "X-Original-URL": "//evil.example/",
    "X-Rewrite-URL": "//evil.example/",
    "Forwarded": "host=evil.example;proto=http",
}
LINK = re.compile(r'<([^>]*)>; rel="(prev|next)"')


def links(response: Any) -> dict[str, str]:
    """rel -> target of a Link header."""
    return {rel: target for target, rel in LINK.findall(response.headers.get("Link", ""))}


def assert_relative_and_clean(response: Any) -> None:
    """Every Link target is a path on this API, with only the parameters we emit."""
    found = links(response)
    assert found, response.headers
    for target in found.values():
        parts = urlsplit(target)
        assert not parts.scheme and not parts.netloc and target.startswith("/api/v1/"), target
        assert "evil" not in target
        assert {name for name, _ in parse_qsl(parts.query)} <= {
            "page",
            "page_size",
            "after",
            "before",
            "infected",
            "status",
            "category",
        }


@pytest.fixture
def listed(make: Factory) -> dict[str, Any]:
    """Three survivors, two trades (one between the first two), and who can see them."""
    first, second, third = (make.survivor() for _ in range(3))
    make.trade(first, second)
    make.trade(first, third)
    make.infect(third, reporters=3)
    return {"admin": make.account("admin"), "trader": first["owner"], "observer": make.account("observer")}


PAGINATED = [
    ("observer", SURVIVORS + "?page_size=1"),
    ("observer", SURVIVORS + "?page_size=1&infected=false"),
    ("observer", "/api/v1/reports/non-infected-survivors?page_size=1"),
    ("trader", "/api/v1/trades?page_size=1"),
    ("admin", "/api/v1/accounts?page_size=1"),
    ("observer", "/api/v1/robots?page_size=1"),
]


@pytest.mark.parametrize(("who", "path"), PAGINATED)
def test_list_links_ignore_forged_host_and_forwarded_headers(client, listed, who, path):
    response = client.get(path + "&junk=" + "j" * 3000, headers={**listed[who]["headers"], **FORGED})
    assert response.status_code == 200, response.get_json()
    assert_relative_and_clean(response)
    # Following the link as given works: it is the API's own next page.
    follow = client.get(links(response)["next"], headers=listed[who]["headers"])
    assert follow.status_code == 200
    assert follow.get_json()["page"] == 2


def test_created_location_is_relative_whatever_the_host(client, make):
    owner = make.account("survivor")
    response = client.post(SURVIVORS, json=make.survivor_body(), headers={**owner["headers"], **FORGED})
    assert response.status_code == 201
    assert response.headers["Location"] == f"{SURVIVORS}/{response.get_json()['id']}"


def poison_then_read(client: Any, attacker: dict[str, Any], victim: dict[str, Any]) -> tuple[Any, Any]:
    """The attacker's forged request first, then another account's ordinary one."""
    path = SURVIVORS + "?page_size=1"
    poisoned = client.get(path + "&utm=" + "x" * 500, headers={**attacker["headers"], **FORGED})
    clean = client.get(path, headers=victim["headers"])
    return poisoned, clean


def test_forged_host_first_cannot_poison_the_shared_cache(client, make):
    make.survivor(), make.survivor()
    attacker, victim = make.account("observer"), make.account("survivor")
    poisoned, clean = poison_then_read(client, attacker, victim)
    assert_relative_and_clean(clean)
    # Byte for byte what anyone would have got first, headers included.
    assert clean.get_data() == poisoned.get_data()
    assert clean.headers["Link"] == poisoned.headers["Link"]
    assert clean.headers["ETag"] == poisoned.headers["ETag"]


def test_forged_host_first_cannot_poison_the_redis_cache(make_app, redis_url, make):
    make.survivor(), make.survivor()
    attacker, victim = make.account("observer"), make.account("survivor")
    shared = make_app(REDIS_URL=redis_url)
    poisoned, clean = poison_then_read(shared.test_client(), attacker, victim)
    again = (
        make_app(REDIS_URL=redis_url).test_client().get(SURVIVORS + "?page_size=1", headers=victim["headers"])
    )
    for response in (clean, again):  # another replica reads the same entry
        assert_relative_and_clean(response)
        assert response.get_data() == poisoned.get_data()
        assert response.headers["Link"] == poisoned.headers["Link"]


@pytest.mark.parametrize(
    ("spelled", "canonical"),
    [
        ("?page_size=5&junk=1", "?page_size=5"),
        ("?infected=false&page=1", "?page=1&infected=false"),
        ("?page=1&page_size=20", ""),
    ],
)
def test_one_representation_has_one_etag_however_the_query_is_spelled(client, observer, spelled, canonical):
    first = client.get(SURVIVORS + spelled, headers=observer["headers"])
    second = client.get(SURVIVORS + canonical, headers=observer["headers"])
    assert first.headers["ETag"] == second.headers["ETag"]
    revalidated = client.get(
        SURVIVORS + canonical, headers={**observer["headers"], "If-None-Match": first.headers["ETag"]}
    )
    assert revalidated.status_code == 304


def view_keys(redis_url: str) -> list[bytes]:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return list(client.scan_iter("resistance:view:*"))
    finally:
        client.close()


def test_junk_queries_and_cursors_leave_the_redis_cache_bounded(make_app, redis_url, make):
    for _ in range(3):
        make.survivor()
    reader = make.account("observer")
    client = make_app(REDIS_URL=redis_url).test_client()
    for index in range(1500):
        if index % 3 == 0:
            query = "junk=" + secrets.token_urlsafe(300)
        elif index % 3 == 1:
            query = "after=" + encode_cursor(datetime.now(UTC), uuid.uuid4())
        else:
            query = f"page={4 + index}"
        assert client.get(f"{SURVIVORS}?{query}", headers=reader["headers"]).status_code == 200
    # Junk folded into page 1's one entry; cursor pages and pages past CACHED_PAGES are not cached.
    assert len(view_keys(redis_url)) == 1


def test_cached_representations_are_a_bounded_set_in_memory_too(app, client, make):
    make.survivor()
    reader = make.account("observer")
    store = app.extensions["cache"][caching.cache]
    before = len(store._cache)  # noqa: SLF001 - the size of cachelib's SimpleCache is what we bound
    for index in range(600):
        client.get(f"{SURVIVORS}?junk={index}&page={1 + index % 50}", headers=reader["headers"])
    assert len(store._cache) - before <= caching.CACHED_PAGES  # noqa: SLF001


def test_new_version_overwrites_the_one_cached_body(make_app, redis_url):
    replica = make_app(REDIS_URL=redis_url)
    client = replica.test_client()
    make = Factory(replica, client)  # writes through the same Redis, as every replica does
    reader = make.account("observer")
    for _ in range(5):
        make.survivor()  # each write is a new data version
        response = client.get(SURVIVORS, headers=reader["headers"])
        assert response.status_code == 200
    assert len(view_keys(redis_url)) == 1
    assert response.get_json()["total"] == 5


# --- Host and Authorization as RFC 9112 / RFC 9110 say ----------------------------------------


def call_wsgi(app: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    status: list[str] = []
    body = b"".join(app(environ, lambda line, headers, exc_info=None: status.append(line)))
    return status[0], body


def test_http11_request_without_host_is_400(app):
    environ = EnvironBuilder(path="/healthz").get_environ()
    del environ["HTTP_HOST"]
    environ["SERVER_PROTOCOL"] = "HTTP/1.1"
    status, body = call_wsgi(app, environ)
    assert status.startswith("400") and b"Host" in body


def test_http10_request_without_host_and_empty_host_are_served(app):
    environ = EnvironBuilder(path="/healthz").get_environ()
    del environ["HTTP_HOST"]
    environ["SERVER_PROTOCOL"] = "HTTP/1.0"
    assert call_wsgi(app, environ)[0].startswith("200")
    environ = EnvironBuilder(path="/healthz", headers={"Host": ""}).get_environ()
    environ["SERVER_PROTOCOL"] = "HTTP/1.1"
    assert call_wsgi(app, environ)[0].startswith("200")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(client, make, scheme):
    account = make.account("survivor")
    headers = {"Authorization": f"{scheme} {account['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    refreshed = client.post(
        "/api/v1/auth/refresh", headers={"Authorization": f"{scheme}  {account['refresh_token']}"}
    )
    assert refreshed.status_code == 200, refreshed.get_json()


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer a b", None),
        ("Basic abc", None),
        ("Bearerabc", None),
        ("", None),
    ],
)
def test_bearer_token_reads_rfc_6750_credentials(app, header, token):
    with app.test_request_context(headers={"Authorization": header}):
        assert bearer_token() == token


def test_lower_case_scheme_is_limited_per_account(make_app, make):
    limited = make_app(RATELIMIT_DEFAULT="3/minute").test_client()
    one, two = make.account("observer"), make.account("observer")
    for account in (one, two):
        headers = {"Authorization": "bearer " + account["access_token"]}
        statuses = [limited.get("/api/v1/auth/me", headers=headers).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]  # each account its own bucket, not one per IP
    assert_problem(
        limited.get("/api/v1/auth/me", headers={"Authorization": "BEARER " + one["access_token"]}), 429
    )


def test_malformed_path_id_still_404_with_forged_host(client, observer):
    assert_problem(
        client.get(f"{SURVIVORS}/{random_uuid()}x", headers={**observer["headers"], **FORGED}), 404
    )


@pytest.mark.parametrize(
    "value", ["%D9%A3", "%EF%BC%91", "%201", "1_0", "+1", "1%20", "0x1", "", "99999999999"]
)
def test_page_numbers_are_ascii_digits_only(client, observer, value):
    """int() reads other scripts' digits, spaces and underscores: each a second spelling, so 422."""
    for name in ("page", "page_size"):
        response = client.get(f"{SURVIVORS}?{name}={value}", headers=observer["headers"])
        assert name in assert_problem(response, 422)["errors"]


def test_unknown_member_name_is_echoed_bounded(client, make):
    survivor = make.survivor()
    body = {"latitude": 1, "longitude": 1, "x" * 60_000: 1}
    response = client.put(
        f"{SURVIVORS}/{survivor['id']}/location", json=body, headers=survivor["owner"]["headers"]
    )
    problem = assert_problem(response, 422)
    assert all(len(path) <= 200 for path in problem["errors"])
    assert len(response.get_data()) < 2_000


def post_survivor_as(client: Any, make: Any, owner: dict[str, Any], data: Any = None, **headers: str) -> Any:
    """POST a survivor body (JSON text unless `data`) as `owner`, with extra headers."""
    body = json.dumps(make.survivor_body()) if data is None else data
    return client.post(SURVIVORS, data=body, headers={**owner["headers"], **headers})


@pytest.mark.parametrize("charset", ["utf-16", "latin1", "UTF-32"])
def test_json_declared_in_another_charset_is_415(client, make, charset):
    owner = make.account("survivor")
    response = post_survivor_as(
        client, make, owner, **{"Content-Type": f"application/json; charset={charset}"}
    )
    assert "UTF-8" in assert_problem(response, 415)["detail"]
    utf8 = post_survivor_as(client, make, owner, **{"Content-Type": "application/json; charset=UTF-8"})
    assert utf8.status_code == 201


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "x-gzip", "identity, gzip", "compress"])
def test_a_content_coded_body_is_415_and_creates_nothing(app, client, make, coding):
    """RFC 9110 §15.5.16: a coding the server does not decode is 415, never read as plain JSON
    (found from outside: a gzip label on a plain body was judged as if it were plain)."""
    owner = make.account("survivor")
    body = json.dumps(make.survivor_body()).encode()
    if "gzip" in coding:
        body = gzip.compress(body)
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    response = post_survivor_as(client, make, owner, body, **headers)
    assert "Content-Encoding" in assert_problem(response, 415)["detail"]
    assert client.get("/api/v1/auth/me", headers=owner["headers"]).get_json()["survivor_id"] is None


@pytest.mark.parametrize("coding", ["identity", "IDENTITY", " identity "])
def test_the_identity_coding_is_a_plain_body(client, make, coding):
    owner = make.account("survivor")
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    assert post_survivor_as(client, make, owner, **headers).status_code == 201


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (SURVIVORS, "page=2&page=3"),
        (SURVIVORS, "infected=true&infected=false"),
        (SURVIVORS, "page_size=5&page_size=5"),
        ("/api/v1/auth/sessions", "page=1&page=1"),
        ("/api/v1/reports/infected-survivors", "page=1&page=2"),
    ],
)
def test_a_one_valued_query_parameter_given_twice_is_422(client, make, path, query):
    """Found from outside: webargs kept the first value and dropped the rest without a word."""
    owner = make.account("observer")
    response = client.get(f"{path}?{query}", headers=owner["headers"])
    name = query.split("=", 1)[0]
    assert assert_problem(response, 422)["errors"] == {name: ["Give this parameter once."]}


def test_an_unknown_parameter_given_twice_is_still_ignored(client, make):
    owner = make.account("observer")
    assert client.get(f"{SURVIVORS}?junk=1&junk=2", headers=owner["headers"]).status_code == 200
