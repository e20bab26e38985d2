"""Argon2id password hashing: salted, verified, refusing garbage, and asking for a rehash
when the parameters grow."""

from __future__ import annotations

from krypton.adapters.auth.passwords import Argon2Hasher

# Cheap parameters: the tests check behaviour, not cost.
FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
PASSWORD = "correct horse battery"


def test_a_hash_verifies_its_password_and_no_other() -> None:
    hasher = Argon2Hasher(**FAST)
    stored = hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert PASSWORD not in stored
    assert hasher.verify(stored, PASSWORD)
    assert not hasher.verify(stored, PASSWORD + "!")
    assert not hasher.verify(stored, "")


def test_each_hash_has_its_own_salt() -> None:
    hasher = Argon2Hasher(**FAST)
    first, second = hasher.hash(PASSWORD), hasher.hash(PASSWORD)
    assert first != second
    assert hasher.verify(first, PASSWORD) and hasher.verify(second, PASSWORD)


def test_a_hash_that_is_not_argon2s_verifies_nothing() -> None:
    hasher = Argon2Hasher(**FAST)
    for garbage in ("", "plain text", "$argon2id$v=19$m=8,t=1,p=1$broken",
                    "$2b$12$abcdefghijklmnopqrstuuJ5vYwV0U3bPzXnZ7wqkX0o3W1x6nM7e"):
        assert not hasher.verify(garbage, PASSWORD)
        assert hasher.needs_rehash(garbage)


def test_weaker_parameters_than_todays_ask_for_a_rehash() -> None:
    weak = Argon2Hasher(**FAST).hash(PASSWORD)
    stronger = Argon2Hasher(time_cost=2, memory_cost=16, parallelism=1)
    assert stronger.needs_rehash(weak)
    assert stronger.verify(weak, PASSWORD)  # the old hash still signs the user in
    assert not stronger.needs_rehash(stronger.hash(PASSWORD))


def test_the_defaults_are_argon2_cffis_rfc_9106_profile() -> None:
    assert Argon2Hasher().hash(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_verifying_against_no_account_costs_a_real_verification() -> None:
    hasher = Argon2Hasher(**FAST)
    calls: list[tuple[str, str]] = []
    real = hasher.verify

    def spy(stored: str, password: str) -> bool:
        calls.append((stored, password))
        return real(stored, password)
    hasher.verify = spy  # type: ignore[method-assign]
    hasher.verify_dummy(PASSWORD)
    hasher.verify_dummy("other password")
    assert [p for _, p in calls] == [PASSWORD, "other password"]
    assert calls[0][0] == calls[1][0] and calls[0][0].startswith("$argon2id$v=19$m=8,t=1,p=1$")
