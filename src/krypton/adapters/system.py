"""The real clock and id generator."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIds:
    """Prefixed ids (`inv_...`): the creation time in milliseconds, then 80 random bits;
    secrets with 256 random bits.

    The time prefix makes new ids sort after older ones, so each insert lands on the last
    page of the id's index instead of a random one: on SQLite that page is already in the
    write-ahead log, and an invoice's transaction logs a few 4 KB pages fewer."""

    def new(self, prefix: str) -> str:
        return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"

    def secret(self) -> str:
        return secrets.token_urlsafe(32)

    def random_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)
