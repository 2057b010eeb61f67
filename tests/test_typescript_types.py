"""openapi-typescript's types of openapi.yaml accept the README's request bodies and type its reads.

A TypeScript client is generated from the contract as often as a Python one: this generates the
types (openapi-typescript, pinned by package-lock.json) into a temporary directory and type-checks
clients/typescript/readme.ts against them with `tsc --noEmit --strict`. `make test` installs both
with `npm ci`; without them this is skipped with a clear message, unless REQUIRE_SERVICES=1 (CI),
where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.conftest import missing_service, sqlite_pass_only
from tests.server import ROOT, hermetic_environ, run_to_exit

NODE_BIN = ROOT / "node_modules" / ".bin"
OPENAPI_TYPESCRIPT = NODE_BIN / "openapi-typescript"
TSC = NODE_BIN / "tsc"
CHECKED = ROOT / "clients" / "typescript" / "readme.ts"
TIMEOUT_SECONDS = 60


def test_openapi_typescript_types_accept_the_readme_bodies(tmp_path: Path):
    sqlite_pass_only("the TypeScript types check")
    missing = [path.name for path in (OPENAPI_TYPESCRIPT, TSC) if not path.exists()]
    if missing:
        missing_service(
            f"{' and '.join(missing)} missing from node_modules/.bin: run `npm ci --no-audit --no-fund`"
        )
    environ = hermetic_environ()
    generated = run_to_exit(
        [str(OPENAPI_TYPESCRIPT), "openapi.yaml", "--output", str(tmp_path / "openapi.ts")],
        environ,
        timeout=TIMEOUT_SECONDS,
    )
    assert generated.returncode == 0, f"openapi-typescript failed on openapi.yaml:\n{generated.stdout}"
    shutil.copy(CHECKED, tmp_path / CHECKED.name)
    checked = run_to_exit(
        [
            *(str(TSC), "--noEmit", "--strict", "--target", "es2022"),
            *("--module", "esnext", "--moduleResolution", "bundler"),
            # Skips checking TypeScript's own lib .d.ts files (3/4 of the time); the generated types
            # are a .ts file, so they are checked with the file that uses them.
            "--skipLibCheck",
            str(tmp_path / CHECKED.name),
        ],
        environ,
        timeout=TIMEOUT_SECONDS,
    )
    assert checked.returncode == 0, (
        f"the types openapi-typescript makes of openapi.yaml refuse {CHECKED.relative_to(ROOT)}:\n"
        + checked.stdout.replace(os.path.relpath(tmp_path, ROOT) + os.sep, "")
    )
