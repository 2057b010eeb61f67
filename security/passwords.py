"""Argon2id password hashing with rehash-on-verify and a dummy hash so login time reveals nothing."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from importlib import resources
from typing import ParamSpec, TypeVar

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from gevent import Greenlet, get_hub
from greenlet import getcurrent

MIN_LENGTH = 12
MAX_LENGTH = 128

_HASHERS = {
    # RFC 9106's low-memory recommendation: what production uses.
    "default": PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY),
    # Only the test configuration selects this; the environment cannot.
    "fast-tests": PasswordHasher.from_parameters(profiles.CHEAPEST),
}


_P = ParamSpec("_P")
_R = TypeVar("_R")


def off_the_event_loop(work: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `work` in gevent's pool of native threads when a greenlet calls it, plainly otherwise.

    Argon2 holds a core for tens of milliseconds. In gunicorn's gevent worker every connection
    is a greenlet on one thread, so a hash computed there would stop every other connection of
    the worker, /healthz included; in the hub's threads it runs beside them (argon2 releases
    the GIL) while the calling greenlet waits, at most GUNICORN_THREADS at once per worker
    (gunicorn.conf.py sizes the pool), which also bounds the memory, 64 MiB a hash. Called
    outside a greenlet (the tests, the flask CLI, the gunicorn master), nothing else could run
    meanwhile anyway: a plain call.
    """

    @functools.wraps(work)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if isinstance(getcurrent(), Greenlet):
            return get_hub().threadpool.apply(work, args, kwargs)
        return work(*args, **kwargs)

    return run


class Passwords:
    """Hashing bound to one cost profile."""

    def __init__(self, profile: str = "default") -> None:
        self.hasher = _HASHERS[profile]
        self._dummy_hash = self.hasher.hash("not-a-real-password-just-timing")

    @off_the_event_loop
    def hash(self, password: str) -> str:
        """Hash a new password with Argon2id."""
        return self.hasher.hash(password)

    @off_the_event_loop
    def verify(self, stored_hash: str, password: str) -> tuple[bool, str | None]:
        """Check a password; on success also return a new hash when parameters changed."""
        try:
            self.hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        if self.hasher.check_needs_rehash(stored_hash):
            return True, self.hasher.hash(password)
        return True, None

    def dummy_verify(self, password: str) -> None:
        """Spend the time a real verification would, for an unknown or unusable account."""
        self.verify(self._dummy_hash, password)


@functools.cache
def _common_passwords() -> frozenset[str]:
    text = resources.files("security").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problem(password: str) -> str | None:
    """Why a password is unacceptable, or None: length bounds and the common-password list."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"Length must be between {MIN_LENGTH} and {MAX_LENGTH}."
    lowered = password.lower()
    if lowered in _common_passwords() or len(set(lowered)) <= 2 or _is_sequence(lowered):
        return "This password is too common; choose another."
    return None


def _is_sequence(text: str) -> bool:
    """True for runs such as 1234567890123 or abcdefghijkl that every cracker tries first."""
    if not re.fullmatch(r"[a-z0-9]+", text):
        return False
    steps = {(ord(b) - ord(a)) % 256 for a, b in zip(text, text[1:], strict=False)}
    return steps <= {1, 247} or steps <= {255, 9}
