"""The request pipeline (api/pipeline.py): every hook in the order its docstring gives, and the
token verified once per request."""

from __future__ import annotations

from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask

from api import pipeline
from tests.conftest import Factory, assert_problem

ME = "/api/v1/auth/me"


def _name(hook: Any) -> str:
    hook = getattr(hook, "func", hook)  # flask-limiter registers a functools.partial
    return hook.__qualname__.split(".<locals>")[0]


def _documented(section: str) -> list[str]:
    """The hooks a section of the module docstring names, in its order."""
    text = (pipeline.__doc__ or "").split(section, 1)[1].split("\n\n", 1)[0]
    return [line.split(":", 1)[0].split(". ", 1)[1] for line in text.splitlines()[1:] if ". " in line]


def test_before_request_hooks_run_in_the_documented_order(app: Flask):
    names = [_name(hook) for hook in app.before_request_funcs[None]]
    assert names == [
        "start_request",
        "assign_request_id",
        "require_host",
        "start_timer",
        "normalise_authorization",
        "identify",
        "Limiter._check_request_limit",
        "require_authentication",
        "check_conditional_headers",
        "read_json_body",
        "begin",
    ]
    documented = _documented("before_request, in order")
    assert [name for name in documented if not name.startswith("the rate limits")] == [
        "metrics.start_request",
        "headers.assign_request_id",
        "headers.require_host",
        "logs.start_timer",
        "jwt.normalise_authorization",
        "permissions.identify",
        "permissions.require_authentication",
        "headers.check_conditional_headers",
        "bodies.read_json_body",
        "idempotency.begin",
    ]


def test_after_request_hooks_run_in_the_documented_order(app: Flask):
    running = [
        _name(hook) for hook in reversed(app.after_request_funcs[None])
    ]  # Flask runs them last-registered first
    assert running == [
        "finish",
        "remember_status",
        "response_headers",
        "apply",
        "log_request",
        "Limiter.__inject_headers",  # flask-limiter's, a no-op: headers_enabled is off
    ]
    assert [_name(hook) for hook in app.teardown_request_funcs[None]] == [
        "Limiter.__release_context",
        "finish_request",
    ]


def test_a_token_is_decoded_once_per_request(client, make: Factory, monkeypatch):
    """The limiter keys on the account identify proved: no second signature check for it.
    (flask-jwt-extended peeks at the claims unverified first, to pick the key; not counted.)"""
    account = make.account()
    decodes: list[str] = []
    decode = pyjwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        if (kwargs.get("options") or {}).get("verify_signature", True):  # not the library's peek
            decodes.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(pyjwt, "decode", counted)
    response = client.get(ME, headers=account["headers"])
    assert response.status_code == 200
    assert decodes == [account["access_token"]]


@pytest.fixture
def tight(make_app) -> Flask:
    return make_app(RATELIMIT_DEFAULT="2/minute")


def test_a_token_that_fails_is_limited_per_client_ip_and_429_wins(tight, make: Factory):
    """A valid token's account has its own bucket; a bad token counts against the address, and
    once that is spent the answer is 429, not 401."""
    account = make.account()
    client = tight.test_client()
    bad = {"Authorization": "Bearer not.a.token"}
    assert [client.get(ME, headers=bad).status_code for _ in range(2)] == [401, 401]
    refused = client.get(ME, headers=bad)
    assert_problem(refused, 429)
    assert client.get(ME, headers=account["headers"]).status_code == 200  # its own bucket


def test_an_ended_sessions_token_counts_as_anonymous(tight, make: Factory):
    account = make.account()
    client = tight.test_client()
    assert client.post("/api/v1/auth/logout", headers=account["headers"]).status_code == 204
    assert client.get(ME, headers=account["headers"]).status_code == 401
    assert client.get(ME).status_code == 401  # the same address's second try
    assert_problem(client.get(ME, headers=account["headers"]), 429)
