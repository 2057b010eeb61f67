"""CORS (OWASP API8:2023, security misconfiguration): off unless CORS_ORIGINS names origins."""

from __future__ import annotations

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
