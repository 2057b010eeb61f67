"""/docs (Swagger UI, offline) and /api/v1/openapi.json (docs/api.md, Operations), and the apispec plugin."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from api.docs.routes import SWAGGER_UI
from api.openapi import (
    BEARER_SCHEME,
    REFRESH_SCHEME,
    ProblemResponsesPlugin,
    app_api,
    register_security_scheme,
)
from tests import contract
from tests.conftest import assert_problem

PUBLIC_OPERATIONS = {
    ("/api/v1/auth/register", "post"),
    ("/api/v1/auth/login", "post"),
    ("/healthz", "get"),
    ("/readyz", "get"),
}
# Public, yet login answers 401 for bad credentials (and documents it).
PUBLIC_WITH_401 = {("/api/v1/auth/login", "post")}


class _Assets(HTMLParser):
    """Collect every URL the page loads, and any inline script or style."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._tag: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(values[name] or "")
        if any(name.startswith("on") for name in values) or "style" in values:
            self.inline.append(f"{tag} attribute")
        self._tag = tag

    def handle_data(self, data: str) -> None:
        if self._tag in {"script", "style"} and data.strip():
            self.inline.append(data)

    def handle_endtag(self, tag: str) -> None:  # noqa: ARG002
        self._tag = None


def _get(client, url: str):
    return client.get(url, buffered=True)


def _page_assets(client) -> _Assets:
    parser = _Assets()
    parser.feed(_get(client, "/docs").get_data(as_text=True))
    return parser


def test_docs_page_is_html_loading_only_its_own_files(client):
    response = _get(client, "/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assets = _page_assets(client)
    assert assets.urls, "the page loads nothing"
    assert all(url.startswith("/docs/") for url in assets.urls), assets.urls
    assert not any("//" in url for url in assets.urls)
    assert assets.inline == []


def test_docs_page_assets_are_all_served(client):
    expected_types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for url in _page_assets(client).urls:
        response = _get(client, url)
        assert response.status_code == 200, url
        assert response.mimetype == expected_types[Path(url).suffix], url
        assert response.data


@pytest.mark.parametrize("name", ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"])
def test_docs_vendor_file_is_served_from_the_bundle(client, name):
    response = _get(client, f"/docs/{name}")
    assert response.status_code == 200
    assert response.data == (SWAGGER_UI / name).read_bytes()
    assert "max-age=3600" in response.headers["Cache-Control"]


def test_docs_initializer_points_at_our_spec(client):
    script = _get(client, "/docs/init.js").get_data(as_text=True)
    assert 'url: "/api/v1/openapi.json"' in script
    assert "http" not in script


@pytest.mark.parametrize(
    "url",
    [
        "/docs/missing.js",
        "/docs/swagger-ui.js",  # in the bundle, but not a file this page uses
        "/docs/index.j2",
        "/docs/%2e%2e/routes.py",
        "/docs/..%2froutes.py",
        "/docs/../routes.py",
        "/docs/static/../../__init__.py",
    ],
)
def test_docs_unknown_or_outside_asset_is_404(client, url):
    response = _get(client, url)
    assert_problem(response, 404)
    assert "import" not in response.get_data(as_text=True)


def test_openapi_json_is_openapi3_with_full_paths(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Resistance API"
    assert spec["paths"]
    probes = {"/healthz", "/readyz", "/metrics"}  # documented too (API9), outside /api/v1 on purpose
    assert all(path.startswith("/api/v1/") or path in probes for path in spec["paths"])
    assert probes <= set(spec["paths"])
    for path in ("/api/v1/survivors", "/api/v1/auth/login", "/api/v1/survivors/{survivor_id}"):
        assert path in spec["paths"]


def test_openapi_json_declares_bearer_jwt_scheme(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    scheme = spec["components"]["securitySchemes"][BEARER_SCHEME]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert spec["security"] == [{BEARER_SCHEME: []}]


def test_openapi_every_operation_documents_401_unless_public(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    public = set()
    for path, method, operation in contract.operations(spec):
        if operation.get("security") == []:
            public.add((path, method))
            assert ("401" in operation["responses"]) == ((path, method) in PUBLIC_WITH_401), (path, method)
        else:
            assert "401" in operation["responses"], (path, method)
            assert "403" in operation["responses"], (path, method)
    assert public == PUBLIC_OPERATIONS


def test_openapi_every_operation_documents_problem_responses(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for name in ("BadRequest", "NotFound", "ValidationError", "InternalError", "PayloadTooLarge"):
        content = spec["components"]["responses"][name]["content"]
        assert list(content) == ["application/problem+json"]
    assert "Problem" in spec["components"]["schemas"]
    for path, method, operation in contract.operations(spec):
        responses = operation["responses"]
        if path == "/metrics":  # its own token: 401 without it, 404 while METRICS_TOKEN is unset
            assert {"401", "404", "500"} <= set(responses) and "422" not in responses
            continue
        if not path.startswith("/api/v1/"):  # the probes take no input: a malformed request, 500
            assert {"400", "500"} <= set(responses) and not {"404", "422", "429"} & set(responses), path
            continue
        assert {"400", "404", "422", "429", "500", "503"} <= set(responses), (path, method)
        if method in {"post", "put", "patch", "delete"}:  # a body is judged whatever the method
            assert {"413", "415"} <= set(responses), (path, method)
        else:
            assert "415" not in responses, (path, method)


def _plugin_spec() -> APISpec:
    # As in the app: flask-smorest's marshmallow plugin first, so the Problem schema resolves.
    return APISpec("t", "1", "3.0.3", plugins=[MarshmallowPlugin(), ProblemResponsesPlugin()])


def test_plugin_adds_problem_responses_by_method_and_security():
    spec = _plugin_spec()
    spec.path(
        path="/api/v1/things",
        operations={
            "get": {"responses": {"200": {"description": "ok"}}},
            "post": {"security": [], "responses": {"400": {"description": "ours"}}},
            "put": {},
        },
    )
    operations = spec.to_dict()["paths"]["/api/v1/things"]
    # Server limits, a malformed request and failures can answer any operation.
    everywhere = {"400", "414", "417", "431", "500"}
    assert (
        set(operations["get"]["responses"]) == {"200", "401", "403", "404", "422", "429", "503"} | everywhere
    )
    assert operations["get"]["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}
    # A POST takes an Idempotency-Key: 409 while a request with it is still being processed.
    assert (
        set(operations["post"]["responses"]) == {"404", "409", "413", "415", "422", "429", "503"} | everywhere
    )
    assert {"$ref": "#/components/parameters/IdempotencyKey"} in operations["post"]["parameters"]
    assert "operationId" not in operations["get"]  # no Flask rule to name it from
    assert operations["post"]["responses"]["400"]["description"] == "ours"  # kept, headers added
    assert "RateLimit-Reset" in operations["post"]["responses"]["400"]["headers"]
    assert {"401", "403", "413", "415"} <= set(operations["put"]["responses"])


def test_plugin_registers_problem_schema_and_responses():
    components = _plugin_spec().to_dict()["components"]
    assert set(components["schemas"]["Problem"]["properties"]) == {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "request_id",
        "errors",
    }
    unauthorized = components["responses"]["Unauthorized"]
    assert unauthorized["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }


def test_register_security_scheme_is_idempotent(app):
    with app.app_context():
        api = app_api()
        before = dict(api.spec.components.security_schemes)
        register_security_scheme(api)
        assert api.spec.components.security_schemes == before
        # The access-token scheme, the refresh endpoint's own, and /metrics' own.
        assert list(before) == [BEARER_SCHEME, REFRESH_SCHEME, "metricsToken"]
