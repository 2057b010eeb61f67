"""The README's curl walk-through, run word for word against a real gunicorn, as a new user would."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.server import ROOT, GunicornServer, run_to_exit, server_environ

pytestmark = pytest.mark.gunicorn


def walk_through() -> str:
    """The first sh block under "A first session with curl"."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A first session with curl", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README lost its curl walk-through"
    return match.group(1)


def test_readme_walk_through_trades_and_reports(app, db_url: str, tmp_path: Path):
    # The default auth bucket (10/minute per IP): the walk-through must fit in it as written.
    environ = server_environ(db_url, RATELIMIT_AUTH="10/minute")
    with GunicornServer(environ, tmp_path / "gunicorn.log") as server:
        script = walk_through().replace("http://127.0.0.1:8000", server.base_url)
        result = run_to_exit(["bash", "-euo", "pipefail", "-c", script], environ, timeout=60)
    assert result.returncode == 0, result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    # The trade moved 1 water one way and 4 ammunition the other: both inventories show it.
    assert any('"water":2,"food":2,"medication":0,"ammunition":4,"points":18' in line for line in lines), (
        lines
    )
    assert any('"water":1,"food":0,"medication":0,"ammunition":6,"points":10' in line for line in lines), (
        lines
    )
    assert any('"status":"completed"' in line for line in lines), lines
    assert (
        '{"total":4,"infected":1,"non_infected":3,"infected_percentage":25.0,"non_infected_percentage":75.0}'
        in lines
    ), lines
    # Step 6: two sessions listed, the current one marked; then each end takes effect at once.
    (sessions,) = [json.loads(line) for line in lines if line.startswith('{"items"')]
    assert sessions["total"] == 2
    assert sorted((s["current"], s["user_agent"]) for s in sessions["items"])[0] == (False, "ada-phone/1.0")
    outcomes = [line for line in result.stdout.splitlines() if ": " in line and not line.startswith("{")]
    assert outcomes == [
        "retry: 201, replayed true",  # step 2's retry with the same Idempotency-Key
        "end other sessions: 204",
        "the phone afterwards: 401",
        "password change: 204",
        "logout: 204",
        "this token afterwards: 401",
    ], result.stdout
