"""Logs (README: Operate it, Logs): one JSON object a line on stdout, request lines, audit
events, never a secret."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from api.logs import JSONFormatter, StdoutHandler, configure_logging
from security.permissions import public
from tests import conftest
from tests.conftest import PASSWORD, assert_problem


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Every line written to stdout since the last call, each parsed as one JSON object."""
    out = capsys.readouterr().out
    assert out.endswith("\n") or out == ""
    return [json.loads(line) for line in out.splitlines()]


def _requests(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "resistance.access"]


def _events(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == event]


def test_request_line_has_id_method_path_status_duration_and_account(client, admin, capsys):
    capsys.readouterr()
    response = client.get("/api/v1/auth/me?page=1", headers={**admin["headers"], "X-Request-ID": "req-log-1"})
    assert response.status_code == 200
    (line,) = _requests(_lines(capsys))
    assert line["request_id"] == "req-log-1" == response.headers["X-Request-ID"]
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/auth/me"
    assert line["route"] == "/api/v1/auth/me"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    assert line["account_id"] == admin["id"]
    assert line["level"] == "info"
    assert line["ts"].endswith("Z")


def test_request_line_for_anonymous_error_has_no_account(client, capsys):
    capsys.readouterr()
    response = client.get("/api/v1/nope")
    (line,) = _requests(_lines(capsys))
    assert line["status"] == 404
    assert line["account_id"] is None
    assert line["route"] is None
    assert line["request_id"] == response.headers["X-Request-ID"] == response.get_json()["request_id"]


def test_request_line_for_refused_token_has_no_account(client, capsys):
    capsys.readouterr()
    client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not.a.token"})
    (line,) = _requests(_lines(capsys))
    assert (line["status"], line["account_id"]) == (401, None)


def test_every_stdout_line_is_one_json_object(client, make, capsys):
    capsys.readouterr()
    survivor = make.survivor()
    client.get(f"/api/v1/survivors/{survivor['id']}", headers=survivor["owner"]["headers"])
    client.post("/api/v1/auth/login", json={"username": "nobody", "password": "wrong-password-123"})
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) >= 5
    for raw in lines:
        entry = json.loads(raw)
        assert isinstance(entry, dict)
        assert {"ts", "level", "logger", "message"} <= set(entry)


def test_login_is_audited_with_account(client, make, capsys):
    account = make.account("observer")
    capsys.readouterr()
    response = client.post(
        "/api/v1/auth/login",
        json={"username": account["username"], "password": PASSWORD},
        headers={"X-Request-ID": "login-1"},
    )
    assert response.status_code == 200
    (event,) = _events(_lines(capsys), "auth.login")
    assert event["logger"] == "resistance.audit"
    assert event["account_id"] == account["id"]
    assert event["request_id"] == "login-1"


def test_failed_login_is_audited(client, make, capsys):
    account = make.account("observer")
    capsys.readouterr()
    client.post("/api/v1/auth/login", json={"username": account["username"], "password": "Wrong-" + PASSWORD})
    client.post("/api/v1/auth/login", json={"username": "ghost-user", "password": PASSWORD})
    events = _events(_lines(capsys), "auth.login_failed")
    assert len(events) == 2
    assert all(event["request_id"] for event in events)


def test_account_change_is_audited(client, admin, observer, capsys):
    capsys.readouterr()
    response = client.patch(
        f"/api/v1/accounts/{observer['id']}", json={"disabled": True}, headers=admin["headers"]
    )
    assert response.status_code == 200
    (event,) = _events(_lines(capsys), "account.changed")
    assert event["target"] == observer["id"]
    assert event["actor"] == admin["id"]
    assert event["changes"] == {"disabled": True}


def test_account_creation_is_audited(client, admin, capsys):
    capsys.readouterr()
    response = client.post(
        "/api/v1/accounts",
        json={"username": "auditme", "password": PASSWORD, "role": "observer"},
        headers=admin["headers"],
    )
    (event,) = _events(_lines(capsys), "account.created")
    assert event["target"] == response.get_json()["id"]
    assert event["role"] == "observer"


def test_infection_is_audited(client, make, capsys):
    target = make.survivor()
    reporters = [make.survivor() for _ in range(3)]
    capsys.readouterr()
    for reporter in reporters:
        assert make.report(reporter, target["id"]).status_code == 201
    lines = _lines(capsys)
    (event,) = _events(lines, "survivor.infected")
    assert event["survivor_id"] == target["id"]


def test_logs_never_contain_passwords_or_tokens(client, make, capsys):
    wrong_password = "Definitely-Wrong-Pass-77"
    register_password = "Registered-Secret-Pass-31"
    capsys.readouterr()
    client.post("/api/v1/auth/register", json={"username": "leaky1", "password": register_password})
    pair = client.post(
        "/api/v1/auth/login", json={"username": "leaky1", "password": register_password}
    ).get_json()
    client.post("/api/v1/auth/login", json={"username": "leaky1", "password": wrong_password})
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    client.get("/api/v1/auth/me", headers=headers)
    client.get(f"/api/v1/auth/me?access_token={pair['access_token']}")
    client.get("/api/v1/auth/me", headers={"Authorization": "Bearer forged-token-value-xyz"})
    refreshed = client.post(
        "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {pair['refresh_token']}"}
    )
    new_pair = refreshed.get_json()
    client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": new_pair["refresh_token"]},
        headers={"Authorization": f"Bearer {new_pair['access_token']}"},
    )
    client.post(
        "/api/v1/accounts", json={"username": "x", "password": "Created-Secret-Pass-55", "role": "admin"}
    )
    out = capsys.readouterr().out
    assert len(out.splitlines()) >= 8
    secrets = [
        register_password,
        wrong_password,
        "Created-Secret-Pass-55",
        pair["access_token"],
        pair["refresh_token"],
        new_pair["access_token"],
        new_pair["refresh_token"],
        "forged-token-value-xyz",
        "Bearer",
        conftest.SECRET,
    ]
    for secret in secrets:
        assert secret not in out, secret
    # a token's signature alone must not leak either
    for token in (pair["access_token"], new_pair["refresh_token"]):
        assert token.rsplit(".", 1)[1] not in out


def test_formatter_drops_extra_fields_that_look_secret():
    record = logging.LogRecord("resistance.audit", logging.INFO, __file__, 1, "event", None, None)
    record.__dict__.update(
        {
            "password": "p4ss",
            "refresh_token": "r-t",
            "Authorization": "Bearer a",
            "jwt_secret": "s",
            "kept": 7,
        }
    )
    entry = json.loads(JSONFormatter().format(record))
    assert entry["kept"] == 7
    assert "request_id" not in entry
    for value in ("p4ss", "r-t", "Bearer a"):
        assert value not in json.dumps(entry)


def test_formatter_names_the_exception_without_its_message():
    try:
        raise ValueError("do-not-leak: postgresql://user:secret@db/x")
    except ValueError:
        record = logging.LogRecord("resistance", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JSONFormatter().format(record)
    entry = json.loads(line)
    assert entry["exception"] == "ValueError"
    assert entry["level"] == "error"
    assert "do-not-leak" not in line and "Traceback" not in line


def test_formatter_handles_empty_exc_info():
    record = logging.LogRecord("resistance", logging.ERROR, __file__, 1, "failed", None, (None, None, None))
    assert json.loads(JSONFormatter().format(record))["exception"] is None


def test_formatter_renders_unserialisable_values_as_text():
    record = logging.LogRecord("resistance", logging.INFO, __file__, 1, "odd %s", ("arg",), None)
    record.__dict__["thing"] = object()
    entry = json.loads(JSONFormatter().format(record))
    assert entry["message"] == "odd arg"
    assert entry["thing"].startswith("<object object")


def test_handler_writes_to_current_stdout_and_flushes_each_line(monkeypatch):
    class Recorder(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            Recorder.flushes += 1
            super().flush()

    swapped = Recorder()
    handler = StdoutHandler()
    handler.setFormatter(JSONFormatter())
    handler.stream = io.StringIO()  # ignored: the handler always follows sys.stdout
    monkeypatch.setattr(sys, "stdout", swapped)
    logger = logging.getLogger("resistance.test-handler")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("one")
        logger.warning("two")
    finally:
        logger.removeHandler(handler)
    lines = swapped.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["one", "two"]
    assert Recorder.flushes >= 2


def test_configure_logging_is_idempotent():
    configure_logging()
    configure_logging()
    root = logging.getLogger("resistance")
    assert len(root.handlers) == 1 and isinstance(root.handlers[0], StdoutHandler)
    assert isinstance(root.handlers[0].formatter, JSONFormatter)
    for name in ("resistance.audit", "resistance.access"):
        assert logging.getLogger(name).handlers == []
        assert logging.getLogger(name).getEffectiveLevel() == logging.INFO


@pytest.fixture(scope="module")
def crashing_app(db_url: str) -> Iterator[Flask]:
    from api import create_app
    from api.extensions import db

    application = create_app(conftest.test_environ(db_url), TESTING=True, PASSWORD_HASH_PROFILE="fast-tests")

    @public
    def crash() -> Any:
        raise RuntimeError("do-not-leak: internal detail")

    application.add_url_rule("/api/v1/test/crash", "crash", crash)
    yield application
    with application.app_context():
        db.engine.dispose()


def test_unhandled_error_is_logged_with_type_and_request_id_only(crashing_app, capsys):
    capsys.readouterr()
    response = crashing_app.test_client().get("/api/v1/test/crash", headers={"X-Request-ID": "crash-1"})
    assert_problem(response, 500)
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    (error,) = [line for line in lines if line["message"] == "unhandled error"]
    assert error["exception"] == "RuntimeError"
    assert error["request_id"] == "crash-1"
    assert error["level"] == "error"
    (request_line,) = _requests(lines)
    assert (request_line["status"], request_line["request_id"]) == (500, "crash-1")
    assert "do-not-leak" not in out and "Traceback" not in out
