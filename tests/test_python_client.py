"""clients/python, the typed client openapi-python-client makes of openapi.yaml: in step with the
spec, installable with pip, and good for the README's walk-through against the real app.

The client is generated again into a temporary directory, by the pinned generator
(requirements-dev.txt) with the command `make openapi` runs, and compared file by file: a spec
change without `make openapi` fails here, naming the files. The copy pip installs (offline, with
the pinned build backend) runs clients/examples/walkthrough.py, twice, and the README's example
under gunicorn. `make test` type-checks the package with the example under `mypy --strict`.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import missing_service, sqlite_pass_only
from tests.server import ROOT, GunicornServer, hermetic_environ, log_problems, run_to_exit, server_environ

CLIENT = ROOT / "clients" / "python"
CONFIG = ROOT / "clients" / "openapi-python-client.yaml"
TEMPLATES = ROOT / "clients" / "templates"  # our README.md.jinja over the generator's own
EXAMPLES = ROOT / "clients" / "examples"
BIN = Path(sys.executable).parent  # the venv's: the pinned generator, ruff for its post hooks, pip
GENERATOR = BIN / "openapi-python-client"
# What never belongs to the generated tree (and its .gitignore keeps out of git).
NOT_GENERATED = {"__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache", "build", "dist"}
DIFF_LINES = 40


def generator_command(output: Path) -> list[str]:
    """The command `make openapi` runs (Makefile, target openapi), writing to `output`."""
    return [
        str(GENERATOR),
        "generate",
        "--path",
        "openapi.yaml",
        "--config",
        str(CONFIG.relative_to(ROOT)),
        "--custom-template-path",
        str(TEMPLATES.relative_to(ROOT)),
        "--meta",
        "pdm",
        "--fail-on-warning",
        "--output-path",
        str(output),
    ]


def tool_environ() -> dict[str, str]:
    """The shell's environment with the venv's bin first, so the post hooks run our pinned ruff."""
    return hermetic_environ(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def require_generator() -> None:
    if not GENERATOR.exists():
        missing_service(f"{GENERATOR} is missing: run `make .venv/.dev` (requirements-dev.txt pins it)")


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path, without caches and build output."""
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_dir() or NOT_GENERATED & set(relative.parts) or path.suffix == ".pyc":
            continue
        if any(part.endswith(".egg-info") for part in relative.parts):
            continue
        files[relative.as_posix()] = path.read_bytes()
    return files


def drift(committed: dict[str, bytes], generated: dict[str, bytes]) -> list[str]:
    """What differs between the committed client and a fresh one, file by file."""
    lines = [f"missing from clients/python: {name}" for name in sorted(generated.keys() - committed.keys())]
    lines += [f"not made by the generator: {name}" for name in sorted(committed.keys() - generated.keys())]
    both = committed.keys() & generated.keys()
    changed = sorted(name for name in both if committed[name] != generated[name])
    lines += [f"changed: {name}" for name in changed]
    if changed:  # the first change in full, to see what kind of drift it is
        first = changed[0]
        diff = difflib.unified_diff(
            committed[first].decode(errors="replace").splitlines(),
            generated[first].decode(errors="replace").splitlines(),
            f"clients/python/{first}",
            f"generated/{first}",
            lineterm="",
        )
        lines += list(diff)[:DIFF_LINES]
    return lines


def test_clients_python_is_what_the_generator_makes_of_openapi_yaml(tmp_path: Path):
    sqlite_pass_only("the client's drift test")
    require_generator()
    output = tmp_path / "python"
    result = run_to_exit(generator_command(output), tool_environ(), timeout=60)
    assert result.returncode == 0, f"openapi-python-client failed on openapi.yaml:\n{result.stdout}"
    problems = drift(tree(CLIENT), tree(output))
    assert not problems, (
        "clients/python is not what openapi-python-client makes of openapi.yaml: run `make openapi` "
        "and commit clients/python (never edit it by hand)\n" + "\n".join(problems)
    )


@pytest.fixture(scope="module")
def installed_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install ./clients/python` into a directory of its own: offline, no dependencies (the
    runtime ones, httpx and attrs, are in the venv), the build backend from requirements-dev.txt."""
    if importlib.util.find_spec("pdm.backend") is None:
        missing_service("pdm-backend is missing: run `make .venv/.dev` (requirements-dev.txt pins it)")
    target = tmp_path_factory.mktemp("client-install")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--no-deps", "--no-index", "--no-build-isolation", "--target", str(target), str(CLIENT)]
    result = run_to_exit(command, tool_environ(), timeout=120)
    assert result.returncode == 0, f"pip install ./clients/python failed:\n{result.stdout}"
    return target


@pytest.fixture
def walkthrough(installed_client: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """clients/examples/walkthrough.py, importing the installed client (not the source tree)."""
    monkeypatch.syspath_prepend(str(installed_client))
    monkeypatch.syspath_prepend(str(EXAMPLES))
    module = importlib.import_module("walkthrough")
    client_package = importlib.import_module("resistance_api_client")
    assert Path(client_package.__file__ or "").is_relative_to(installed_client), client_package.__file__
    return module


def test_the_installed_client_is_typed(installed_client: Path):
    # PEP 561: without py.typed a user's mypy would see the package as untyped (Any).
    assert (installed_client / "resistance_api_client" / "py.typed").is_file()


def readme_example() -> str:
    """The python block of the README's "Python client" section."""
    section = (ROOT / "README.md").read_text().split("## Python client", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README lost its Python client example"
    return match.group(1)


def _sessions(result: Any) -> list[tuple[bool, str]]:
    return sorted((session.current, session.user_agent) for session in result.sessions.items)


@pytest.mark.gunicorn
def test_the_walk_through_written_with_the_client_runs_against_gunicorn(
    app, db_url: str, tmp_path: Path, walkthrough: ModuleType, installed_client: Path, capsys
):
    with GunicornServer(server_environ(db_url), tmp_path / "gunicorn.log") as server:
        result = walkthrough.main(server.base_url)
        readme = readme_example().replace("http://127.0.0.1:8000", server.base_url)
        exec(compile(readme, "README.md (Python client)", "exec"), {})  # our own README's block
        assert capsys.readouterr().out == "1 of 4 survivors infected\n"  # eve is no survivor
        again = run_to_exit(  # a second run on the same server, through the script's entry point
            [sys.executable, str(EXAMPLES / "walkthrough.py"), server.base_url],
            hermetic_environ(PYTHONPATH=str(installed_client)),
            timeout=60,
        )
    assert log_problems(server.output()) == []

    # Step 2: the retry with the same Idempotency-Key got the first answer again, no second profile.
    assert (result.retry_status, result.retry_replayed) == (201, True)
    assert result.retry_survivor.id == result.ada.id
    assert (result.ada.name, result.ada.gender.value, result.ada.age) == ("Ada", "female", 34)
    assert (result.ada.location.latitude, result.ada.location.longitude) == (-33.92, 18.42)
    # Step 3: 1 water one way, 4 ammunition the other.
    assert result.trade.status.value == "completed"
    ada, bob = result.ada_inventory, result.bob_inventory
    assert (ada.water, ada.food, ada.medication, ada.ammunition, ada.points) == (2, 2, 0, 4, 18)
    assert (bob.water, bob.food, bob.medication, bob.ammunition, bob.points) == (1, 0, 0, 6, 10)
    # Step 4: three reports flag Ada.
    assert [report.survivor_id for report in result.reports] == [result.ada.id] * 3
    assert (result.ada.infected, result.ada_reported.infected, result.ada_reported.infection_reports) == (
        False,
        True,
        3,
    )
    # Step 5: four survivors (the retry made none), one infected.
    report = result.infection_report
    assert (report.total, report.infected, report.non_infected) == (4, 1, 3)
    assert (report.infected_percentage, report.non_infected_percentage) == (25.0, 75.0)
    # Step 6: two logins listed, this one current; then each end takes effect at once.
    assert result.sessions.total == 2
    assert _sessions(result)[0] == (False, "ada-phone/1.0")
    assert _sessions(result)[1][0] is True
    statuses = (result.end_other_sessions, result.phone_afterwards, result.password_change, result.logout)
    assert statuses + (result.token_afterwards,) == (204, 401, 204, 204, 401)

    # The second run registered new accounts and saw the same, the totals now over both runs.
    assert again.returncode == 0, again.stdout
    (accounts,) = [line for line in again.stdout.splitlines() if line.startswith("accounts: ")]
    assert set(result.usernames).isdisjoint(accounts.removeprefix("accounts: ").split(", ")), accounts
    for line in (
        "retry: 201, replayed true",
        "ada: water 2, food 2, ammunition 4, points 18",
        "bob: water 1, food 0, ammunition 6, points 10",
        "ada infected: True after 3 reports",
        "infection report: 2 of 8 infected (25.0%)",
        "end other sessions: 204",
        "the phone afterwards: 401",
        "password change: 204",
        "logout: 204",
        "this token afterwards: 401",
    ):
        assert line in again.stdout.splitlines(), again.stdout
