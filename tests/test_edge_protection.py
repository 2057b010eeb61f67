"""What is refused before a view runs: bad conditional headers, oversized requests, error floods."""

from __future__ import annotations

import json

import httpx
import pytest

from security.headers import raw_problem
from tests.conftest import Factory, assert_problem
from tests.server import GunicornServer, server_environ

SURVIVORS = "/api/v1/survivors"


@pytest.mark.parametrize("header", ["If-None-Match", "If-Match"])
@pytest.mark.parametrize("value", ["caf\u00e9", "tab\there", '"' + "a" * 1100 + '"'])
def test_malformed_conditional_header_is_400(client, make: Factory, header, value):
    account = make.account()
    response = client.get(SURVIVORS, headers={**account["headers"], header: value})
    body = assert_problem(response, 400)
    assert header in body["detail"]


@pytest.mark.parametrize("value", ["*", '"x"', 'W/"x", "y"', "{}", "0" * 1024])
def test_printable_conditional_header_is_accepted(client, make: Factory, value):
    account = make.account()
    response = client.get(SURVIVORS + "?page=2", headers={**account["headers"], "If-None-Match": value})
    assert response.status_code == (304 if value == "*" else 200)


def test_bad_conditional_header_on_unknown_method_is_405(client, make: Factory):
    account = make.account()
    response = client.open(SURVIVORS, method="TRACE", headers={**account["headers"], "If-Match": "x" * 2000})
    assert_problem(response, 405)


def test_bad_conditional_header_without_token_is_still_401(client):
    assert_problem(client.get(SURVIVORS, headers={"If-None-Match": "{}"}), 401)


def test_invalid_query_is_422_even_with_if_none_match_star(client, make: Factory):
    account = make.account()
    response = client.get(SURVIVORS + "?page=true", headers={**account["headers"], "If-None-Match": "*"})
    assert_problem(response, 422)


def test_validation_errors_list_at_most_50_fields(client, make: Factory):
    account = make.account()
    body = make.survivor_body(**{f"unknown{n}": n for n in range(300)})
    response = client.post(SURVIVORS, json=body, headers=account["headers"])
    problem = assert_problem(response, 422)
    assert len(problem["errors"]) == 50


@pytest.mark.parametrize(("status", "slug"), [(414, "uri-too-long"), (431, "headers-too-large")])
def test_raw_problem_is_a_complete_problem_response(status, slug):
    raw = raw_problem(status, "too large")
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert lines[0].startswith(f"HTTP/1.1 {status} ")
    assert headers["Content-Type"] == "application/problem+json"
    assert int(headers["Content-Length"]) == len(body)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    problem = json.loads(body)
    assert problem["status"] == status and problem["type"].endswith("/" + slug)


@pytest.mark.gunicorn
def test_gunicorn_refusals_are_problem_json(app, db_url, tmp_path):
    with GunicornServer(server_environ(db_url), tmp_path / "gunicorn.log") as server:
        long_url = server.base_url + SURVIVORS + "?q=" + "a" * 5000
        big_header = {"X-Big": "a" * 9000}
        with httpx.Client(timeout=10) as http:
            too_long = http.get(long_url)
            too_big = http.get(server.base_url + "/healthz", headers=big_header)
    for response, status in ((too_long, 414), (too_big, 431)):
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.json()["status"] == status
        assert "aaaa" not in response.text
