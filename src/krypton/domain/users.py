"""Dashboard users: who they are, the password policy, and when repeated failed sign-ins
lock an account."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from krypton.domain.errors import DomainError
from krypton.domain.roles import Role, check_membership, grants_of

MIN_PASSWORD_LENGTH = 12
# Hashing cost grows with the input: a bound keeps one request from buying much CPU.
MAX_PASSWORD_LENGTH = 1000
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit for a forward path

# FAILURE_LIMIT failed sign-ins within FAILURE_WINDOW of the first lock the account for
# LOCKOUT: slows an online guesser to a handful of tries per quarter hour.
FAILURE_LIMIT = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)


class InvalidCredentials(DomainError):
    """One answer for an unknown email and a wrong password: no telling which."""

    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__("The email or password is wrong; check both and try again.")


class AccountLocked(DomainError):
    code = "account_locked"

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(f"Too many failed sign-ins for this account; try again in {minutes} "
                         f"minute{'s' if minutes != 1 else ''}.")
        self.retry_after = retry_after


class AccountDisabled(DomainError):
    """Said only to someone who gave the right password: no one else learns the account exists."""

    code = "account_disabled"

    def __init__(self) -> None:
        super().__init__("This account is disabled; ask an owner of your merchant to enable it.")


class SessionEnded(DomainError):
    code = "session_ended"

    def __init__(self) -> None:
        super().__init__("Your session has ended or is not valid; sign in again.")


@dataclass(frozen=True, slots=True)
class Lockout:
    """An account's current streak of failed sign-ins, and its lock if the streak tripped it."""

    failures: int = 0
    first_failure_at: datetime | None = None
    locked_until: datetime | None = None


def locked_for(state: Lockout, now: datetime) -> int:
    """Seconds the account stays locked (0: not locked)."""
    if state.locked_until is None or now >= state.locked_until:
        return 0
    return math.ceil((state.locked_until - now).total_seconds())


def after_failure(state: Lockout, now: datetime) -> Lockout:
    """The streak after one more failed sign-in at `now`."""
    fresh = state.first_failure_at is None or now - state.first_failure_at >= FAILURE_WINDOW
    failures, first = (1, now) if fresh else (state.failures + 1, state.first_failure_at)
    if failures >= FAILURE_LIMIT:
        # The streak starts over once locked: after the lock, FAILURE_LIMIT more tries.
        return Lockout(0, None, now + LOCKOUT)
    return Lockout(failures, first, state.locked_until)


def after_success() -> Lockout:
    return Lockout()


def check_password(password: str) -> str:
    """The password if the policy accepts it, else DomainError saying what to change."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(f"The password has {len(password)} characters; choose one of at least "
                          f"{MIN_PASSWORD_LENGTH}.", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise DomainError(f"The password is longer than {MAX_PASSWORD_LENGTH} characters; choose a "
                          "shorter one.", field="password")
    if len(set(password)) == 1:
        raise DomainError("The password repeats one character; choose one with different "
                          "characters.", field="password")
    return password


def normalize_email(text: str) -> str:
    """The stored form of an email: trimmed and lower-cased, so that addresses differing only
    in case are one user."""
    email = text.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain.strip(".") or any(c.isspace() for c in email):
        raise DomainError("The email is not an address like name@example.com; check it.",
                          field="email")
    if len(email) > MAX_EMAIL_LENGTH:
        raise DomainError(f"The email is longer than {MAX_EMAIL_LENGTH} characters; use a shorter "
                          "address.", field="email")
    return email


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    role: Role
    merchant_id: str | None
    created_at: datetime
    # Never shown in a repr: users end up in logs and tracebacks.
    password_hash: str = field(repr=False)
    lockout: Lockout = Lockout()
    disabled_at: datetime | None = None

    def __post_init__(self) -> None:
        check_membership(self.role, self.merchant_id)


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """What a verified access token says: who signed in, as what, for which merchant."""

    user_id: str
    role: Role
    merchant_id: str | None
    session_id: str  # the refresh-token family the token was issued under
    # SHA-256 of the CSRF token issued with it: a double-submitted token must be this one.
    csrf_hash: str
    expires_at: datetime

    @property
    def grants(self) -> frozenset[str]:
        # From the table at every request, not from the token: a change to the table, or a
        # forged claim, never outlives the code.
        return grants_of(self.role)


ACCESS_TTL = timedelta(minutes=10)
# A session ends this long after sign-in, however often it is refreshed: rotation renews the
# tokens, never the deadline.
SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """One refresh token of a session (a family: the sign-in's token and each rotated from
    it). Only its SHA-256 is kept; each may be spent once."""

    id: str
    user_id: str
    family_id: str
    token_hash: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and self.revoked_at is None and now < self.expires_at
