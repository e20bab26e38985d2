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

Group commit (the writer only). A commit writes every page the transaction touched to the
log, and on this machine that was about 80 µs of a 0.5 ms invoice request. A unit of work
here runs inside its own SAVEPOINT of a shared transaction (so one that fails undoes only
itself) and, when it is done, gives the connection back with that transaction still open.
The COMMIT is a callback queued behind the tasks already ready to run, so the requests
that reach their writes on the same turn of the event loop join the batch; it commits
once nobody holds or waits for the writer, or when `group` units have joined. Every unit
of work in the batch waits for that COMMIT before `commit()` returns: nothing is
acknowledged before it is durable, and a reader afterwards sees everything written
before it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeAlias, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import TypedReturnsRows

from krypton.adapters.db import tables

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound=tuple[Any, ...])
Params: TypeAlias = Mapping[str, Any] | Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Prepared:
    """An INSERT/UPDATE/DELETE compiled once for one set of parameter names: its SQL and,
    per placeholder, the parameter it takes (or a constant) and SQLAlchemy's conversion."""

    statement: sa.Executable  # held so that the id in the cache key stays this statement's
    sql: str
    binds: tuple[tuple[str | None, Any, Callable[[Any], Any] | None], ...]

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(constant if name is None else convert(params[name]) if convert
                     else params[name] for name, constant, convert in self.binds)


def prepare(statement: sa.Executable, keys: tuple[str, ...], dialect: Dialect) -> Prepared | None:
    """Compile `statement` for `keys`, or None where SQLAlchemy must run it: Python-side
    column defaults, expanding IN lists, or RETURNING columns that need converting."""
    if not isinstance(statement, UpdateBase):
        return None
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if (compiled.insert_prefetch or compiled.update_prefetch or compiled.literal_execute_params
            or compiled.post_compile_params or compiled.escaped_bind_names
            or compiled.positiontup is None):
        return None
    if any(c.type.dialect_impl(dialect).result_processor(dialect, None) is not None
           for c in compiled.effective_returning or ()):
        return None
    binds: list[tuple[str | None, Any, Callable[[Any], Any] | None]] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if name in keys:
            binds.append((name, None, convert))
        elif bind.callable is None and not bind.required:
            binds.append((None, convert(bind.value) if convert else bind.value, None))
        else:
            return None
    return Prepared(statement, compiled.string, tuple(binds))


class PreparedCache:
    """Statements `prepare`d once per (statement, parameter names), for engines that run
    hot-path writes straight on their driver."""

    def __init__(self, dialect: Callable[[], Dialect]) -> None:
        self._dialect = dialect
        self._prepared: dict[tuple[int, tuple[str, ...]], Prepared | None] = {}

    def get(self, statement: sa.Executable, keys: tuple[str, ...]) -> Prepared | None:
        key = (id(statement), keys)
        if len(self._prepared) > 1000:  # meant for statements built once, but stay bounded
            self._prepared.clear()
        try:
            hit = self._prepared[key]
        except KeyError:
            hit = self._prepared[key] = prepare(statement, keys, self._dialect())
        # An id is reused once its statement is gone: only a hit for this very statement counts.
        if hit is not None and hit.statement is not statement:
            hit = self._prepared[key] = prepare(statement, keys, self._dialect())
        return hit


class InlineConnection:
    """One pooled connection; `await engine.connect()` or `async with engine.connect()`."""

    def __init__(self, engine: InlineEngine) -> None:
        self._engine = engine
        self._sync: sa.Connection | None = None
        # Inside the writer's shared transaction, in a SAVEPOINT of our own (group commit).
        self._member = False

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
    def _driver(self) -> sqlite3.Connection:
        driver: sqlite3.Connection = self.sync_connection.connection.driver_connection  # type: ignore[assignment]
        return driver

    @property
    def dialect(self) -> Dialect:
        return self._engine.sync_engine.dialect

    def _outside_batch(self) -> sa.Connection:
        """The connection, with any batch handed to us committed first: what follows is
        not a unit of work that began in it."""
        if self._engine.batch is not None and not self._member:
            self._engine.commit_batch(self.sync_connection)
        return self.sync_connection

    @overload
    async def execute(self, statement: TypedReturnsRows[R],
                      parameters: Any = None) -> CursorResult[R]: ...

    @overload
    async def execute(self, statement: sa.Executable,
                      parameters: Any = None) -> CursorResult[Any]: ...

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> CursorResult[Any]:
        return self._outside_batch().execute(statement, parameters)

    def write(self, statement: sa.Executable, params: Params) -> list[tuple[Any, ...]]:
        """Run an INSERT/UPDATE/DELETE (once per mapping given) straight on the driver;
        the rows it RETURNs, unconverted. SQLAlchemy's execution path around a statement
        costs several times the statement itself; this keeps only its compiled SQL and
        parameter conversions (see `prepare`), and its error classes."""
        conn = self._outside_batch()
        rows = [params] if isinstance(params, Mapping) else params
        assert rows, "write() needs at least one row of parameters"
        prepared = self._engine.prepared(statement, tuple(rows[0]))
        if prepared is None:
            result = conn.execute(statement, params)
            return [tuple(row) for row in result] if result.returns_rows else []
        cursor = self._driver.cursor()
        try:
            if len(rows) > 1:
                cursor.executemany(prepared.sql, [prepared.args(row) for row in rows])
                return []
            cursor.execute(prepared.sql, prepared.args(rows[0]))
            return cursor.fetchall()
        except sqlite3.Error as exc:
            raise sa.exc.DBAPIError.instance(prepared.sql, None, exc, sqlite3.Error) from exc
        finally:
            cursor.close()

    async def run_sync(self, fn: Callable[Concatenate[sa.Connection, P], T],
                       *args: P.args, **kwargs: P.kwargs) -> T:
        return fn(self._outside_batch(), *args, **kwargs)

    async def begin(self) -> None:
        conn = self.sync_connection
        if not self._engine.group:
            conn.begin()
            return
        if self._engine.batch is None:
            conn.begin()  # BEGIN IMMEDIATE (database.py)
            self._engine.batch = asyncio.get_running_loop().create_future()
            self._engine.members = 0
        self._engine.members += 1
        self._driver.execute("SAVEPOINT unit")
        self._member = True

    async def commit(self) -> None:
        if not self._member:
            self.sync_connection.commit()
            return
        self._driver.execute("RELEASE unit")
        self._member = False
        await self._leave_batch()

    async def rollback(self) -> None:
        if not self._member:
            self.sync_connection.rollback()
            return
        self._member = False
        try:
            self._driver.execute("ROLLBACK TO unit")
            self._driver.execute("RELEASE unit")
        except sqlite3.Error:
            # SQLite has already rolled the whole transaction back (a full disk, say);
            # commit_batch sees that and fails the batch.
            pass

    def in_transaction(self) -> bool:
        return self._member or (self._sync is not None and self._sync.in_transaction())

    async def close(self) -> None:
        if self._sync is None:
            return
        if self._member:
            await self.rollback()
        if self._engine.batch is not None:
            await self._leave_batch()
        else:
            sync, self._sync = self._sync, None
            self._engine.checkin(sync)

    async def _leave_batch(self) -> None:
        """Give the connection back with the batch still open (it commits once the units
        of work that ran on this turn of the event loop are in), then wait for the COMMIT."""
        engine, sync, self._sync = self._engine, self.sync_connection, None
        batch = engine.batch
        assert batch is not None
        if engine.members >= engine.group:
            engine.commit_batch(sync)
        engine.checkin(sync, keep_transaction=True)
        # Shielded: the batch belongs to every unit of work in it, not to this one task.
        await asyncio.shield(batch)

    def checkpoint_blocking(self) -> tuple[int, int, int]:
        """PRAGMA wal_checkpoint(PASSIVE): (busy, frames in the log, frames copied). It
        blocks for as long as the copy takes (Database.checkpoint decides where it runs)."""
        self._outside_batch()
        busy, log, copied = self._driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(log), int(copied)


class InlineEngine:
    """A pool of `size` SQLite connections for one database file; with `group` > 0 (one
    connection only) up to that many units of work share one COMMIT."""

    def __init__(self, path: str, *, size: int, timeout: float, group: int = 0) -> None:
        assert group == 0 or size == 1, "group commit needs the single writer connection"
        self.size = size
        self.group = group
        self.sync_engine = sa.create_engine(
            "sqlite://", poolclass=sa.QueuePool, pool_size=size, max_overflow=0,
            # The unit of work always ends its transaction itself: no reset round trip.
            pool_reset_on_return=None,
            json_serializer=tables.json_text, json_deserializer=tables.json_value,
            # isolation_level=None: the driver never opens transactions; the engine's
            # "begin" listener (database.py) issues BEGIN itself. The loop's thread is the
            # only user, but the checkpoint runs a held connection on a worker thread.
            creator=lambda: sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                            check_same_thread=False))
        self.slots = asyncio.Semaphore(size)
        self.waiting = 0  # tasks queueing for a connection
        self._held = 0
        # The open group-commit transaction: resolved by its COMMIT, and how many joined.
        self.batch: asyncio.Future[None] | None = None
        self.members = 0
        # SQLAlchemy Connections kept open between uses: checking one out of the pool and
        # back costs more than a short transaction's statements (about 30 µs).
        self._idle: list[sa.Connection] = []
        self._prepared = PreparedCache(lambda: self.dialect)

    @property
    def dialect(self) -> Dialect:
        return self.sync_engine.dialect

    def prepared(self, statement: sa.Executable, keys: tuple[str, ...]) -> Prepared | None:
        return self._prepared.get(statement, keys)

    def connect(self) -> InlineConnection:
        return InlineConnection(self)

    async def checkout(self) -> sa.Connection:
        self.waiting += 1
        try:
            await self.slots.acquire()
        except BaseException:
            self._commit_batch_soon()  # it may have been handed on to us
            raise
        finally:
            self.waiting -= 1
        self._held += 1
        try:
            return self._idle.pop() if self._idle else self.sync_engine.connect()
        except BaseException:
            self._release()
            raise

    def checkin(self, conn: sa.Connection, *, keep_transaction: bool = False) -> None:
        try:
            # An open (even read-only) transaction would pin a WAL snapshot and hold back
            # checkpoints: end it, unless it is the batch handed to the next writer. A
            # connection that failed is closed, not kept.
            if conn.in_transaction() and not keep_transaction:
                conn.rollback()
            if conn.invalidated or conn.closed:
                conn.close()
            else:
                self._idle.append(conn)
        except BaseException:
            conn.close()
            raise
        finally:
            self._release()

    def _release(self) -> None:
        self._held -= 1
        self.slots.release()
        self._commit_batch_soon()

    def _commit_batch_soon(self) -> None:
        # Queued behind the tasks already ready to run: those that write join the batch
        # first. A writer that was woken to take the connection runs before this too (and
        # one that gave up instead queues it again from `checkout`).
        if self.batch is not None:
            asyncio.get_running_loop().call_soon(self._commit_if_idle)

    def _commit_if_idle(self) -> None:
        if self.batch is not None and not self._held and not self.waiting and self._idle:
            self.commit_batch(self._idle[-1])

    def commit_batch(self, conn: sa.Connection) -> None:
        """COMMIT the batch on `conn` and tell its units of work how it went."""
        batch, self.batch = self.batch, None
        assert batch is not None
        driver: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        try:
            if not driver.in_transaction:
                raise sqlite3.OperationalError(
                    "SQLite rolled the transaction back after an error; nothing was committed")
            conn.commit()
        except BaseException as exc:
            try:
                conn.rollback()
                if driver.in_transaction:  # SQLAlchemy gave up on it before the driver did
                    driver.rollback()
            except BaseException:
                conn.invalidate()
            batch.set_exception(exc)
        else:
            batch.set_result(None)

    async def dispose(self) -> None:
        if self.batch is not None and self._idle:
            self.commit_batch(self._idle[-1])
        for conn in self._idle:
            conn.close()
        self._idle.clear()
        self.sync_engine.dispose()
        # A semaphore belongs to the first event loop it waits on; the next user may run
        # another (the CLI prepares on one loop, then uvicorn serves on its own).
        self.slots = asyncio.Semaphore(self.size)
