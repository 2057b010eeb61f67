"""CORS (OWASP API8:2023, security misconfiguration): off unless CORS_ORIGINS names origins."""

from __future__ import annotations

from tests.contract import operations, spec

ORIGIN = "https://app.resistance.example"
ME = "/api/v1/auth/me"


def test_cors_is_off_by_default(client, make):
    account = make.account()
    response = client.get(ME, headers={**account["headers"], "Origin": ORIGIN})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_configured_origin_may_call_the_api(make_app, make):
    app = make_app(CORS_ORIGINS=ORIGIN)
    account = make.account()
    response = app.test_client().get(ME, headers={**account["headers"], "Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]


def test_preflight_allows_the_bearer_header_for_a_configured_origin(make_app):
    app = make_app(CORS_ORIGINS=ORIGIN)
    response = app.test_client().options(
        ME,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


def test_other_origins_get_no_cors_headers(make_app, make):
    app = make_app(CORS_ORIGINS=ORIGIN)
    account = make.account()
    response = app.test_client().get(ME, headers={**account["headers"], "Origin": "https://evil.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_origin_gets_no_cors_headers(make_app, make):
    """Only an answer to an allowed Origin names one (flask-cors sent the first configured origin
    to every request, Origin or not)."""
    app = make_app(CORS_ORIGINS=f"{ORIGIN},https://other.resistance.example")
    account = make.account()
    assert "Access-Control-Allow-Origin" not in app.test_client().get(ME, headers=account["headers"]).headers


def _declared_headers() -> tuple[set[str], set[str]]:
    """(request headers, response headers) openapi.yaml declares anywhere, lower case."""
    document = spec()
    parameters = document["components"]["parameters"].values()
    requests = {p["name"].lower() for p in parameters if p["in"] == "header"}
    responses = {
        name.lower()
        for _path, _method, operation in operations(document)
        for response in operation["responses"].values()
        for name in response.get("headers", {})
    }
    for response in document["components"]["responses"].values():
        responses |= {name.lower() for name in response.get("headers", {})}
    return requests | {"authorization", "content-type"}, responses


def test_a_browser_may_send_and_read_every_header_the_document_declares(make_app):
    """A client generated from openapi.yaml and run in a browser sends Idempotency-Key and reads
    Idempotent-Replayed and WWW-Authenticate: the preflight and the exposed list allow all."""
    requests, responses = _declared_headers()
    app = make_app(CORS_ORIGINS=ORIGIN)
    client = app.test_client()
    preflight = client.options(
        "/api/v1/survivors",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": ", ".join(sorted(requests)),
        },
    )
    allowed = {name.strip().lower() for name in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert requests <= allowed
    exposed = client.get(ME, headers={"Origin": ORIGIN}).headers["Access-Control-Expose-Headers"]
    safelisted = {"cache-control", "content-type", "access-control-allow-origin"}
    assert responses - safelisted <= {name.strip().lower() for name in exposed.split(",")}
