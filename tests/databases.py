"""Which databases the test suite may empty: checked by conftest, and by `make test` before it
spends minutes on the SQLite pass (python -m tests.databases URL: exit 4 with the reason)."""

from __future__ import annotations

import re
import sys

from sqlalchemy import make_url

# A database the suite may empty is named as a test database: "test", "test_…" or "…_test".
TEST_DATABASE_NAME = re.compile(r"^(test|test_\w+|\w+_test)$")


def refusal_to_empty(url: str) -> str | None:
    """Why the suite must not empty the PostgreSQL database at `url`, or None when it may."""
    name = make_url(url).database or ""
    if TEST_DATABASE_NAME.fullmatch(name):
        return None
    return (
        f"refusing to run the PostgreSQL pass on database {name!r}: the suite empties the database "
        "it is given (DROP SCHEMA public CASCADE), so it only takes one named as a test database "
        "('test', 'test_<name>' or '<name>_test'). Set TEST_DATABASE_URL (or DATABASE_URL for "
        "make test) to such a database."
    )


def main(argv: list[str]) -> int:
    """Exit 0 when every PostgreSQL URL given may be emptied, else 4 with the reason."""
    for url in argv:
        refusal = refusal_to_empty(url) if url.startswith("postgresql") else None
        if refusal:
            print(refusal, file=sys.stderr)  # noqa: T201 - a command-line check
            return 4
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
