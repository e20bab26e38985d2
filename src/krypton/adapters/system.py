"""The real clock and id generator."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIds:
    """Prefixed ids (`inv_...`) with 96 random bits; secrets with 256."""

    def new(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(12)}"

    def secret(self) -> str:
        return secrets.token_urlsafe(32)

    def random_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)
