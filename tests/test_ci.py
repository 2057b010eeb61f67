"""CI's preparation: one script, .ci/system-packages, installs what the tests start themselves,
and both CIs run it: .ci/run (which the GitHub workflow runs as it is) and the workflow's scan job.

Why: the workflow used to run `make test` with REQUIRE_SERVICES=1 on a runner that nothing had
given nginx, redis-server or the scanners, so it could not pass, while .ci/run installed them
here. These checks are static, but for the script's `--list`, which changes nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import yaml

from tests.drill.run import REQUIRED_PROGRAMS
from tests.server import ROOT, hermetic_environ, run_to_exit

PREPARE = ROOT / ".ci" / "system-packages"
CI_RUN = ROOT / ".ci" / "run"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
# Programs found by absolute path or by name other than `shutil.which("…")` literals: the browser
# pair (tests/test_docs_browser.py), PostgreSQL's server binaries (tests/cluster/services.py) and
# client programs (api/backup.py, the backup test), and curl (the README's walk-through).
OTHER_PROGRAMS = {
    *("chromium", "chromedriver"),
    *("initdb", "pg_ctl", "postgres", "pg_dump", "pg_restore"),
    "curl",
}


def commands(script: Path) -> list[str]:
    """A shell script's lines that do something (no blank lines, no comments)."""
    lines = [line.strip() for line in script.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def workflow() -> dict[str, Any]:
    document = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(document, dict)
    return document


def runs(job: str) -> list[str]:
    """The `run:` commands of one job of the workflow, in order."""
    return [step["run"] for step in workflow()["jobs"][job]["steps"] if "run" in step]


def programs_the_tests_look_up() -> set[str]:
    """Every program a test, the drill or the benchmark finds with shutil.which("name")."""
    found = set(REQUIRED_PROGRAMS) | OTHER_PROGRAMS
    for path in [*ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/*.py")]:
        if path.name != Path(__file__).name:  # this file finds bash for itself
            found |= set(re.findall(r'shutil\.which\("([^"/]+)"\)', path.read_text()))
    return found


def test_ci_run_prepares_the_machine_before_it_tests():
    lines = commands(CI_RUN)

    prepare = lines.index(".ci/system-packages")

    assert prepare < lines.index("make test") < lines.index("make drill")


def test_the_workflow_runs_ci_run_itself_as_root_with_its_services_and_settings():
    job = workflow()["jobs"]["tests"]
    (run,) = runs("tests")  # nothing beside it that could drift from .ci/run

    assert re.match(r"^sudo env ", run) and run.rstrip().endswith(" .ci/run"), run
    # sudo resets the environment: the job's settings and the set-up Python must be handed over.
    for name in ("PATH", "REQUIRE_SERVICES", "DATABASE_URL", "REDIS_URL"):
        assert f'"{name}=${name}"' in run, name
    assert job["env"]["REQUIRE_SERVICES"] == "1"
    assert set(job["services"]) == {"postgres", "redis"}
    assert job["env"]["DATABASE_URL"].endswith("@127.0.0.1:5432/test")
    assert job["env"]["REDIS_URL"].startswith("redis://127.0.0.1:6379/")


def test_the_scan_job_prepares_the_machine_with_the_same_script_before_it_scans():
    scan = runs("security")

    prepare = scan.index("sudo .ci/system-packages")

    assert prepare < scan.index("make scan")


def test_no_workflow_step_installs_system_packages_another_way():
    every_run = [run for job in workflow()["jobs"] for run in runs(job)]

    assert not [run for run in every_run if re.search(r"\b(apt-get|apt|dpkg|snap)\b", run)], every_run


def test_the_script_checks_every_program_the_tests_look_up():
    script = PREPARE.read_text()

    unchecked = sorted(
        program
        for program in programs_the_tests_look_up()
        if not re.search(rf"have {re.escape(program)}(?![\w-])|/{re.escape(program)}\"", script)
    )

    assert not unchecked, f".ci/system-packages does not check for (and install): {unchecked}"


def stub_path(directory: Path, programs: set[str]) -> str:
    """A PATH holding an executable stub for each program, and nothing else."""
    directory.mkdir()
    for program in programs:
        stub = directory / program
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return str(directory)


def listed(tmp_path: Path, programs: set[str]) -> list[str]:
    """What `.ci/system-packages --list` would install on a machine with only these programs."""
    path = stub_path(tmp_path / "bin", programs)
    environ = hermetic_environ(PATH=path, PG_BIN=path)
    bash = shutil.which("bash")
    assert bash
    result = run_to_exit([bash, str(PREPARE), "--list"], environ)
    assert result.returncode == 0, result.stdout
    return result.stdout.split()


def test_the_script_is_a_no_op_where_everything_is_there(tmp_path: Path):
    programs = programs_the_tests_look_up() | {"etcdctl", "ip", "runuser"}

    assert listed(tmp_path, programs) == []


def test_the_script_names_the_package_of_each_missing_program(tmp_path: Path):
    programs = programs_the_tests_look_up() | {"etcdctl", "ip", "runuser"}

    missing = listed(tmp_path, programs - {"wrk", "chromedriver", "etcdctl", "sqlmap"})

    assert missing == ["chromium-driver", "wrk", "etcd-client", "sqlmap"]


def test_the_script_and_ci_run_are_executable():
    for script in (PREPARE, CI_RUN):
        assert os.access(script, os.X_OK), script
