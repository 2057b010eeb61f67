"""Secure by default: every route in the url map answers 401 without a valid access token.

The matrix is built from app.url_map, so a route added later is covered the day it appears:
it either answers 401 like the others or shows up as public and fails the public-list test.
"""

from __future__ import annotations

import re
import uuid

import pytest
from werkzeug.routing import Rule

from tests.conftest import SECRET, assert_problem

# The public operations (docs/api.md, Authentication): nothing else may answer without a token.
PUBLIC_RULES = {
    ("/healthz", "GET"),
    ("/healthz", "HEAD"),
    ("/readyz", "GET"),
    ("/readyz", "HEAD"),
    ("/docs", "GET"),
    ("/docs", "HEAD"),
    ("/docs/<path:filename>", "GET"),
    ("/docs/<path:filename>", "HEAD"),
    ("/api/v1/openapi.json", "GET"),
    ("/api/v1/openapi.json", "HEAD"),
    ("/api/v1/auth/register", "POST"),
    ("/api/v1/auth/login", "POST"),
}
# Not behind the JWT gate either, but behind its own token (docs/api.md, GET /metrics):
# METRICS_TOKEN as a bearer token, 401 without it, 404 while METRICS_TOKEN is unset. Proven
# below, not left open.
METRICS_RULES = {("/metrics", "GET"), ("/metrics", "HEAD")}
METRICS_TOKEN = "metrics-" + "k9Q2vX7pL4" * 4

_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _url(rule: Rule) -> str:
    """A concrete URL for a rule: UUIDs for <uuid:...>, a plain segment for anything else."""

    def fill(match: re.Match[str]) -> str:
        converter = match.group(1) or "default"
        return str(uuid.uuid4()) if converter == "uuid" else "anything"

    return _CONVERTER.sub(fill, rule.rule)


def _routes(app) -> list[tuple[str, str]]:
    """Every (rule, method) the app serves; OPTIONS is Flask's automatic, body-less answer."""
    return sorted(
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method != "OPTIONS"
    )


def _protected(app) -> list[tuple[str, str]]:
    return [route for route in _routes(app) if route not in PUBLIC_RULES | METRICS_RULES]


def _rule(app, path: str) -> Rule:
    return next(rule for rule in app.url_map.iter_rules() if rule.rule == path)


def _forged_token() -> str:
    """A well-formed HS256 token signed with the wrong key: it must be refused like garbage."""
    import jwt

    claims = {
        "sub": str(uuid.uuid4()),
        "type": "access",
        "iss": "resistance-api",
        "aud": "resistance-api-clients",
    }
    return jwt.encode(claims, SECRET[::-1], algorithm="HS256")


BAD_AUTHORIZATION = {
    "missing": None,
    "garbage": "Bearer garbage",
    "not-bearer": "Basic YWRtaW46cGFzc3dvcmQ=",
    "empty-bearer": "Bearer ",
    "forged": "forged",
}


def _send(client, method: str, url: str, authorization: str | None):
    headers = {}
    if authorization == "forged":
        authorization = f"Bearer {_forged_token()}"
    if authorization is not None:
        headers["Authorization"] = authorization
    return client.open(url, method=method, headers=headers)


def test_public_routes_are_exactly_the_contract_list(app):
    served_public = set(_routes(app)) - set(_protected(app))
    assert served_public == PUBLIC_RULES | METRICS_RULES
    for path, method in PUBLIC_RULES | METRICS_RULES:
        assert method in (_rule(app, path).methods or set()), (path, method)


def test_url_map_has_protected_routes_to_check(app):
    # Guards the matrix below against silently iterating over nothing.
    protected = _protected(app)
    assert ("/api/v1/auth/me", "GET") in protected
    assert ("/api/v1/accounts/<uuid:account_id>", "PATCH") in protected
    assert len(protected) >= 15


@pytest.mark.parametrize("case", sorted(BAD_AUTHORIZATION))
def test_every_protected_route_without_valid_token_is_401(app, client, case):
    for path, method in _protected(app):
        url = _url(_rule(app, path))
        response = _send(client, method, url, BAD_AUTHORIZATION[case])
        where = f"{method} {url} ({case})"
        assert response.status_code == 401, where
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), where
        assert response.mimetype == "application/problem+json", where
        if method != "HEAD":
            assert_problem(response, 401, instance=url)


@pytest.mark.parametrize("case", sorted(BAD_AUTHORIZATION))
def test_metrics_without_the_metrics_token_is_401(make_app, case):
    client = make_app(METRICS_TOKEN=METRICS_TOKEN).test_client()
    for path, method in sorted(METRICS_RULES):
        response = _send(client, method, path, BAD_AUTHORIZATION[case])
        assert response.status_code == 401, (method, case)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, case)
        if method != "HEAD":
            assert_problem(response, 401, instance=path)
            assert b"http_requests_total" not in response.data


def test_metrics_with_a_valid_jwt_instead_of_the_metrics_token_is_401(make_app, admin):
    client = make_app(METRICS_TOKEN=METRICS_TOKEN).test_client()
    for path, method in sorted(METRICS_RULES):
        response = _send(client, method, path, f"Bearer {admin['access_token']}")
        assert response.status_code == 401, method
    good = _send(client, "GET", "/metrics", f"Bearer {METRICS_TOKEN}")
    assert good.status_code == 200 and b"http_requests_total" in good.data


def test_metrics_is_404_for_everyone_while_metrics_token_is_unset(client, admin):
    assert client.application.config["METRICS_TOKEN"] is None
    for authorization in (None, f"Bearer {admin['access_token']}", f"Bearer {METRICS_TOKEN}"):
        for path, method in sorted(METRICS_RULES):
            response = _send(client, method, path, authorization)
            assert response.status_code == 404, (method, authorization)
            assert "WWW-Authenticate" not in response.headers


def test_public_routes_answer_without_token(app, client):
    for path, method in sorted(PUBLIC_RULES):
        if method != "GET":
            continue
        url = "/docs/init.js" if "<" in path else path
        response = client.open(url, method=method, buffered=True)
        assert response.status_code == 200, (method, url, response.status_code)
        assert "WWW-Authenticate" not in response.headers


def test_login_and_register_without_token_are_not_401(client):
    for path in ("/api/v1/auth/register", "/api/v1/auth/login"):
        response = client.post(path, json={})
        assert_problem(response, 422)


def test_new_route_without_marker_is_protected_by_default(make_app):
    application = make_app()
    application.add_url_rule("/api/v1/brand-new", "brand_new", lambda: {"secret": "data"})
    response = application.test_client().get("/api/v1/brand-new")
    assert_problem(response, 401)
    assert b"secret" not in response.data


def test_token_in_query_string_is_401(client, admin):
    response = client.get(f"/api/v1/auth/me?access_token={admin['access_token']}")
    assert_problem(response, 401)


def test_refresh_token_as_access_token_is_401(client, admin):
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {admin['refresh_token']}"})
    assert_problem(response, 401)


def test_options_reveals_only_allowed_methods(client):
    response = client.options("/api/v1/accounts")
    assert response.status_code == 200
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert response.data == b""


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("oversized", {"data": b"{" + b" " * (100 * 1024) + b"}", "content_type": "application/json"}),
        ("text-plain", {"data": "hello", "content_type": "text/plain"}),
        ("form", {"data": {"username": "x"}}),
        ("malformed-json", {"data": "{oops", "content_type": "application/json"}),
        ("invalid-fields", {"json": {"username": "", "password": 1, "role": "god", "extra": True}}),
    ],
)
def test_unauthenticated_body_is_401_before_body_rules(client, name, kwargs):
    for url in ("/api/v1/accounts", "/api/v1/survivors", "/api/v1/auth/logout"):
        assert_problem(client.post(url, **kwargs), 401)


def test_unauthenticated_oversized_chunked_body_is_401(client):
    import io

    response = client.post(
        "/api/v1/accounts",
        input_stream=io.BytesIO(b"x" * (100 * 1024)),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_problem(response, 401)
