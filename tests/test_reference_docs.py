"""The user-facing documents against what the code and the spec say: docs/api.md, the reference
client authors read, against openapi.yaml; the README's configuration table against the settings
the app and gunicorn read; and every document of the repository against what a clone holds.

Why: a reference written by hand drifts from the code the day an operation or a status is added,
and a link to a file outside the repository works for its authors and for nobody who clones it.
These checks are static (no server, no database).
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

import pytest
import yaml

from api.config import ENVIRONMENT_NAMES
from tests.server import ROOT

REFERENCE = ROOT / "docs" / "api.md"
README = ROOT / "README.md"
METHODS = ("get", "post", "put", "patch", "delete")
# An operation's heading, and the line of statuses right under it: the format docs/api.md keeps.
OPERATION_HEADING = re.compile(r"^### (GET|POST|PUT|PATCH|DELETE) (/\S*)$", re.M)
STATUS_LINE = re.compile(r"^Statuses: (\d{3}(?:, \d{3})*)$")
# `METHOD /path` in code spans, wherever a document names an operation (a query string is cut off).
NAMED_OPERATION = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
# What names the contract files that live beside the repository, never in it.
OUTSIDE_NAMES = re.compile(r"\bAPI\.md\b|\bSECURITY\.md\b|\bshared/|\bcontract §")
# Settings read from the environment outside api/config.py's table: gunicorn.conf.py's own.
GUNICORN_SETTINGS = {"GUNICORN_THREADS", "FORWARDED_ALLOW_IPS"}
BINARY_SUFFIXES = {".png", ".ico", ".gz", ".woff", ".woff2", ".db", ".pyc"}


def spec_operations() -> dict[tuple[str, str], set[int]]:
    """(METHOD, path) -> the statuses openapi.yaml declares for it."""
    document = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    return {
        (method.upper(), path): {int(status) for status in item[method]["responses"]}
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    }


def documented_operations() -> list[tuple[tuple[str, str], set[int]]]:
    """Each operation docs/api.md has a heading for, with the statuses its next line lists (in
    order, repeats kept, so a test can find a heading written twice)."""
    lines = REFERENCE.read_text().splitlines()
    found = []
    for number, line in enumerate(lines):
        heading = OPERATION_HEADING.match(line)
        if not heading:
            continue
        following = next((text for text in lines[number + 1 :] if text.strip()), "")
        statuses = STATUS_LINE.match(following)
        assert statuses, f"docs/api.md: {line!r} is not followed by a 'Statuses: …' line"
        found.append(((heading[1], heading[2]), {int(code) for code in statuses[1].split(", ")}))
    return found


def template(path: str) -> str:
    """A path with every {parameter} alike: the README writes {id} where the spec has {trade_id}."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def ignored_patterns() -> list[str]:
    """.gitignore's patterns, plus .git itself."""
    lines = (ROOT / ".gitignore").read_text().splitlines()
    kept = [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]
    return [".git", *kept]


def tracked_text_files() -> list[Path]:
    """The text files a clone holds (or will, once committed): the working tree without what
    .gitignore leaves out. Read from the disk, not from git: CI runs the suite as root in a
    checkout another user owns, where git refuses to look ("dubious ownership")."""
    patterns = ignored_patterns()

    def ignored(path: Path) -> bool:
        relative = path.relative_to(ROOT).as_posix()
        return any(fnmatch.fnmatch(path.name, p) or fnmatch.fnmatch(relative, p) for p in patterns)

    files = []
    for directory, subdirectories, names in os.walk(ROOT):
        subdirectories[:] = [name for name in subdirectories if not ignored(Path(directory) / name)]
        for name in names:
            path = Path(directory) / name
            if not ignored(path) and path.suffix not in BINARY_SUFFIXES:
                files.append(path)
    return files


def markdown_documents() -> list[Path]:
    return [path for path in tracked_text_files() if path.suffix == ".md"]


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors for a document's headings: lower case, punctuation dropped, spaces to -."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


# ---- docs/api.md against openapi.yaml --------------------------------------------------------


def test_every_operation_of_the_spec_is_documented():
    documented = {operation for operation, _ in documented_operations()}

    missing = sorted(set(spec_operations()) - documented)

    assert not missing, f"docs/api.md lacks a '### METHOD /path' section for: {missing}"


def test_every_documented_operation_is_in_the_spec():
    spec = spec_operations()

    unknown = sorted(operation for operation, _ in documented_operations() if operation not in spec)

    assert not unknown, f"docs/api.md documents operations openapi.yaml does not have: {unknown}"


def test_each_operation_is_documented_once():
    headings = [operation for operation, _ in documented_operations()]

    assert len(headings) == len(set(headings)), sorted({h for h in headings if headings.count(h) > 1})


def test_each_operation_lists_only_statuses_the_spec_declares_for_it():
    spec = spec_operations()

    undeclared = {
        operation: sorted(statuses - spec[operation])
        for operation, statuses in documented_operations()
        if operation in spec and statuses - spec[operation]
    }

    assert not undeclared, f"docs/api.md lists statuses openapi.yaml does not declare: {undeclared}"


def test_each_operation_lists_every_success_the_spec_declares_for_it():
    # A client must handle every 2xx and 304 of an operation: the 200 of a repeated infection
    # report beside its 201, the 304 of a conditional GET.
    spec = spec_operations()

    missing = {
        operation: sorted(code for code in spec[operation] - statuses if 200 <= code < 300 or code == 304)
        for operation, statuses in documented_operations()
        if operation in spec
    }

    assert not {operation: codes for operation, codes in missing.items() if codes}, missing


@pytest.mark.parametrize("document", [REFERENCE, README], ids=lambda path: path.name)
def test_every_operation_a_document_names_exists(document: Path):
    spec = spec_operations()
    known = {(method, template(path)) for method, path in spec}

    named = set(NAMED_OPERATION.findall(document.read_text()))
    if document == REFERENCE:  # the reference names paths exactly as the spec writes them
        unknown = sorted(operation for operation in named if operation not in spec)
    else:
        unknown = sorted((method, path) for method, path in named if (method, template(path)) not in known)

    assert not unknown, f"{document.name} names operations openapi.yaml does not have: {unknown}"


def test_the_readme_points_client_authors_to_the_reference():
    assert "](docs/api.md)" in README.read_text()


# ---- the README's configuration table --------------------------------------------------------


def configuration_table_names() -> set[str]:
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])}


def test_configuration_table_names_every_setting_the_app_and_gunicorn_read():
    listed = configuration_table_names()
    read = set(ENVIRONMENT_NAMES) | GUNICORN_SETTINGS

    assert read <= listed, f"missing from the README's Configuration table: {sorted(read - listed)}"


def test_configuration_table_names_nothing_else():
    listed = configuration_table_names()
    read = set(ENVIRONMENT_NAMES) | GUNICORN_SETTINGS

    assert listed <= read, f"the Configuration table names settings nothing reads: {sorted(listed - read)}"


# ---- what a clone holds ----------------------------------------------------------------------


def test_markdown_links_stay_inside_the_repository_and_resolve():
    broken = []
    for document in markdown_documents():
        text = document.read_text()
        for target in MARKDOWN_LINK.findall(text):
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            where = (document.parent / path).resolve() if path else document
            outside = path.startswith("../") or not where.is_relative_to(ROOT.resolve())
            if outside or not where.exists():
                broken.append(f"{document.relative_to(ROOT)}: ({target})")
            elif anchor and where.suffix == ".md" and anchor not in heading_anchors(where.read_text()):
                broken.append(f"{document.relative_to(ROOT)}: ({target}) has no such heading")

    assert not broken, broken


def test_no_file_names_the_contract_documents_a_clone_lacks():
    # The contract the team worked from lives outside the repository; what users need of it is
    # docs/api.md, and comments cite that instead.
    mentions = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in tracked_text_files()
        if path != Path(__file__)
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE_NAMES.search(line)
    ]

    assert not mentions, "\n".join(mentions)
