"""Users: the lockout rule (5 failures within 15 minutes lock for 15), the password policy
and the stored form of emails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krypton.domain.errors import DomainError
from krypton.domain.roles import Role
from krypton.domain.users import (
    FAILURE_LIMIT,
    FAILURE_WINDOW,
    LOCKOUT,
    AccountLocked,
    Lockout,
    RefreshToken,
    User,
    after_failure,
    after_success,
    check_password,
    locked_for,
    normalize_email,
)

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def fail_at(*minutes: float, state: Lockout | None = None) -> Lockout:
    state = state or Lockout()
    for m in minutes:
        state = after_failure(state, T0 + timedelta(minutes=m))
    return state


def test_five_failures_within_the_window_lock_for_fifteen_minutes() -> None:
    four = fail_at(0, 1, 2, 3)
    assert (four.failures, four.locked_until) == (4, None)
    assert locked_for(four, T0 + timedelta(minutes=3)) == 0
    five = after_failure(four, T0 + timedelta(minutes=14))
    assert five.locked_until == T0 + timedelta(minutes=14) + LOCKOUT
    assert locked_for(five, T0 + timedelta(minutes=14)) == 15 * 60
    assert locked_for(five, T0 + timedelta(minutes=28, seconds=59, microseconds=1)) == 1
    assert locked_for(five, T0 + timedelta(minutes=29)) == 0  # over at its end, not a moment later


def test_failures_spread_wider_than_the_window_never_lock() -> None:
    state = fail_at(*(i * 4 for i in range(4)), 15, 16, 17, 18)  # the fifth comes at minute 15
    assert state.locked_until is None
    assert (state.failures, state.first_failure_at) == (4, T0 + timedelta(minutes=15))


def test_a_lock_starts_a_new_streak_and_success_clears_everything() -> None:
    locked = fail_at(0, 0, 0, 0, 0)
    assert (locked.failures, locked.first_failure_at) == (0, None)
    again = after_failure(locked, T0 + LOCKOUT)
    assert (again.failures, again.locked_until) == (1, locked.locked_until)
    assert after_success() == Lockout()


@given(st.lists(st.floats(min_value=0, max_value=120, allow_nan=False), max_size=30))
def test_never_locked_without_five_failures_inside_one_window(offsets: list[float]) -> None:
    state = Lockout()
    times = sorted(T0 + timedelta(minutes=m) for m in offsets)
    for i, at in enumerate(times):
        before = state.locked_until
        state = after_failure(state, at)
        if state.locked_until != before:  # this failure locked the account
            assert state.locked_until == at + LOCKOUT
            assert i + 1 >= FAILURE_LIMIT
            assert at - times[i + 1 - FAILURE_LIMIT] < FAILURE_WINDOW


def test_account_locked_says_how_long_in_minutes() -> None:
    assert AccountLocked(899).message == ("Too many failed sign-ins for this account; try again in "
                                          "15 minutes.")
    assert AccountLocked(1).message.endswith("in 1 minute.")


@pytest.mark.parametrize(("password", "says"), [
    ("short-pass1", "The password has 11 characters; choose one of at least 12."),
    ("a" * 12, "The password repeats one character; choose one with different characters."),
    ("x" * 1001, "The password is longer than 1000 characters; choose a shorter one."),
])
def test_the_password_policy_says_what_to_fix(password: str, says: str) -> None:
    with pytest.raises(DomainError) as raised:
        check_password(password)
    assert (raised.value.message, raised.value.field) == (says, "password")


def test_twelve_varied_characters_pass() -> None:
    assert check_password("aaaaaaaaaaab") == "aaaaaaaaaaab"
    assert check_password("correct horse") == "correct horse"


def test_emails_are_stored_trimmed_and_lower_cased() -> None:
    assert normalize_email("  Ada@Example.COM ") == "ada@example.com"
    for bad in ("ada", "@example.com", "ada@localhost", "a da@example.com", "ada@.", ""):
        with pytest.raises(DomainError) as raised:
            normalize_email(bad)
        assert raised.value.field == "email"
    with pytest.raises(DomainError, match="longer than 254"):
        normalize_email("a" * 250 + "@example.com")


def test_secrets_stay_out_of_reprs() -> None:
    user = User("usr_1", "ada@example.com", Role.OWNER, "mer_1", T0, "$argon2id$secret-hash")
    token = RefreshToken("rft_1", "usr_1", "ses_1", "secret-token-hash", T0, T0 + LOCKOUT)
    assert "secret" not in repr(user) and "secret" not in repr(token)


def test_a_user_has_a_merchant_unless_it_is_the_operator() -> None:
    with pytest.raises(DomainError):
        User("usr_1", "ada@example.com", Role.VIEWER, None, T0, "h")
    with pytest.raises(DomainError):
        User("usr_1", "ada@example.com", Role.OPERATOR, "mer_1", T0, "h")
