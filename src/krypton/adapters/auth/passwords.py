"""Password hashing with Argon2id (argon2-cffi): the `PasswordHasher` port."""

from __future__ import annotations

import secrets

import argon2
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2Hasher:
    """argon2-cffi's hasher with its defaults (RFC 9106's low-memory profile: 3 passes over
    64 MiB, 4 lanes) unless told otherwise; tests pass cheap parameters."""

    def __init__(self, *, time_cost: int = argon2.DEFAULT_TIME_COST,
                 memory_cost: int = argon2.DEFAULT_MEMORY_COST,
                 parallelism: int = argon2.DEFAULT_PARALLELISM) -> None:
        self._hasher = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_cost,
                                             parallelism=parallelism)
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            # A wrong password, or a hash that is not Argon2's: either way, not this password.
            return False

    def verify_dummy(self, password: str) -> None:
        if self._dummy is None:  # made on first need, with this hasher's own parameters
            self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        self.verify(self._dummy, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True
