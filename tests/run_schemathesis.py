"""Schemathesis against the real app: gunicorn on loopback, a fresh SQLite database, the admin.

Run by `make test` as `python -m tests.run_schemathesis [extra schemathesis options]` (pytest
does not collect it). The settings (checks, phases, seed, bounds, expected statuses, how the
admin's token is fetched) live in `schemathesis.toml` at the repository root; this script brings
the server up with limits high enough for fuzzing, logs in as the admin to seed two survivors,
runs `schemathesis run openapi.yaml --url …`, and stops the server. Its Robot CPU is a loopback
stub serving the bundled snapshot, so the run never reaches the internet. It exits non-zero when
Schemathesis reports any failure or error, or when the server logged a 5xx, a traceback or an
error record during the run.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from tests.server import (
    ADMIN_PASSWORD,
    ROOT,
    GunicornServer,
    log_problems,
    seed_survivors,
    whole_app_target,
)

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
RUN_DEADLINE = 300.0  # seconds; schemathesis.toml bounds the run to well under this


def run(server: GunicornServer, extra: list[str], metrics_token: str) -> int:
    """`schemathesis run openapi.yaml` against the server; its exit code (settings: schemathesis.toml)."""
    command = [
        str(SCHEMATHESIS),
        "run",
        "openapi.yaml",
        "--url",
        server.base_url,
        *extra,
    ]
    # schemathesis.toml logs in as the admin with this (and again whenever a token is revoked).
    # /metrics takes its own token (the metricsToken scheme), known only to this run.
    environ = {
        **os.environ,
        "SCHEMATHESIS_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SCHEMATHESIS_METRICS_TOKEN": metrics_token,
    }
    with subprocess.Popen(command, cwd=ROOT, env=environ, stdin=subprocess.DEVNULL) as process:
        try:
            return process.wait(timeout=RUN_DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            print(f"schemathesis did not finish within {RUN_DEADLINE:g}s", file=sys.stderr)  # noqa: T201
            return 1


def main(argv: list[str]) -> int:
    started = time.monotonic()
    metrics_token = secrets.token_urlsafe(32)
    # The Robot CPU is a stub on loopback serving the real snapshot: the run never reaches the internet.
    with whole_app_target("schemathesis-", METRICS_TOKEN=metrics_token) as server:
        with server:
            seed_survivors(server)  # so reads find real objects
            server.mark()
            status = run(server, argv, metrics_token)
        problems = log_problems(server.output_since_mark())
    out = sys.stderr
    if problems:
        print(f"the server logged {len(problems)} problem line(s) during the run:", file=out)  # noqa: T201
        for line in problems[:50]:
            print("  " + line, file=out)  # noqa: T201
    print(f"schemathesis: exit {status}, {time.monotonic() - started:.0f}s in all", file=out)  # noqa: T201
    return 1 if status or problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
