"""The README's curl walk-through, run word for word against a real gunicorn, as a new user would:
started the way the README says, twice in a row against one server, and its `field` helper
failing plainly when an answer is not what it expects."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.server import ROOT, GunicornServer, hermetic_environ, run_to_exit, server_environ

pytestmark = pytest.mark.gunicorn

README = ROOT / "README.md"
PASSWORD_CHANGED = [
    "retry: 201, replayed true",  # step 2's retry with the same Idempotency-Key
    "end other sessions: 204",
    "the phone afterwards: 401",
    "password change: 204",
    "logout: 204",
    "this token afterwards: 401",
]


def section(title: str) -> str:
    return README.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def walk_through() -> str:
    """The walk-through: the second sh block under "A first session with curl" (the first
    starts the server)."""
    blocks = sh_blocks(section("A first session with curl"))
    assert len(blocks) == 2, "README lost its curl walk-through or the command that starts its server"
    return blocks[1]


def refresh_example() -> str:
    """The refresh under "Sessions", which runs in the walk-through's shell."""
    (block,) = sh_blocks(section("Sessions"))
    return block


def start_settings() -> dict[str, str]:
    """The settings the README's start command for the walk-through gives `make run`."""
    (start,) = sh_blocks(section("A first session with curl"))[:1]
    match = re.fullmatch(r"((?:[A-Z_]+=\S+ )*)make run\n", start)
    assert match, f"the walk-through's server is no longer started with `… make run`: {start!r}"
    return dict(setting.split("=", 1) for setting in match[1].split())


def field_helper() -> str:
    """The `field` function, as the walk-through defines it."""
    match = re.search(r"^field\(\) \{.*?^' \"\$1\" \"\$API\"; \}$", walk_through(), re.S | re.M)
    assert match, "the walk-through lost its field() helper"
    return match.group(0)


def check_run(output: str, run: int) -> str:
    """One run's output as the README's comments say it; returns the run's ada-… user name."""
    lines = [line for line in output.splitlines() if line.startswith("{")]
    registered = json.loads(lines[0])
    assert re.fullmatch(r"ada-[0-9a-f]{6}", registered["username"]), registered
    # The trade moved 1 water one way and 4 ammunition the other: both inventories show it.
    for inventory in (
        '"water":2,"food":2,"medication":0,"ammunition":4,"points":18',  # Ada's
        '"water":1,"food":0,"medication":0,"ammunition":6,"points":10',  # Bob's
    ):
        assert any(inventory in line for line in lines), lines
    assert any('"status":"completed"' in line for line in lines), lines
    # Every run adds four survivors, one of them infected (the README's comment on step 5).
    report = {
        "total": 4 * run,
        "infected": run,
        "non_infected": 3 * run,
        "infected_percentage": 25.0,
        "non_infected_percentage": 75.0,
    }
    assert json.dumps(report, separators=(",", ":")) in lines, lines
    # Step 6: two sessions listed, the current one marked; then each end takes effect at once.
    (sessions,) = [json.loads(line) for line in lines if line.startswith('{"items"')]
    assert sessions["total"] == 2
    assert sorted((s["current"], s["user_agent"]) for s in sessions["items"])[0] == (False, "ada-phone/1.0")
    outcomes = [line for line in output.splitlines() if ": " in line and not line.startswith("{")]
    assert outcomes == PASSWORD_CHANGED, output
    # The refresh under "Sessions": the new password logs in, and its refresh token a new pair.
    pair = json.loads(lines[-1])
    assert pair["token_type"] == "Bearer" and set(pair) == {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
    }
    return str(registered["username"])


def test_readme_walk_through_runs_twice_in_a_row_against_one_server(app, db_url: str, tmp_path: Path):
    # The server as the README starts it for the walk-through (its RATELIMIT_AUTH), with
    # make run's default for the rest of the limits.
    settings = start_settings()
    assert set(settings) == {"RATELIMIT_AUTH"}, settings
    environ = server_environ(db_url, RATELIMIT_DEFAULT="600/minute", **settings)
    script = walk_through() + refresh_example()
    names = []
    with GunicornServer(environ, tmp_path / "gunicorn.log") as server:
        script = script.replace("http://127.0.0.1:8000", server.base_url)
        for run in (1, 2):
            result = run_to_exit(["bash", "-euo", "pipefail", "-c", script], environ, timeout=90)
            assert result.returncode == 0, f"run {run}:\n{result.stdout}"
            names.append(check_run(result.stdout, run))
    assert names[0] != names[1]  # each run its own users: nothing taken, nothing changed twice


def test_readme_walk_through_fits_make_runs_default_auth_limit_once(app, db_url: str, tmp_path: Path):
    # What the README says of a plain `make run`: one walk-through fits its 10/minute auth bucket.
    environ = server_environ(db_url, RATELIMIT_AUTH="10/minute")
    with GunicornServer(environ, tmp_path / "gunicorn.log") as server:
        script = walk_through().replace("http://127.0.0.1:8000", server.base_url)
        result = run_to_exit(["bash", "-euo", "pipefail", "-c", script], environ, timeout=90)
    assert result.returncode == 0, result.stdout
    outcomes = [line for line in result.stdout.splitlines() if ": " in line and "{" not in line]
    assert outcomes == PASSWORD_CHANGED, result.stdout


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            '{"type": "https://resistance.example/problems/rate-limited", "title": "Too many requests",'
            ' "status": 429, "detail": "Too many requests: retry after the Retry-After header."}',
            "field access_token: 429 Too many requests: retry after the Retry-After header.",
        ),
        ("", "field access_token: no JSON in the answer '': is the server up at http://127.0.0.1:9/api/v1?"),
        (
            "<html>Bad Gateway</html>",
            "field access_token: no JSON in the answer '<html>Bad Gateway</html>': is the server up at"
            " http://127.0.0.1:9/api/v1?",
        ),
        ('{"items": []}', 'field access_token: not in the answer {"items": []}'),
        ("[1, 2]", "field access_token: not in the answer [1, 2]"),
    ],
    ids=["problem", "nothing", "not-json", "other-member", "not-an-object"],
)
def test_field_helper_says_what_came_back_and_fails_without_a_traceback(answer: str, said: str):
    script = f'API=http://127.0.0.1:9/api/v1\n{field_helper()}\nprintf %s "$ANSWER" | field access_token\n'

    result = run_to_exit(["bash", "-c", script], hermetic_environ(ANSWER=answer), timeout=30)

    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout
    assert result.stdout.strip() == said


def test_field_helper_prints_the_member_it_is_asked_for():
    script = f'API=http://127.0.0.1:9/api/v1\n{field_helper()}\necho \'{{"id": "abc"}}\' | field id'

    result = run_to_exit(["bash", "-c", script], hermetic_environ(), timeout=30)

    assert (result.returncode, result.stdout) == (0, "abc\n")
