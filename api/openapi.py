"""The smorest Api with our problem envelope, and an apispec plugin that documents it everywhere."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import flask_smorest
import marshmallow as ma
import yaml
from apispec import APISpec, BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app
from flask_smorest import Api
from flask_smorest.spec.plugins import FlaskPlugin
from werkzeug.routing import UUIDConverter

from api.arguments import ArgumentsParser
from api.idempotency import HEADER as IDEMPOTENCY_KEY
from api.idempotency import IGNORED_ENDPOINTS as KEYLESS_POSTS
from api.idempotency import REPLAYED
from api.problems import MAX_ERROR_FIELDS, MAX_MESSAGES, PROBLEM_MIME
from api.schemas import ENUM_SCHEMA, ETAG_LIST_MAX, ETAG_LIST_PATTERN
from security.bodies import BODY_METHODS
from security.headers import REQUEST_ID_PATTERN, no_store

BEARER_SCHEME = "bearerAuth"
REFRESH_SCHEME = "refreshToken"


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with our arguments parser (the I-JSON body read once, the
    validated query remembered: api/arguments.py), handing webargs one schema instance per view:
    given a class, webargs builds a new schema (copying every declared field) on each request."""

    ARGUMENTS_PARSER = ArgumentsParser()

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)


# Bounds that hold for every problem document: the path is bounded by gunicorn's
# limit_request_line (4094), and a 64 KiB body cannot name more than 16384 fields.
MAX_PATH_LENGTH = 4094
# gunicorn's limit_request_field_size (8190) bounds a whole header line, "Name: value" and its
# CRLF: a longer one is 431.
MAX_HEADER_LINE = 8190
# Text we write ourselves (titles, details, validation messages): no control characters.
PLAIN_TEXT = r"^[^\u0000-\u001F\u007F]*$"


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as every 4xx/5xx response carries them."""

    type = ma.fields.String(required=True, metadata={"format": "uri", "maxLength": 200})
    title = ma.fields.String(required=True, metadata={"maxLength": 200, "pattern": PLAIN_TEXT})
    status = ma.fields.Integer(
        required=True, validate=ma.validate.Range(100, 599), metadata={"format": "int32"}
    )
    detail = ma.fields.String(required=True, metadata={"maxLength": 2000, "pattern": PLAIN_TEXT})
    # Absent only when the server refused the request before the app saw it (gunicorn's
    # 400/414/417/431: security/headers.raw_problem), which has no path or id to give.
    instance = ma.fields.String(
        metadata={"maxLength": MAX_PATH_LENGTH, "pattern": "^/", "description": "The request path."}
    )
    request_id = ma.fields.String(
        metadata={
            "maxLength": 128,
            "pattern": REQUEST_ID_PATTERN,
            "description": "The request's X-Request-ID, as in the server's log lines.",
        }
    )
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(
            ma.fields.String(metadata={"maxLength": 500, "pattern": PLAIN_TEXT}),
            metadata={"maxItems": MAX_MESSAGES},
        ),
        metadata={
            "description": "Dotted field path to messages, on validation failures.",
            "maxProperties": MAX_ERROR_FIELDS,
        },
    )


# status -> (component name, description)
_RESPONSES: dict[str, tuple[str, str]] = {
    "400": (
        "BadRequest",
        "Malformed request: a body that is not I-JSON (RFC 7493: invalid JSON, nesting deeper than "
        "32, lone surrogates, duplicate member names, numbers a double cannot hold), a body that "
        "could not be read (broken chunked framing, shorter than its Content-Length), or an "
        "HTTP/1.1 request without Host.",
    ),
    "401": ("Unauthorized", "Missing, expired, revoked or invalid token."),
    "403": ("Forbidden", "Authenticated, but not allowed to do this."),
    "404": ("NotFound", "No such resource (or a malformed id)."),
    "409": ("Conflict", "The request conflicts with the current state."),
    "412": ("PreconditionFailed", "If-Match did not match the current ETag."),
    "413": ("PayloadTooLarge", "The body is over 64 KiB."),
    "415": ("UnsupportedMediaType", "The body is not application/json."),
    "422": ("ValidationError", "Invalid body or query parameter."),
    "414": ("URITooLong", "The request line is over the server's limit."),
    "429": ("TooManyRequests", "Rate limit reached: retry after Retry-After seconds."),
    "417": ("ExpectationFailed", "An Expect header other than 100-continue (RFC 9110 §10.1.1)."),
    "431": ("HeadersTooLarge", "A request header (or all of them) is over the server's limit."),
    "500": ("InternalError", "Unexpected failure; nothing internal is disclosed."),
    "502": ("BadGateway", "The upstream failed or answered nothing usable; stored data is kept."),
    "503": (
        "ServiceUnavailable",
        "The database or Redis is unavailable (down, or failing over): nothing was done; retry "
        "after Retry-After seconds, with the same Idempotency-Key.",
    ),
}

# Public operations that still answer 401 (endpoint -> why). Everything else that is public
# never checks a token, so a 401 there would be a false promise.
PUBLIC_WITH_401 = {"auth.Login": "Bad credentials, a malformed username or a disabled account."}

NO_STORE = "Cache-Control-no-store"  # header component: Cache-Control with the value no-store
REQUEST_ID = "X-Request-ID"
_SECONDS = {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2_147_483_647}
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
CORS_HEADER = "Access-Control-Allow-Origin"
_HEADERS: dict[str, dict[str, Any]] = {
    "RateLimit-Limit": {
        "description": "Requests allowed in the current window of the limit closest to refusing.",
        "schema": {**_SECONDS, "minimum": 1},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in that window.",
        "schema": _SECONDS,
    },
    "RateLimit-Reset": {
        "description": "Seconds until the window frees a request.",
        "schema": _SECONDS,
    },
    "Retry-After": {
        "description": "Seconds to wait before the next request can succeed.",
        "schema": {**_SECONDS, "minimum": 1},
    },
    "ETag": {
        "description": "Strong entity tag of this representation (for If-None-Match and If-Match).",
        "schema": {"type": "string", "maxLength": 130, "pattern": '^"[A-Za-z0-9._-]{1,128}"$'},
    },
    REPLAYED: {
        "description": "On the answer to a retry with the Idempotency-Key of an earlier request: this "
        "is that request's stored answer, and nothing was done again.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Cache-Control": {
        "description": "Clients may store the response but must revalidate it (If-None-Match).",
        "schema": {"type": "string", "enum": ["private, no-cache"]},
    },
    NO_STORE: {
        "description": "no-store: no cache may keep this answer. Sent on every answer under "
        "/api/v1/auth/, /api/v1/trades and a survivor's inventory (tokens, sessions, what "
        "survivors hold and trade).",
        "schema": {"type": "string", "enum": ["no-store"]},
    },
    REQUEST_ID: {
        "description": "The request's id: the client's X-Request-ID when it matches the pattern, "
        "else a new random one. The server's log lines and problem bodies carry the same id.",
        "schema": {"type": "string", "maxLength": 128, "pattern": REQUEST_ID_PATTERN},
    },
    "Location": {
        "description": "The created resource, as a relative reference (RFC 9110 §10.2.2; never "
        "built from the request's Host).",
        "schema": {"type": "string", "maxLength": 200, "pattern": "^/api/v1/[A-Za-z0-9/-]+$"},
    },
    "WWW-Authenticate": {
        "description": 'The bearer challenge (RFC 6750 §3): error="invalid_token" when a token '
        "was sent but refused.",
        "schema": {"type": "string", "maxLength": 200, "pattern": "^Bearer "},
    },
    "Access-Control-Allow-Origin": {
        "description": "Only when CORS_ORIGINS names the request's Origin (CORS is off by default).",
        "schema": {"type": "string", "maxLength": 2048, "pattern": "^https?://[^\\s/]+$"},
    },
    "Link": {
        "description": 'RFC 8288 links to the rel="prev" and rel="next" pages, where they exist, as '
        "relative references (never built from the request's Host); only the validated query "
        "parameters are carried over.",
        "schema": {"type": "string", "maxLength": 8192, "pattern": '^<[^>]+>; rel="(prev|next)"'},
    },
}
# An entity tag list as RFC 9110 writes it (or *); anything else is answered 400.
_ETAG_LIST = {"type": "string", "maxLength": ETAG_LIST_MAX, "pattern": ETAG_LIST_PATTERN}
_PARAMETERS: dict[str, dict[str, Any]] = {
    "IfNoneMatch": {
        "name": "If-None-Match",
        "description": "ETags the client holds: a current one is answered 304 with no body.",
        "schema": _ETAG_LIST,
    },
    "IdempotencyKey": {
        "name": IDEMPOTENCY_KEY,
        "description": "A key of the client's choosing (draft-ietf-httpapi-idempotency-key-header), "
        "unique per request it means: a retry with the same key and body within 24 hours gets the "
        "first answer again (status, body, Location) and nothing is done twice; the same key with "
        "another body is 422, and while the first request is still being processed, 409. Keys are "
        "per account (per client IP when anonymous).",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    },
    "RequestId": {
        "name": REQUEST_ID,
        "description": "An id of the client's choosing for this request. One that matches "
        f"{REQUEST_ID_PATTERN} is echoed in the X-Request-ID response header, the server's log "
        "lines and problem bodies; any other value is ignored (never refused) and the server "
        "mints an id instead.",
        # Any value is accepted: the schema bounds only the length (gunicorn's header limit).
        "schema": {
            "type": "string",
            "maxLength": MAX_HEADER_LINE - len(f"{REQUEST_ID}: \r\n"),
            "pattern": "^.*$",
        },
    },
    "IfMatch": {
        "name": "If-Match",
        "description": "Write only if the resource still has one of these ETags (else 412).",
        "schema": _ETAG_LIST,
    },
}
_UUID_PATH = {
    "type": "string",
    "format": "uuid",
    "minLength": 36,
    "maxLength": 36,
    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
RFC3339_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
API_PREFIX = "/api/v1/"


def _uuid_path_schema(converter: Any) -> dict[str, Any]:  # noqa: ARG001 - apispec's signature
    return dict(_UUID_PATH)


def _bounded_properties(
    converter: Any,  # noqa: ARG001 - bound as a method of apispec's field converter
    field: ma.fields.Field,
    ret: dict[str, Any],
    **kwargs: Any,  # noqa: ARG001
) -> dict[str, Any]:
    """What apispec leaves out: strftime DateTimes as date-time, integers bounded by their format."""
    extra: dict[str, Any] = {}
    if isinstance(field, ma.fields.DateTime) and ret.get("format", "") is None:
        # A custom strftime format: apispec writes format/pattern null; ours is RFC 3339 UTC.
        extra = {"format": "date-time", "pattern": field.metadata.get("pattern", RFC3339_UTC)}
    elif ret.get("type") == "integer" and ret.get("format") in _INT_RANGE:
        low, high = _INT_RANGE[ret["format"]]
        extra = {"minimum": ret.get("minimum", low), "maximum": ret.get("maximum", high)}
    return extra


def _named_enum(
    converter: Any,
    field: ma.fields.Field,
    ret: dict[str, Any],
    **kwargs: Any,  # noqa: ARG001
) -> dict[str, Any]:
    """An enum field (api.schemas.enum_field) as a reference to its named schema, which holds the
    values once: generated clients get one type per set of values instead of one per field.
    OpenAPI 3.1 (JSON Schema 2020-12) keeps a $ref's siblings, such as a description."""
    name = field.metadata.get(ENUM_SCHEMA)
    if name is None:
        return {}
    named = {"type": ret.pop("type"), "enum": ret.pop("enum")}
    schemas = converter.spec.components.schemas
    if name not in schemas:
        converter.spec.components.schema(name, named)
    return {"$ref": f"#/components/schemas/{name}"}


def created_links(parameter: str, links: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """OpenAPI links from a 201 body's id to the operations a client (and a stateful fuzzer) can
    call next: {name: (operationId, description)}, each passing the new id as `parameter`."""
    return {
        name: {
            "operationId": target,
            "parameters": {parameter: "$response.body#/id"},
            "description": description,
        }
        for name, (target, description) in links.items()
    }


def operation_id(endpoint: str, method: str) -> str:
    """camelCase method + view name: 'survivors.SurvivorById', 'get' -> 'getSurvivorById'."""
    view = endpoint.rsplit(".", 1)[-1]
    return method + "".join(part[:1].upper() + part[1:] for part in view.split("_"))


def _problem_headers(status: str) -> dict[str, str]:
    """What a problem answer may carry (each only where it applies): the request id and CORS
    always; under /api/v1 the rate-limit headers (counted before the answer was known) and, on a
    private path, Cache-Control: no-store; a 4xx to a keyed POST may be a replay; 401 challenges;
    409 (a keyed request still in progress), 429 and 503 say when to retry."""
    headers = {REQUEST_ID: REQUEST_ID, CORS_HEADER: CORS_HEADER}
    headers |= {name: name for name in RATE_LIMIT_HEADERS}
    headers["Cache-Control"] = NO_STORE
    if status.startswith("4"):
        headers[REPLAYED] = REPLAYED
    if status == "401":
        headers["WWW-Authenticate"] = "WWW-Authenticate"
    if status in {"409", "429", "503"}:
        headers["Retry-After"] = "Retry-After"
    return headers


class ProblemResponsesPlugin(BasePlugin):
    """Documents what every operation shares, so no view repeats it: problem responses, 429,
    rate-limit and caching headers, operationIds, bounded path ids and integers."""

    def init_spec(self, spec: APISpec) -> None:
        self.spec = spec
        for plugin in spec.plugins:
            if isinstance(plugin, MarshmallowPlugin):
                plugin.converter.add_attribute_function(_bounded_properties)  # type: ignore[union-attr]
                plugin.converter.add_attribute_function(_named_enum)  # type: ignore[union-attr]
            if isinstance(plugin, FlaskPlugin):
                plugin.register_converter(UUIDConverter, _uuid_path_schema)
        for name, header in _HEADERS.items():
            spec.components.header(name, header)
        for name, parameter in _PARAMETERS.items():
            spec.components.parameter(name, "header", parameter)
        spec.components.schema("Problem", schema=ProblemSchema)
        for status, (name, description) in _RESPONSES.items():
            response: dict[str, Any] = {
                "description": description,
                "content": {PROBLEM_MIME: {"schema": "Problem"}},
            }
            spec.components.response(name, response | {"headers": _problem_headers(status)})

    def operation_helper(
        self,
        path: str | None = None,
        operations: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        rule = kwargs.get("rule")  # flask-smorest passes the Flask rule; bare spec.path() does not
        endpoint = rule.endpoint if rule is not None else ""
        limited = (path or "").startswith(API_PREFIX)
        for method, operation in (operations or {}).items():
            if endpoint:
                operation.setdefault("operationId", operation_id(endpoint, method))
            self._describe(operation)
            # flask-smorest keys some statuses by int; apispec makes them strings later anyway.
            responses = {str(code): doc for code, doc in operation.get("responses", {}).items()}
            operation["responses"] = responses
            for status, doc in responses.items():
                # flask-smorest's own per-status components (UNPROCESSABLE_ENTITY…) become ours.
                if status in _RESPONSES and doc == HTTPStatus(int(status)).name:
                    responses[status] = _RESPONSES[status][0]
            public = operation.get("security") == []
            # Anywhere: a malformed request (no Host, a conditional header over 1 KiB), and what
            # gunicorn refuses before the app runs.
            wanted = ["400", "414", "417", "431", "500"]
            if limited:
                wanted += ["404", "422", "429", "503"]
            if not public or endpoint in PUBLIC_WITH_401:
                wanted += ["401"]
            if not public:
                wanted += ["403"]
            if method.upper() in BODY_METHODS:  # a body is judged on each of them, DELETE too
                wanted += ["413", "415"]
            keyed = method == "post" and limited and endpoint not in KEYLESS_POSTS
            if keyed:
                operation.setdefault("parameters", []).append("IdempotencyKey")
                wanted += ["409", "422"]
                for status, doc in responses.items():
                    if status.startswith("2") and isinstance(doc, dict):
                        doc.setdefault("headers", {})[REPLAYED] = REPLAYED
            for status in sorted(wanted):
                responses.setdefault(status, _RESPONSES[status][0])
            operation.setdefault("parameters", []).append("RequestId")
            self._caching(operation, responses)
            self._response_headers(responses, limited, private=no_store(path or ""))

    @staticmethod
    def _describe(operation: dict[str, Any]) -> None:
        """A description for every operation: the docstring's body, else its summary and access."""
        if operation.get("description"):
            return
        summary = operation.get("summary", "").rstrip(".")
        access = (
            "Public: no token needed." if operation.get("security") == [] else "Needs a bearer access token."
        )
        operation["description"] = f"{summary}. {access}".lstrip(". ")

    @staticmethod
    def _caching(operation: dict[str, Any], responses: dict[str, Any]) -> None:
        """A declared 304 means If-None-Match is honoured; a declared 412, If-Match."""
        parameters = operation.setdefault("parameters", [])
        ok_headers: dict[str, str] = {}
        if "304" in responses:
            parameters.append("IfNoneMatch")
            ok_headers |= {"ETag": "ETag", "Cache-Control": "Cache-Control"}
            responses["304"].setdefault("headers", {}).update(ok_headers)
        if "412" in responses:
            parameters.append("IfMatch")
            ok_headers["ETag"] = "ETag"
        if any(isinstance(p, dict) and (p["in"], p["name"]) == ("query", "page") for p in parameters):
            ok_headers["Link"] = "Link"
        if ok_headers:
            responses["200"].setdefault("headers", {}).update(ok_headers)

    @staticmethod
    def _response_headers(responses: dict[str, Any], limited: bool, private: bool) -> None:
        """Inline responses carry the request id and the CORS header, under /api/v1 2xx-4xx the
        rate-limit headers (the problem components carry them too), and on a private path
        (security.headers.no_store) Cache-Control: no-store."""
        for status, response in responses.items():
            if isinstance(response, dict):
                headers = response.setdefault("headers", {})
                headers[REQUEST_ID] = REQUEST_ID
                headers[CORS_HEADER] = CORS_HEADER
                if limited and status[:1] in {"2", "3", "4"}:
                    headers.update({name: name for name in RATE_LIMIT_HEADERS})
                if private:
                    headers["Cache-Control"] = NO_STORE


class ProblemApi(Api):
    """flask-smorest's Api documenting every error as problem+json (api/problems.py answers them)."""

    DEFAULT_ERROR_RESPONSE_NAME = None
    ERROR_SCHEMA = ProblemSchema

    def _register_pagination_header(self) -> None:
        """No X-Pagination: our pages carry their counts in the body and a Link header."""

    def _register_error_handlers(self) -> None:
        """Nothing here: api/problems.py registers the HTTPException rule with every other."""


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
    """Declare the bearer JWT scheme (RFC 8725 practices) in the spec; the OWASP rule wants "RFC8725"."""
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
                "<token>' (the scheme in any case, RFC 9110 §11.1). HS256 only, iss and aud "
                "verified, short-lived, revocable; follows "
                "RFC8725 (RFC 8725, JSON Web Token Best Current Practices)."
            ),
        },
    )
    api.spec.components.security_scheme(
        REFRESH_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "Refresh token from POST /api/v1/auth/login (or the last refresh), sent as "
                "'Authorization: Bearer <token>' to POST /api/v1/auth/refresh only; an access "
                "token is refused there, and a refresh token everywhere else. Single use: each "
                "refresh returns the next one (RFC 9700 §4.14.2 rotation); follows RFC8725."
            ),
        },
    )


class _PlainDumper(yaml.SafeDumper):
    """YAML with no anchors or aliases: a value used twice is written twice, as JSON would."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002 - PyYAML's signature
        return True


def spec_yaml(api: Api) -> str:
    """The OpenAPI document as YAML text (what `make openapi` writes to openapi.yaml): keys in
    the order /api/v1/openapi.json serves them (the schemas' field order), no anchors, so a
    client generated from either file is the same."""
    return yaml.dump(api.spec.to_dict(), Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=100)


API_EXTENSION = "resistance.api"


def app_api() -> Api:
    """The Api create_app bound to the current app (for tests and tools that hold only the app)."""
    api: Api = current_app.extensions[API_EXTENSION]
    return api
