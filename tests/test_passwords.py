"""security.passwords: Argon2id hashing, rehash-on-verify, the timing guard and the password rules."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type, profiles
from argon2.exceptions import VerificationError

from security.passwords import MAX_LENGTH, MIN_LENGTH, Passwords, password_problem

GOOD = "correct-battery-horse-42"
TOO_COMMON = "This password is too common; choose another."
BAD_LENGTH = f"Length must be between {MIN_LENGTH} and {MAX_LENGTH}."


@pytest.fixture(scope="module")
def fast() -> Passwords:
    return Passwords("fast-tests")


def test_hash_is_argon2id_salted_and_verifiable(fast):
    first, second = fast.hash(GOOD), fast.hash(GOOD)
    assert first.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert GOOD not in first
    assert fast.verify(first, GOOD) == (True, None)


def test_verify_wrong_password_is_false(fast):
    assert fast.verify(fast.hash(GOOD), GOOD + "x") == (False, None)


@pytest.mark.parametrize(
    "stored", ["", "not-a-hash", "$2b$12$abcdefghijklmnopqrstuv", "$argon2id$v=19$m=8,t=1,p=1$"]
)
def test_verify_unusable_stored_hash_is_false(fast, stored):
    assert fast.verify(stored, GOOD) == (False, None)


@pytest.mark.parametrize(
    "stored",
    [
        "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",  # memory cost too small
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$",  # empty output
    ],
)
def test_verify_hash_that_argon2_cannot_check_is_false(fast, stored):
    with pytest.raises(VerificationError):
        fast.hasher.verify(stored, GOOD)  # the library raises: our wrapper must not
    assert fast.verify(stored, GOOD) == (False, None)


@pytest.mark.parametrize(
    "old",
    [
        PasswordHasher(time_cost=2, memory_cost=16, parallelism=1, hash_len=16, salt_len=16),
        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=4, salt_len=8, type=Type.I),
    ],
    ids=["other-parameters", "argon2i"],
)
def test_verify_outdated_hash_returns_a_current_one(fast, old):
    ok, new_hash = fast.verify(old.hash(GOOD), GOOD)
    assert ok is True
    assert new_hash is not None and new_hash.startswith("$argon2id$")
    assert fast.verify(new_hash, GOOD) == (True, None)


def test_verify_outdated_hash_with_wrong_password_returns_nothing(fast):
    old = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(GOOD)
    assert fast.verify(old, "wrong-password-1") == (False, None)


def test_dummy_verify_does_a_real_verification(fast, monkeypatch):
    calls = []
    real = Passwords.verify

    def spy(self, stored, password):
        calls.append((stored, password))
        return real(self, stored, password)

    monkeypatch.setattr(Passwords, "verify", spy)
    assert fast.dummy_verify(GOOD) is None
    ((stored, password),) = calls
    assert stored.startswith("$argon2id$")
    assert password == GOOD


def test_dummy_hash_uses_the_profiles_parameters():
    """The dummy costs what a real account's hash costs, or the timing guard would not hide anything."""
    fast = Passwords("fast-tests")
    assert not fast.hasher.check_needs_rehash(fast._dummy_hash)


def test_default_profile_is_rfc_9106_low_memory():
    passwords = Passwords()
    expected = profiles.RFC_9106_LOW_MEMORY
    hasher = passwords.hasher
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
        expected.time_cost,
        expected.memory_cost,
        expected.parallelism,
    )
    assert hasher.type is Type.ID
    assert not hasher.check_needs_rehash(passwords._dummy_hash)


def test_hash_of_one_profile_is_rehashed_by_the_other(fast):
    ok, new_hash = Passwords().verify(fast.hash(GOOD), GOOD)
    assert ok and new_hash is not None


def test_unknown_profile_is_refused():
    with pytest.raises(KeyError):
        Passwords("none")


# --- password_problem ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "Zq7-wX2!mP4#",  # exactly 12
        "Zq7-wX2!mP4#" * 10 + "Zq7-wX2!",  # exactly 128
        GOOD,
        "abc-defghijklm",  # a run broken by punctuation is not a run
        "ab1cd2ef3gh4",
        "abc" * 5,  # three distinct characters, not a run
        "Ünïcödé-pässwörd",
    ],
)
def test_password_problem_accepts_reasonable_passwords(password):
    assert password_problem(password) is None


@pytest.mark.parametrize("password", ["", "Zq7-wX2!mP4", "Zq7-wX2!mP4#" * 10 + "Zq7-wX2!m"])
def test_password_problem_refuses_length_out_of_bounds(password):
    assert password_problem(password) == BAD_LENGTH


@pytest.mark.parametrize(
    "password",
    [
        "administrator",  # on the list
        "ADMINISTRATOR",  # on the list, in any case
        "correcthorsebatterystaple",
        "000000000000",
        "aaaaaaaaaaaa",  # one distinct character
        "abababababab",  # two
        "abcdefghijklm",  # ascending letters
        "ABCDEFGHIJKLM",
        "mlkjihgfedcba",  # descending letters
        "1234567890123",  # ascending digits, wrapping 9 -> 0
        "9876543210987",  # descending digits, wrapping 0 -> 9
    ],
)
def test_password_problem_refuses_common_passwords(password):
    assert password_problem(password) == TOO_COMMON
