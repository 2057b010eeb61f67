"""The benchmark runs end to end on a tiny dataset (`python -m bench.run --quick`).

Only that it runs and reports every scenario is checked, never how fast: timings belong to the
benchmark's own report. It needs wrk (`.ci/system-packages`); without it the test is skipped
with a message, or fails under REQUIRE_SERVICES=1 (CI). It runs in the SQLite pass only: the
benchmark makes its own SQLite database and never touches the suite's.
"""

from __future__ import annotations

import json
import numbers
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import sqlite_pass_only
from tests.server import hermetic_environ, run_to_exit

pytestmark = [pytest.mark.gunicorn, pytest.mark.slow]

SCENARIOS = (
    "list",
    "list_304",
    "invalid_token",
    "report_infection",
    "put_location",
    "infection_report",
    "login",
)
NUMERIC = ("requests_per_second", "p50_ms", "p99_ms", "ratio", "ratio_same_shape", "rss_mb_max", "rss_mb_sum")
SCALE = ("report_infection", "report_resources", "list_first_page", "list_deep_page", "list_deep_page_cursor")
TIME_LIMIT = 60.0


def _require_wrk() -> None:
    if shutil.which("wrk") is not None:
        return
    message = "wrk is not installed (install it once with `.ci/system-packages`, as root)"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and REQUIRE_SERVICES=1")
    pytest.skip(message + ": skipping the benchmark's run")


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def test_bench_quick_reports_every_scenario(tmp_path: Path):
    sqlite_pass_only("the benchmark's test")
    _require_wrk()
    command = [sys.executable, "-m", "bench.run", "--quick", "--database", "sqlite", "--out", str(tmp_path)]
    result = run_to_exit(command, hermetic_environ(), timeout=TIME_LIMIT)
    assert result.returncode == 0, result.stdout

    [json_path] = tmp_path.glob("bench-*.json")
    [markdown_path] = tmp_path.glob("bench-*.md")
    results = json.loads(json_path.read_text())
    assert results["ceilings"] and all(
        _is_number(c["requests_per_second"]) for c in results["ceilings"].values()
    )
    [run] = results["runs"]
    assert run["database"] == "sqlite"
    assert tuple(run["scenarios"]) == SCENARIOS
    for name, scenario in run["scenarios"].items():
        for key in NUMERIC:
            assert _is_number(scenario[key]), (name, key, scenario[key])
        assert scenario["requests"] > 0, name
        # Every request got the status its scenario is about, and the server logged no failure.
        assert scenario["unexpected_status"] == 0, (name, scenario)
        assert scenario["log_problems"] == 0, (name, scenario["log_problem_sample"])
    # Distinct reporter/reported pairs: the first-report path, not the repeat path.
    assert run["scenarios"]["infection_report"]["first_report_share"] >= 0.9

    scale = run["scale"]
    assert scale["survivors"] >= 2000
    for name in SCALE:
        for kind in ("cold", "cached"):
            assert _is_number(scale["measures"][name][kind]["p50_ms"]), (name, kind)
    assert _is_number(scale["measures"]["location_update"]["write"]["p50_ms"])

    table = markdown_path.read_text()
    assert "| server | scenario |" in table
    for name in SCENARIOS:
        assert f"| {name} |" in table
    assert "| server | scenario |" in result.stdout  # printed as well as written


def test_bench_skip_load_runs_only_the_scale_run(tmp_path: Path):
    sqlite_pass_only("the benchmark's test")
    command = [
        *(sys.executable, "-m", "bench.run", "--quick", "--skip-load", "--database", "sqlite"),
        *("--out", str(tmp_path)),
    ]
    result = run_to_exit(command, hermetic_environ(), timeout=TIME_LIMIT)
    assert result.returncode == 0, result.stdout

    [json_path] = tmp_path.glob("bench-*.json")
    results = json.loads(json_path.read_text())
    assert results["ceilings"] == {} and results["settings"]["skip_load"] is True
    [run] = results["runs"]
    assert run["scenarios"] == {}
    scale = run["scale"]
    for name in SCALE:
        for kind in ("cold", "cached"):
            assert _is_number(scale["measures"][name][kind]["p50_ms"]), (name, kind)
    # The cursor measure is the page after page deep - 1, reached by its next link.
    assert (
        f"page={scale['deep_page']}&" in scale["deep_page_cursor"] and "after=" in scale["deep_page_cursor"]
    )
    assert "scale run only (--skip-load)" in result.stdout


def test_bench_empties_a_database_of_its_own_but_never_a_test_one(monkeypatch: pytest.MonkeyPatch):
    """The benchmark's default database (`walk`) is not a test database: the suite's guard, which
    refuses anything but one, must not stop it (it did: `make bench` failed at its PostgreSQL pass)."""
    import tests.conftest
    from bench import seed

    emptied: list[str] = []
    monkeypatch.setattr(tests.conftest, "drop_public_schema", emptied.append)
    seed.reset_database("postgresql+psycopg://127.0.0.1:5432/walk")
    assert emptied == ["postgresql+psycopg://127.0.0.1:5432/walk"]
    for name in ("test", "test_cluster"):
        with pytest.raises(SystemExit):
            seed.reset_database(f"postgresql+psycopg://127.0.0.1:5432/{name}")
    assert len(emptied) == 1
