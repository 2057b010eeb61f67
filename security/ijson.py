"""I-JSON (RFC 7493): the JSON every request body must be, stricter than what Python's parser takes.

Python's `json` accepts documents that are not interoperable and that later layers cannot use:
`NaN`/`Infinity`, numbers a double cannot hold (`1e400` becomes inf, `10**30` stays an exact
int no other parser keeps), lone UTF-16 surrogates (`"\\ud800"`, which no UTF-8 encoder, Argon2
or database driver takes), duplicate member names (which one wins differs between parsers), and
nesting deep enough to exhaust the interpreter's recursion limit. Each is refused here, before
any schema sees the document, with a reason a client can act on.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Our documents are at most three levels deep; 32 leaves room and bounds every walk over them.
MAX_DEPTH = 32
# RFC 7493 §2.2: integers outside ±(2**53 - 1) are not exact in an IEEE 754 double.
MAX_SAFE_INTEGER = 2**53 - 1
# A double round-trips through 17 significant decimal digits; more is precision it cannot hold.
MAX_SIGNIFICANT_DIGITS = 17
_SURROGATE = re.compile("[\ud800-\udfff]")
_MANTISSA = re.compile(r"-?(\d+)(?:\.(\d+))?")


class NotIJSON(ValueError):
    """The body is not an I-JSON document; the message says why (safe to show the client)."""


def loads(raw: bytes) -> Any:
    """Parse a request body as I-JSON (RFC 7493), or raise NotIJSON with the reason.

    Returns what json.loads would (dict, list, str, int, float, bool or None), guaranteed: UTF-8
    text, unique member names, every string and name made of Unicode scalar values, integers
    within ±(2**53 - 1), finite doubles with at most 17 significant digits, at most MAX_DEPTH
    levels of arrays and objects.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotIJSON("The body is not UTF-8 text (RFC 7493 §2.1).") from None
    try:
        document = json.loads(
            text,
            object_pairs_hook=_unique_members,
            parse_constant=_no_constant,
            parse_float=_double,
            parse_int=_safe_integer,
        )
    except NotIJSON:
        raise
    except RecursionError:
        raise _too_deep() from None
    except ValueError:  # json.JSONDecodeError
        raise NotIJSON("The request body is not valid JSON.") from None
    _check_structure(document)
    return document


def _too_deep() -> NotIJSON:
    return NotIJSON(f"The body nests arrays and objects more than {MAX_DEPTH} levels deep.")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise NotIJSON("An object names the same member twice (RFC 7493 §2.3).")
    return document


def _no_constant(name: str) -> Any:
    raise NotIJSON(f"{name} is not a JSON number (RFC 8259 §6).")


def _double(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise NotIJSON("A number is too large for an IEEE 754 double (RFC 7493 §2.2).")
    integer, fraction = _MANTISSA.match(literal).groups()  # type: ignore[union-attr]
    digits = (integer + (fraction or "")).lstrip("0").rstrip("0")
    if len(digits) > MAX_SIGNIFICANT_DIGITS or (value == 0.0 and digits):
        raise NotIJSON("A number has more precision than an IEEE 754 double holds (RFC 7493 §2.2).")
    return value


def _safe_integer(literal: str) -> int:
    # Checked on the text first: a huge literal must not reach int() (which refuses > 4300 digits).
    if len(literal.lstrip("-")) > len(str(MAX_SAFE_INTEGER)) or abs(int(literal)) > MAX_SAFE_INTEGER:
        raise NotIJSON("An integer is outside ±(2**53 - 1), the exact range of a double (RFC 7493 §2.2).")
    return int(literal)


def _check_structure(document: Any) -> None:
    """Depth and Unicode scalar values, walked without recursion."""
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise NotIJSON(
                    "A string or member name holds a lone UTF-16 surrogate: it is not Unicode "
                    "text (RFC 7493 §2.1)."
                )
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise _too_deep()
            children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
