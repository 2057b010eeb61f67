"""The smorest Api with our problem envelope, and an apispec plugin that documents it everywhere."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from apispec import APISpec, BasePlugin
from flask import current_app
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from api.problems import PROBLEM_MIME, problem_response, webargs_errors

BEARER_SCHEME = "bearerAuth"


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as every 4xx/5xx response carries them."""

    type = ma.fields.String(metadata={"format": "uri", "maxLength": 200})
    title = ma.fields.String(metadata={"maxLength": 200})
    status = ma.fields.Integer(validate=ma.validate.Range(100, 599), metadata={"format": "int32"})
    detail = ma.fields.String(metadata={"maxLength": 2000})
    instance = ma.fields.String(metadata={"maxLength": 2000})
    request_id = ma.fields.String(metadata={"maxLength": 128, "pattern": "^[A-Za-z0-9._-]{1,128}$"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(metadata={"maxLength": 200}),
        values=ma.fields.List(ma.fields.String(metadata={"maxLength": 500}), metadata={"maxItems": 50}),
        metadata={"description": "Dotted field path to messages, on validation failures."},
    )


# status -> (component name, description)
_RESPONSES: dict[str, tuple[str, str]] = {
    "400": ("BadRequest", "Malformed request (for example, invalid JSON)."),
    "401": ("Unauthorized", "Missing, expired, revoked or invalid token."),
    "403": ("Forbidden", "Authenticated, but not allowed to do this."),
    "404": ("NotFound", "No such resource (or a malformed id)."),
    "409": ("Conflict", "The request conflicts with the current state."),
    "412": ("PreconditionFailed", "If-Match did not match the current ETag."),
    "413": ("PayloadTooLarge", "The body is over 64 KiB."),
    "415": ("UnsupportedMediaType", "The body is not application/json."),
    "422": ("ValidationError", "Invalid body or query parameter."),
    "500": ("InternalError", "Unexpected failure; nothing internal is disclosed."),
}


class ProblemResponsesPlugin(BasePlugin):
    """Adds the problem responses every operation can give, so no view repeats them."""

    def init_spec(self, spec: APISpec) -> None:
        self.spec = spec
        spec.components.schema("Problem", schema=ProblemSchema)
        for name, description in _RESPONSES.values():
            spec.components.response(
                name,
                {"description": description, "content": {PROBLEM_MIME: {"schema": "Problem"}}},
            )

    def operation_helper(
        self,
        path: str | None = None,  # noqa: ARG002 - apispec passes it by keyword
        operations: dict[str, Any] | None = None,
        **kwargs: Any,  # noqa: ARG002
    ) -> None:
        for method, operation in (operations or {}).items():
            responses = operation.setdefault("responses", {})
            wanted = ["400", "404", "422", "500"]
            if operation.get("security") != []:
                wanted += ["401", "403"]
            if method in {"post", "put", "patch"}:
                wanted += ["413", "415"]
            for status in wanted:
                responses.setdefault(status, _RESPONSES[status][0])


class ProblemApi(Api):
    """flask-smorest's Api answering every HTTP error as problem+json."""

    DEFAULT_ERROR_RESPONSE_NAME = None
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Any:  # type: ignore[override]
        """Render any HTTPException (smorest, webargs, Werkzeug) as a problem document."""
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        errors = None
        detail = error.description
        if status == 422 and "messages" in data:
            errors = webargs_errors(data["messages"])
            detail = "The request has invalid or unknown fields; see errors."
        elif status == 400 and "messages" in data:
            detail = "The request body is not valid JSON."
        if status >= 500:
            detail = None
        return problem_response(status, detail, errors=errors, headers=headers)


def spec_options() -> dict[str, Any]:
    """Top-level OpenAPI fields: servers, global bearer security, info."""
    return {
        "servers": [
            {
                "url": "https://api.resistance.example",
                "description": "Production (behind the load balancer, TLS terminated there).",
                "x-internal": False,
            }
        ],
        "security": [{BEARER_SCHEME: []}],
        "info": {
            "description": (
                "Records of the resistance: survivors, inventories, infection reports, trades, "
                "robots and reports. Every error is RFC 9457 problem+json."
            ),
            "contact": {"name": "Resistance API maintainers", "url": "https://resistance.example"},
            "license": {"name": "MIT", "url": "https://opensource.org/licenses/MIT"},
        },
    }


def register_security_scheme(api: Api) -> None:
    """Declare the bearer JWT scheme (RFC 8725 practices) in the spec."""
    if BEARER_SCHEME in api.spec.components.security_schemes:
        return
    api.spec.components.security_scheme(
        BEARER_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "Access token from POST /api/v1/auth/login, sent as 'Authorization: Bearer "
                "<token>'. HS256 only, iss and aud verified, short-lived, revocable; follows "
                "RFC 8725 (JWT best current practices)."
            ),
        },
    )


def app_api() -> Api:
    """The Api bound to the current app."""
    return current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
