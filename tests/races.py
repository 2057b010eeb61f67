"""Fixtures for races against a real gunicorn, shared by the test modules that fire them.

A module binds them by name (`server = races.server`, `live = races.live`) so pytest finds them
there: each such module then gets its own gunicorn per mode — one worker process with threads,
and three worker processes — on the suite's database (the `app` fixture has migrated it first).
The helpers that fire the requests (`at_once`, `assert_no_server_errors`, `statuses`) are in
tests/server.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.server import GunicornServer, log_problems, server_environ

MODES = {
    "threads": {"WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "8"},
    "processes": {"WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "4"},
}


@pytest.fixture(scope="module", params=list(MODES))
def server(
    request: pytest.FixtureRequest, app: Flask, db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    """One gunicorn per mode for the module that binds this fixture."""
    log = Path(tmp_path_factory.mktemp("gunicorn")) / f"{request.param}.log"
    with GunicornServer(server_environ(db_url, **MODES[request.param]), log) as running:
        yield running


@pytest.fixture
def live(server: GunicornServer) -> Iterator[GunicornServer]:
    """The module's server, and after the test: nothing in its output shows a failure."""
    server.mark()
    yield server
    problems = log_problems(server.output_since_mark())
    assert not problems, "\n".join(problems)
