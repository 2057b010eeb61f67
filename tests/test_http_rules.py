"""Cross-cutting HTTP rules (docs/api.md, Conventions): JSON bodies, problem+json errors, request
ids, headers."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, abort
from sqlalchemy import text
from werkzeug.exceptions import BadRequest, InternalServerError, UnprocessableEntity

from api.problems import (
    ProblemError,
    flatten_errors,
    http_problem,
    problem_body,
    problem_response,
    webargs_errors,
)
from security.permissions import public
from tests import conftest
from tests.conftest import PASSWORD, assert_problem

LIMIT = 64 * 1024
API_CSP = "default-src 'none'; frame-ancestors 'none'"
LEAK_MARKERS = (
    "Traceback",
    'File "',
    ".py",
    "/work/",
    "site-packages",
    "RuntimeError",
    "OperationalError",
    "ProgrammingError",
    "SELECT",
    "no_such_table",
    "sqlalchemy",
    "psycopg",
    "sqlite",
    "Werkzeug",
    "Flask",
    "Python/",
    "do-not-leak",
)


def _account_body(username: str, padding: int = 0) -> bytes:
    body = json.dumps({"username": username, "password": PASSWORD, "role": "observer"})
    return (body[:-1] + " " * padding + "}").encode()


def _padded_to(username: str, size: int) -> bytes:
    base = _account_body(username)
    return _account_body(username, size - len(base))


def _chunked(client, url: str, body: bytes, headers: dict[str, str]):
    """Send a body without Content-Length, as a server hands a chunked request to the app."""
    return client.post(
        url,
        input_stream=io.BytesIO(body),
        headers={**headers, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


# ---------------------------------------------------------------- JSON body rules (authenticated)


def test_post_text_plain_body_is_415(client, admin):
    response = client.post(
        "/api/v1/accounts", data="hello", content_type="text/plain", headers=admin["headers"]
    )
    assert_problem(response, 415, instance="/api/v1/accounts")


def test_post_form_body_is_415(client, admin):
    response = client.post("/api/v1/accounts", data={"username": "formuser"}, headers=admin["headers"])
    assert_problem(response, 415)


def test_post_body_without_content_type_is_415(client, admin):
    response = client.post("/api/v1/accounts", data=_account_body("noctype"), headers=admin["headers"])
    assert_problem(response, 415)


def test_put_text_plain_body_is_415(client, make):
    survivor = make.survivor()
    response = client.put(
        f"/api/v1/survivors/{survivor['id']}/location",
        data="latitude=1",
        content_type="text/plain",
        headers=survivor["owner"]["headers"],
    )
    assert_problem(response, 415)


def test_patch_form_body_is_415(client, admin, observer):
    response = client.patch(
        f"/api/v1/accounts/{observer['id']}", data={"disabled": "true"}, headers=admin["headers"]
    )
    assert_problem(response, 415)


def test_public_route_text_plain_body_is_415(client):
    assert_problem(client.post("/api/v1/auth/login", data="x", content_type="text/plain"), 415)


def test_post_malformed_json_is_400(client, admin):
    response = client.post(
        "/api/v1/accounts",
        data='{"username": "a",',
        content_type="application/json",
        headers=admin["headers"],
    )
    body = assert_problem(response, 400)
    assert body["detail"] == "The request body is not valid JSON."
    assert "errors" not in body


def test_post_json_with_charset_is_accepted(client, admin):
    response = client.post(
        "/api/v1/accounts",
        data=_account_body("charsetuser"),
        content_type="application/json; charset=utf-8",
        headers=admin["headers"],
    )
    assert response.status_code == 201, response.get_json()


def test_post_body_over_limit_with_content_length_is_413(client, admin):
    body = _padded_to("biguser", LIMIT + 1)
    response = client.post(
        "/api/v1/accounts", data=body, content_type="application/json", headers=admin["headers"]
    )
    assert_problem(response, 413, detail=f"The body must be at most {LIMIT} bytes.")


def test_post_body_of_exactly_limit_is_accepted(client, admin):
    body = _padded_to("limituser", LIMIT)
    assert len(body) == LIMIT
    response = client.post(
        "/api/v1/accounts", data=body, content_type="application/json", headers=admin["headers"]
    )
    assert response.status_code == 201, response.get_json()


def test_post_chunked_body_over_limit_is_413(client, admin):
    # Valid JSON padded past the limit: cutting it at 64 KiB would still parse, so only a 413 is right.
    response = _chunked(client, "/api/v1/accounts", _padded_to("chunkbig", LIMIT + 1), admin["headers"])
    assert_problem(response, 413)
    listed = client.get("/api/v1/accounts?page_size=100", headers=admin["headers"]).get_json()
    assert "chunkbig" not in {item["username"] for item in listed["items"]}


def test_post_chunked_huge_body_is_413(client, admin):
    response = _chunked(client, "/api/v1/accounts", b"[" + b"1," * LIMIT + b"1]", admin["headers"])
    assert_problem(response, 413)


def test_post_chunked_body_within_limit_is_read(client, admin):
    response = _chunked(client, "/api/v1/accounts", _padded_to("chunkok", LIMIT), admin["headers"])
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["username"] == "chunkok"


def test_post_chunked_text_plain_is_415(client, admin):
    response = client.post(
        "/api/v1/accounts",
        input_stream=io.BytesIO(b"hello"),
        headers={**admin["headers"], "Content-Type": "text/plain", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_problem(response, 415)


def test_post_chunked_on_unterminated_stream_reads_no_body(client, admin):
    # Without wsgi.input_terminated the server has not framed the body: nothing is read (Werkzeug's
    # safe fallback), so the request is judged as having an empty body.
    response = client.post(
        "/api/v1/accounts",
        input_stream=io.BytesIO(_account_body("unframed")),
        headers={**admin["headers"], "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    body = assert_problem(response, 422)
    assert "username" in body["errors"]


def test_get_with_body_ignores_body_rules(client, admin):
    response = client.get(
        "/api/v1/auth/me", data="not json", content_type="text/plain", headers=admin["headers"]
    )
    assert response.status_code == 200


def test_post_without_body_is_not_415(client, admin):
    response = client.post("/api/v1/auth/logout", headers=admin["headers"])
    assert response.status_code == 204


def test_unknown_fields_are_422_with_errors(client, admin):
    response = client.post(
        "/api/v1/accounts",
        json={"username": "extra1", "password": PASSWORD, "role": "observer", "is_admin": True},
        headers=admin["headers"],
    )
    body = assert_problem(response, 422)
    assert body["errors"] == {"is_admin": ["Unknown field."]}


def test_nested_invalid_field_is_422_with_dotted_path(client, make):
    owner = make.account("survivor")
    body = make.survivor_body(location={"latitude": 91, "longitude": 0})
    response = client.post("/api/v1/survivors", json=body, headers=owner["headers"])
    problem = assert_problem(response, 422)
    assert list(problem["errors"]) == ["location.latitude"]


def test_invalid_query_parameter_is_422(client, admin):
    response = client.get("/api/v1/accounts?page=0", headers=admin["headers"])
    body = assert_problem(response, 422)
    assert "page" in body["errors"]


# ---------------------------------------------------------------- 404 / 405 / 500 as problem+json


def test_get_unknown_path_is_404_problem(client):
    body = assert_problem(client.get("/api/v1/no-such-thing"), 404, instance="/api/v1/no-such-thing")
    assert body["type"] == "https://resistance.example/problems/not-found"


def test_get_outside_api_is_404_problem(client):
    assert_problem(client.get("/"), 404)


def test_get_malformed_uuid_in_path_is_404(client, admin):
    assert_problem(client.get("/api/v1/survivors/not-a-uuid", headers=admin["headers"]), 404)


def test_post_text_plain_to_unknown_path_is_404(client):
    # No route matched: the body rules do not apply, the path is simply unknown.
    assert_problem(client.post("/api/v1/nowhere", data="x" * 100, content_type="text/plain"), 404)


def test_post_oversized_body_to_unknown_path_is_404(client):
    response = client.post(
        "/api/v1/nowhere", data=b"{" + b" " * LIMIT + b"}", content_type="application/json"
    )
    assert_problem(response, 404)


def test_wrong_method_is_405_with_allow(client, admin):
    response = client.delete("/api/v1/accounts", headers=admin["headers"])
    assert_problem(response, 405, instance="/api/v1/accounts")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}


def test_wrong_method_with_text_body_is_405(client):
    response = client.put("/api/v1/auth/login", data="x", content_type="text/plain")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_wrong_method_on_public_route_is_405(client):
    response = client.post("/healthz", json={})
    assert_problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def failing_app(db_url: str) -> Iterator[Flask]:
    """A separate app (TESTING on) with routes that fail in the ways production code might."""
    from api import create_app
    from api.extensions import db

    application = create_app(conftest.test_environ(db_url), TESTING=True, PASSWORD_HASH_PROFILE="fast-tests")

    @public
    def boom() -> Any:
        raise RuntimeError("do-not-leak: /etc/secret at line 42")

    @public
    def bad_sql() -> Any:
        db.session.execute(text("SELECT secret_column FROM no_such_table"))
        return {}

    @public
    def late_failure() -> Any:
        return {"ok": True}

    @public
    def problem_with_header() -> Any:
        raise ProblemError(409, "Busy.", headers={"Retry-After": "5"})

    @public
    def server_abort() -> Any:
        abort(500, "do-not-leak: abort description")

    for name, view in {
        "boom": boom,
        "bad-sql": bad_sql,
        "late-failure": late_failure,
        "problem-with-header": problem_with_header,
        "server-abort": server_abort,
    }.items():
        application.add_url_rule(f"/api/v1/test/{name}", name, view, methods=["GET", "POST"])

    failed: list[bool] = []

    @application.after_request
    def _fail_once(response: Any) -> Any:
        from flask import request

        if request.path == "/api/v1/test/late-failure" and not failed:
            failed.append(True)
            raise RuntimeError("do-not-leak: after_request")
        return response

    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def _assert_no_leak(response: Any) -> None:
    text_body = response.get_data(as_text=True) + json.dumps(dict(response.headers))
    for marker in LEAK_MARKERS:
        assert marker not in text_body, marker


def test_failing_app_keeps_exceptions_from_propagating(failing_app):
    assert failing_app.testing is True
    assert failing_app.config["PROPAGATE_EXCEPTIONS"] is False


@pytest.mark.parametrize("route", ["boom", "bad-sql", "server-abort"])
def test_unexpected_error_is_500_problem_without_internals(failing_app, route):
    response = failing_app.test_client().get(f"/api/v1/test/{route}", headers={"X-Request-ID": "trace-500"})
    body = assert_problem(response, 500, request_id="trace-500")
    assert body == {
        "type": "https://resistance.example/problems/internal-error",
        "title": "Internal server error",
        "status": 500,
        "detail": "Internal server error",
        "instance": f"/api/v1/test/{route}",
        "request_id": "trace-500",
    }
    _assert_no_leak(response)


def test_failure_after_the_view_is_500_problem(failing_app):
    response = failing_app.test_client().get("/api/v1/test/late-failure")
    assert_problem(response, 500)
    _assert_no_leak(response)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_problem_error_headers_reach_the_response(failing_app):
    response = failing_app.test_client().get("/api/v1/test/problem-with-header")
    assert_problem(response, 409, detail="Busy.")
    assert response.headers["Retry-After"] == "5"


# ---------------------------------------------------------------- X-Request-ID


def test_valid_request_id_is_echoed_in_header_and_problem(client):
    rid = "Client-id_1.2-" + "a" * 100
    response = client.get("/api/v1/nope", headers={"X-Request-ID": rid})
    assert response.headers["X-Request-ID"] == rid
    assert_problem(response, 404, request_id=rid)


def test_valid_request_id_is_echoed_on_success(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc.DEF_123-x"})
    assert response.headers["X-Request-ID"] == "abc.DEF_123-x"


def test_max_length_request_id_is_echoed(client):
    rid = "r" * 128
    assert client.get("/healthz", headers={"X-Request-ID": rid}).headers["X-Request-ID"] == rid


@pytest.mark.parametrize(
    "bad",
    ["r" * 129, "has space", "semi;colon", "new\tline", "<script>", "ünïcode", "a/b", "x" * 1000],
)
def test_invalid_request_id_is_replaced(client, bad):
    response = client.get("/api/v1/nope", headers={"X-Request-ID": bad})
    fresh = response.headers["X-Request-ID"]
    assert fresh != bad
    assert len(fresh) == 32 and all(char in "0123456789abcdef" for char in fresh)
    assert_problem(response, 404, request_id=fresh)


def test_empty_request_id_is_replaced(client):
    response = client.get("/healthz", headers={"X-Request-ID": ""})
    assert len(response.headers["X-Request-ID"]) == 32


def test_missing_request_id_is_generated_fresh_each_time(client):
    first = client.get("/api/v1/nope")
    second = client.get("/api/v1/nope")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    assert uuid.UUID(hex=first.headers["X-Request-ID"])
    assert_problem(first, 404, request_id=first.headers["X-Request-ID"])


# ---------------------------------------------------------------- security headers on every status


def _security_headers_ok(response: Any, csp: str = API_CSP) -> None:
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff", response.status_code
    assert headers["Referrer-Policy"] == "no-referrer", response.status_code
    assert headers["Content-Security-Policy"] == csp, response.status_code
    assert headers["X-Frame-Options"] == "DENY", response.status_code
    assert headers["X-Request-ID"], response.status_code
    assert "Strict-Transport-Security" not in headers, response.status_code


def _responses_by_status(client, make, failing_app) -> dict[int, Any]:
    admin = make.account("admin")
    observer = make.account("observer")
    survivor = make.survivor()
    owner = survivor["owner"]
    etag = client.get(f"/api/v1/survivors/{survivor['id']}", headers=owner["headers"]).headers["ETag"]
    return {
        200: client.get("/healthz"),
        201: client.post("/api/v1/auth/register", json={"username": "headers201", "password": PASSWORD}),
        204: client.post("/api/v1/auth/logout", headers=observer["headers"]),
        304: client.get(
            f"/api/v1/survivors/{survivor['id']}", headers={**owner["headers"], "If-None-Match": etag}
        ),
        400: client.post(
            "/api/v1/accounts", data="{", content_type="application/json", headers=admin["headers"]
        ),
        401: client.get("/api/v1/auth/me"),
        403: client.post("/api/v1/accounts", json={}, headers=owner["headers"]),
        404: client.get("/api/v1/nope"),
        405: client.delete("/healthz"),
        413: client.post(
            "/api/v1/accounts",
            data=b"{" + b" " * LIMIT + b"}",
            content_type="application/json",
            headers=admin["headers"],
        ),
        415: client.post("/api/v1/accounts", data="x", content_type="text/plain", headers=admin["headers"]),
        422: client.post("/api/v1/accounts", json={"bogus": 1}, headers=admin["headers"]),
        500: failing_app.test_client().get("/api/v1/test/boom"),
    }


def test_security_headers_are_on_every_status(client, make, failing_app):
    responses = _responses_by_status(client, make, failing_app)
    for status, response in responses.items():
        assert response.status_code == status, (status, response.get_data(as_text=True))
        _security_headers_ok(response)
        if status >= 400:
            assert_problem(response, status)


def test_docs_page_has_its_own_self_only_csp(client):
    for url in ("/docs", "/docs/init.js", "/docs/missing.js"):
        csp = client.get(url, buffered=True).headers["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "http" not in csp and "unsafe" not in csp


def test_docs_lookalike_path_gets_api_csp(client):
    assert client.get("/docsx").headers["Content-Security-Policy"] == API_CSP


def test_hsts_is_sent_only_when_enabled(client, make_app):
    assert "Strict-Transport-Security" not in client.get("/healthz").headers
    application = make_app(HSTS_ENABLED="true")
    hsts_client = application.test_client()
    for response in (
        hsts_client.get("/healthz"),
        hsts_client.get("/api/v1/nope"),
        hsts_client.get("/api/v1/auth/me"),
    ):
        value = response.headers["Strict-Transport-Security"]
        assert value.startswith("max-age=") and int(value.split("=")[1].split(";")[0]) >= 31536000


def test_auth_responses_are_no_store(client, make):
    account = make.account("survivor")
    login = client.post("/api/v1/auth/login", json={"username": account["username"], "password": PASSWORD})
    responses = [
        login,
        client.post(
            "/api/v1/auth/login", json={"username": account["username"], "password": "wrong-" + PASSWORD}
        ),
        client.get("/api/v1/auth/me", headers=account["headers"]),
        client.get("/api/v1/auth/me"),
        client.post(
            "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {login.get_json()['refresh_token']}"}
        ),
        client.post("/api/v1/auth/register", json={"username": "nostore1", "password": PASSWORD}),
    ]
    for response in responses:
        assert response.headers["Cache-Control"] == "no-store", response.request.path


def test_inventory_responses_are_no_store(client, make):
    survivor = make.survivor()
    url = f"/api/v1/survivors/{survivor['id']}/inventory"
    assert client.get(url, headers=survivor["owner"]["headers"]).headers["Cache-Control"] == "no-store"
    assert client.get(url).headers["Cache-Control"] == "no-store"


def test_trades_responses_are_no_store(client, admin):
    assert client.get("/api/v1/trades", headers=admin["headers"]).headers["Cache-Control"] == "no-store"


def test_other_responses_are_not_no_store(client, make):
    survivor = make.survivor()
    headers = survivor["owner"]["headers"]
    assert "Cache-Control" not in client.get("/healthz").headers
    cached = client.get(f"/api/v1/survivors/{survivor['id']}", headers=headers).headers["Cache-Control"]
    assert cached == "private, no-cache"
    assert "no-store" not in client.get("/api/v1/reports/infection", headers=headers).headers.get(
        "Cache-Control", ""
    )


# ---------------------------------------------------------------- the problem helpers, one by one


def test_flatten_errors_maps_nested_dicts_to_dotted_paths():
    messages = {"location": {"latitude": ["Too big."], "longitude": ["Too small."]}, "name": ["Missing."]}
    assert flatten_errors(messages) == {
        "location.latitude": ["Too big."],
        "location.longitude": ["Too small."],
        "name": ["Missing."],
    }


def test_flatten_errors_folds_nested_schema_errors_into_their_field():
    messages = {"location": {"_schema": ["Invalid input type."], "latitude": ["Bad."]}, "_schema": ["Whole."]}
    assert flatten_errors(messages) == {
        "location": ["Invalid input type."],
        "location.latitude": ["Bad."],
        "_schema": ["Whole."],
    }


def test_flatten_errors_numbers_list_items():
    # marshmallow reports list items under integer keys; some producers send plain lists.
    assert flatten_errors({"items": {0: {"name": ["Bad."]}, 3: ["Not an int."]}}) == {
        "items.0.name": ["Bad."],
        "items.3": ["Not an int."],
    }
    assert flatten_errors({"tags": [{"x": ["One."]}, "Two."]}) == {"tags.0.x": ["One."], "tags.1": ["Two."]}
    assert flatten_errors([{"a": ["First."]}, {"b": ["Second."]}]) == {"0.a": ["First."], "1.b": ["Second."]}


def test_flatten_errors_accepts_bare_messages():
    assert flatten_errors("Broken.") == {"_schema": ["Broken."]}
    assert flatten_errors(["One.", "Two."]) == {"_schema": ["One.", "Two."]}
    assert flatten_errors({"age": "Not a number."}) == {"age": ["Not a number."]}
    assert flatten_errors({}) == {}


def test_webargs_errors_merges_locations():
    messages = {"json": {"name": ["Missing."], "_schema": ["Odd."]}, "query": {"page": ["Too small."]}}
    assert webargs_errors(messages) == {"name": ["Missing."], "_schema": ["Odd."], "page": ["Too small."]}
    assert webargs_errors({"json": {"a": ["x"]}, "form": {"a": ["y"]}}) == {"a": ["x", "y"]}


def test_problem_body_outside_a_request_has_no_instance():
    body = problem_body(404)
    assert body == {
        "type": "https://resistance.example/problems/not-found",
        "title": "Not found",
        "status": 404,
        "detail": "Not found",
    }


def test_problem_body_for_unlisted_status_uses_the_http_phrase():
    assert problem_body(410) == {
        "type": "https://resistance.example/problems/error",
        "title": "Gone",
        "status": 410,
        "detail": "Gone",
    }


def test_problem_response_adds_headers_and_extra_members(app):
    with app.test_request_context("/somewhere"):
        response = problem_response(503, "Down.", headers={"Retry-After": "3"}, extra={"checks": {"x": 1}})
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "3"
    assert json.loads(response.get_data()) == {
        "type": "https://resistance.example/problems/service-unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "Down.",
        "instance": "/somewhere",
        "request_id": None,
        "checks": {"x": 1},
    }


def test_problem_error_keeps_status_detail_errors_and_headers():
    error = ProblemError(422, "Bad.", errors={"a": ["x"]}, headers={"X-A": "1"})
    assert (error.status, error.detail, error.errors, error.headers) == (
        422,
        "Bad.",
        {"a": ["x"]},
        {"X-A": "1"},
    )
    bare = ProblemError(409, "Conflict.")
    assert (bare.errors, bare.headers, str(bare)) == (None, {}, "Conflict.")


def _handled(app, error: Exception) -> tuple[int, dict[str, Any], Any]:
    with app.test_request_context("/x"):
        response = http_problem(error)
    return response.status_code, json.loads(response.get_data()), response.headers


def test_http_problem_422_without_messages_keeps_description(app):
    status, body, _ = _handled(app, UnprocessableEntity("Those values do not fit together."))
    assert status == 422
    assert body["detail"] == "Those values do not fit together."
    assert "errors" not in body


def test_http_problem_400_without_messages_keeps_description(app):
    status, body, _ = _handled(app, BadRequest("Bad header."))
    assert (status, body["detail"]) == (400, "Bad header.")


def test_http_problem_5xx_hides_the_description(app):
    status, body, _ = _handled(app, InternalServerError("do-not-leak: connection string"))
    assert status == 500
    assert body["detail"] == "Internal server error"


def test_http_problem_422_flattens_messages_and_keeps_headers(app):
    error = UnprocessableEntity()
    error.data = {"messages": {"json": {"a": {"b": ["Bad."]}}}, "headers": {"X-Hint": "1"}}  # type: ignore[attr-defined]
    status, body, headers = _handled(app, error)
    assert status == 422
    assert body["errors"] == {"a.b": ["Bad."]}
    assert headers["X-Hint"] == "1"
    assert headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "status", "detail"),
    [
        ("GET", "/api/v1/nope", 404, "There is nothing at this path"),
        ("GET", "/api/v1/survivors/not-a-uuid", 404, "There is nothing at this path"),
        ("DELETE", "/api/v1/reports/infection", 405, "This path does not take this method"),
    ],
)
def test_routing_errors_say_it_in_our_words(client, method, path, status, detail):
    """Werkzeug's stock sentences ("If you entered the URL manually please check your spelling")
    are replaced; a detail an abort() chose itself is kept (see the tests above)."""
    response = client.open(path, method=method)
    body = assert_problem(response, status)
    assert body["detail"].startswith(detail)
    assert "manually" not in body["detail"]
