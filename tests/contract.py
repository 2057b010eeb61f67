"""The test client every HTTP test uses, checking each answer against openapi.yaml's headers.

A generated client knows only the headers the OpenAPI document declares: one the server sends but
the document leaves out (a 201's Location, a 401's WWW-Authenticate) is invisible to it. So every
response a test gets through the `client` fixture is checked: each header a client acts on that
the response carries must be declared for that operation and status. The test that got it fails,
naming the header, the operation and the status.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from flask.testing import FlaskClient
from werkzeug.exceptions import HTTPException
from werkzeug.test import TestResponse

SPEC_FILE = Path(__file__).resolve().parent.parent / "openapi.yaml"
# What a client reads and acts on. Not here: Content-Type and Content-Length (the media type is
# the response's content key), and the security headers a browser obeys (README: Security).
CLIENT_HEADERS = {
    "location",
    "etag",
    "link",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "idempotent-replayed",
    "x-request-id",
    "www-authenticate",
    "cache-control",
    "access-control-allow-origin",
}
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@functools.cache
def spec() -> dict[str, Any]:
    """openapi.yaml, parsed once for the whole run (tests read it, never change it)."""
    document: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text())
    return document


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) for every operation of a document (a path item's shared
    `parameters` is not one)."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def declared_headers(path: str, method: str, status: int) -> set[str] | None:
    """The header names openapi.yaml declares for an operation's status (lower case), or None
    when it declares no such operation or status (the status checks of Schemathesis and
    tests/test_openapi.py cover those)."""
    document = spec()
    operation = document["paths"].get(path, {}).get(method.lower())
    if operation is None:
        return None
    response = operation["responses"].get(str(status))
    if response is None:
        return None
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return {name.lower() for name in response.get("headers", {})}


def undeclared_headers(client: FlaskClient, response: TestResponse) -> set[str]:
    """The client-facing headers a response carries that its operation does not declare."""
    request = response.request
    adapter = client.application.url_map.bind("localhost")
    try:
        rule, _arguments = adapter.match(request.path, method=request.method, return_rule=True)
    except HTTPException:  # no route (404) or no such method (405): no operation to hold it to
        return set()
    declared = declared_headers(_CONVERTER.sub(r"{\1}", rule.rule), request.method, response.status_code)
    if declared is None:
        return set()
    return {name.lower() for name in response.headers.keys()} & CLIENT_HEADERS - declared


class ContractClient(FlaskClient):
    """FlaskClient whose every answer must declare, in openapi.yaml, the client-facing headers it
    carries (see the module docstring)."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        if not kwargs.get("follow_redirects"):
            missing = undeclared_headers(self, response)
            assert not missing, (
                f"{response.request.method} {response.request.path} answered {response.status_code} "
                f"with {sorted(missing)}, which openapi.yaml does not declare for it"
            )
        return response
