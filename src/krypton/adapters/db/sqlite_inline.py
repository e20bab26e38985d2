"""SQLite run inline on the event loop, behind the part of SQLAlchemy's async API we use.

SQLAlchemy's async engine runs each statement through greenlet switches and its
adapter's coroutines, and aiosqlite adds a thread hand-off per statement on top (0.2-0.3
ms each). Measured for one transaction (begin, insert, select, commit) on this machine:
the async engine over connections that skip aiosqlite's thread 0.24 ms of CPU, a plain
SQLAlchemy Connection 0.12 ms, raw sqlite3 0.012 ms.
So on SQLite the repositories get a plain (synchronous) SQLAlchemy Connection on the
standard sqlite3 driver, wrapped in `InlineConnection`, whose methods are coroutines
only so that the same repository code also runs on PostgreSQL's AsyncConnection.

Running statements on the loop's thread is safe because nothing here waits for a lock:
connections are handed out by an asyncio semaphore the size of their pool (one writer,
a few WAL readers), so taking one queues without blocking the loop, and WAL readers
never wait for the writer. Only another process writing at the same moment (a CLI
command) can make a statement wait, for at most the busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.sql.selectable import TypedReturnsRows

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound=tuple[Any, ...])


class InlineConnection:
    """One pooled connection; `await engine.connect()` or `async with engine.connect()`."""

    def __init__(self, engine: InlineEngine) -> None:
        self._engine = engine
        self._sync: sa.Connection | None = None

    async def _open(self) -> InlineConnection:
        self._sync = await self._engine.checkout()
        return self

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> InlineConnection:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def sync_connection(self) -> sa.Connection:
        assert self._sync is not None, "connection not open"
        return self._sync

    @property
    def dialect(self) -> Dialect:
        return self._engine.sync_engine.dialect

    @overload
    async def execute(self, statement: TypedReturnsRows[R],
                      parameters: Any = None) -> CursorResult[R]: ...

    @overload
    async def execute(self, statement: sa.Executable,
                      parameters: Any = None) -> CursorResult[Any]: ...

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> CursorResult[Any]:
        return self.sync_connection.execute(statement, parameters)

    async def run_sync(self, fn: Callable[Concatenate[sa.Connection, P], T],
                       *args: P.args, **kwargs: P.kwargs) -> T:
        return fn(self.sync_connection, *args, **kwargs)

    async def begin(self) -> None:
        self.sync_connection.begin()

    async def commit(self) -> None:
        self.sync_connection.commit()

    async def rollback(self) -> None:
        self.sync_connection.rollback()

    def in_transaction(self) -> bool:
        return self.sync_connection.in_transaction()

    async def close(self) -> None:
        if self._sync is not None:
            sync, self._sync = self._sync, None
            self._engine.checkin(sync)

    def checkpoint_blocking(self) -> tuple[int, int, int]:
        """PRAGMA wal_checkpoint(PASSIVE): (busy, frames in the log, frames copied). It
        blocks for as long as the copy takes (Database.checkpoint decides where it runs)."""
        driver: sqlite3.Connection = self.sync_connection.connection.driver_connection  # type: ignore[assignment]
        busy, log, copied = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(log), int(copied)


class InlineEngine:
    """A pool of `size` SQLite connections for one database file."""

    def __init__(self, path: str, *, size: int, timeout: float) -> None:
        self.size = size
        self.sync_engine = sa.create_engine(
            "sqlite://", poolclass=sa.QueuePool, pool_size=size, max_overflow=0,
            # The unit of work always ends its transaction itself: no reset round trip.
            pool_reset_on_return=None,
            # isolation_level=None: the driver never opens transactions; the engine's
            # "begin" listener (database.py) issues BEGIN itself. The loop's thread is the
            # only user, but the checkpoint runs a held connection on a worker thread.
            creator=lambda: sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                            check_same_thread=False))
        self.slots = asyncio.Semaphore(size)
        # SQLAlchemy Connections kept open between uses: checking one out of the pool and
        # back costs more than a short transaction's statements (about 30 µs).
        self._idle: list[sa.Connection] = []

    @property
    def dialect(self) -> Dialect:
        return self.sync_engine.dialect

    def connect(self) -> InlineConnection:
        return InlineConnection(self)

    async def checkout(self) -> sa.Connection:
        await self.slots.acquire()
        try:
            return self._idle.pop() if self._idle else self.sync_engine.connect()
        except BaseException:
            self.slots.release()
            raise

    def checkin(self, conn: sa.Connection) -> None:
        try:
            # An open (even read-only) transaction would pin a WAL snapshot and hold back
            # checkpoints: end it. A connection that failed is closed, not kept.
            if conn.in_transaction():
                conn.rollback()
            if conn.invalidated or conn.closed:
                conn.close()
            else:
                self._idle.append(conn)
        except BaseException:
            conn.close()
            raise
        finally:
            self.slots.release()

    async def dispose(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
        self.sync_engine.dispose()
        # A semaphore belongs to the first event loop it waits on; the next user may run
        # another (the CLI prepares on one loop, then uvicorn serves on its own).
        self.slots = asyncio.Semaphore(self.size)
