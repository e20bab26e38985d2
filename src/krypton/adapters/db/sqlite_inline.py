"""SQLite for SQLAlchemy's async engine without a thread hand-off per statement.

aiosqlite runs every statement on a helper thread; waking it and waiting for the answer
cost more than the statement itself (bench/: about 0.2–0.3 ms a statement against tens of
microseconds of SQLite work), and a payment's ingest runs some twenty statements. This
adapter gives SQLAlchemy's aiosqlite dialect (via its `async_creator` hook) connections
that run each statement at once on the event loop's thread. That is safe here because
one process has one writer connection (queued by the pool, never blocking the loop on a
lock) and WAL readers never wait for it; only a second process writing at the same time
(a CLI command) can make a statement wait, for at most the busy timeout.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any


class InlineCursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        self._cursor.execute(sql, () if parameters is None else parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size or self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """The part of aiosqlite's Connection that SQLAlchemy's dialect uses."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection = connection  # the dialect checks it before commit/rollback

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)


def creator(path: str, timeout: float) -> Callable[[], Awaitable[InlineConnection]]:
    async def connect() -> InlineConnection:
        # isolation_level=None: we issue BEGIN ourselves (database.py).
        return InlineConnection(sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                                check_same_thread=False))
    return connect
