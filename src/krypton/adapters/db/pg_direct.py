"""PostgreSQL run straight on asyncpg, behind the part of SQLAlchemy's async API we use.

SQLAlchemy's async engine runs every statement, pool checkout and COMMIT through greenlet
switches and its asyncpg adapter's cursor; a profile of POST /api/v1/invoices showed 43 % of
the event loop inside that layer, and its pre-ping added three round trips (BEGIN, ping,
ROLLBACK) to every checkout. Here SQLAlchemy only compiles: statements are compiled once
per shape with the asyncpg dialect (its compiled cache, `$n` placeholders, the same bind
and result conversions) and run on a raw asyncpg connection, whose own statement cache
prepares each SQL string once per connection. Errors are SQLAlchemy's classes, as the
dialect raises them (IntegrityError for a unique violation, DBAPIError carrying the
asyncpg error for the rest), so callers and `faults.py` see what they saw before.

The pool is ours (sizes and timeouts as SQLAlchemy's were). A checkout does no round trip:
the BEGIN every unit of work sends anyway is the liveness check. It is sent lazily, before
the first statement; when it fails on a pooled connection because that connection is dead
(a PostgreSQL restart), nothing has happened in the transaction yet, so the connection is
dropped and the BEGIN repeated on another one, and the request is served.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.selectable import TypedReturnsRows
from sqlalchemy.util import LRUCache

from krypton.adapters.db.sqlite_inline import Params, Prepared, PreparedCache

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound=tuple[Any, ...])

# What a connection that died under us raises (closed socket, terminated backend,
# server shutting down). A failed BEGIN on a pooled connection with one of these is retried.
_LOST = (asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.InterfaceError,
         asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError,
         OSError)
COMPILED_CACHE_SIZE = 500


class _Driver(asyncpg.Connection):  # type: ignore[misc]
    """asyncpg's connection, marked once it has served a unit of work (see PgConnection)."""

    __slots__ = ("served",)


class PgResult(IteratorResult):  # type: ignore[type-arg]
    """The rows of one statement, with the CursorResult attributes repositories read."""

    def __init__(self, keys: Sequence[str], rows: list[tuple[Any, ...]], rowcount: int,
                 returns_rows: bool) -> None:
        super().__init__(SimpleResultMetaData(keys), iter(rows))
        self.rowcount = rowcount
        self.returns_rows = returns_rows


class _Reader:
    """How to turn one compiled statement's records into rows: column keys, conversions."""

    __slots__ = ("compiled", "keys", "processors")

    def __init__(self, compiled: Any, dialect: Dialect) -> None:
        self.compiled = compiled  # held so that the id in the cache key stays this one's
        columns = compiled._result_columns
        self.keys: list[str] = [c.keyname for c in columns]
        procs = [_result_processor(c.type, dialect) for c in columns]
        self.processors: list[Callable[[Any], Any] | None] | None = (
            procs if any(p is not None for p in procs) else None)

    def rows(self, records: list[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        if not records:
            return self.keys, []
        width = len(records[0])
        if width != len(self.keys):  # textual SQL: SQLAlchemy knows nothing of its columns
            return list(records[0].keys()), [tuple(r) for r in records]
        if self.processors is None:
            return self.keys, [tuple(r) for r in records]
        procs = self.processors
        return self.keys, [tuple(v if p is None else p(v) for p, v in zip(procs, r, strict=True))
                           for r in records]


# PostgreSQL's type ids of float8 and numeric: SQLAlchemy's asyncpg numeric types pick their
# conversion by the column's type id, which a cursor would report.
FLOAT8_OID, NUMERIC_OID = 701, 1700


def _result_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The type's result conversion. asyncpg's Float and Numeric ask for the column's type id
    (float8 gives a float, numeric a Decimal): the one that the type's own column has."""
    if isinstance(type_, sa.Float | sa.Numeric):
        oid = FLOAT8_OID if isinstance(type_, sa.Float) else NUMERIC_OID
        processor: Callable[[Any], Any] | None = type_._cached_result_processor(dialect, oid)
        return processor
    processor = type_._cached_result_processor(dialect, None)
    return processor


def _rowcount(status: str | None) -> int:
    """Rows a command touched, from its tag ("UPDATE 3", "INSERT 0 1"); -1 if it says none."""
    if not status:
        return -1
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


class _PoolUse(Collector):
    """krypton_db_pool_connections{state} and krypton_db_pool_size, read from the live pools
    when Prometheus scrapes (no bookkeeping on the checkout path beyond one counter)."""

    def __init__(self) -> None:
        self._pools: weakref.WeakSet[PgPool] = weakref.WeakSet()

    def add(self, pool: PgPool) -> None:
        self._pools.add(pool)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        use = GaugeMetricFamily("krypton_db_pool_connections",
                                "PostgreSQL connections of this process by state", labels=["state"])
        size = GaugeMetricFamily("krypton_db_pool_size",
                                 "How many PostgreSQL connections this process may open at once")
        pools = [p for p in list(self._pools) if not p.closed]
        if pools:
            use.add_metric(["in_use"], sum(p.in_use for p in pools))
            use.add_metric(["idle"], sum(len(p.idle) for p in pools))
            size.add_metric([], sum(p.limit for p in pools))
        yield use
        yield size


POOLS = _PoolUse()
REGISTRY.register(POOLS)


class PgPool:
    """Up to `size` idle connections kept, `size + overflow` open at once; a checkout waits at
    most `timeout` seconds for a free one. Last in, first out, so the connections kept warm
    (their prepared statements cached) are the ones used."""

    def __init__(self, dsn: str, *, size: int, overflow: int, timeout: float,
                 connect_args: Mapping[str, Any], setup: Callable[[Any], Any]) -> None:
        self.dsn = dsn
        self.size = size
        self.timeout = timeout
        self.connect_args = dict(connect_args)
        self.setup = setup
        self.limit = size + overflow
        self.slots = asyncio.Semaphore(self.limit)
        self.idle: list[Any] = []
        self.in_use = 0  # checked out now (for /metrics: alert when near `limit`)
        self.closed = False
        POOLS.add(self)

    async def get(self) -> Any:
        if self.slots.locked():
            try:
                async with asyncio.timeout(self.timeout):
                    await self.slots.acquire()
            except TimeoutError:
                raise sa.exc.TimeoutError(
                    f"no PostgreSQL connection became free within {self.timeout:g} s") from None
        else:
            await self.slots.acquire()
        try:
            conn = await self._idle_or_new()
        except BaseException:
            self.slots.release()
            raise
        self.in_use += 1
        return conn

    async def _idle_or_new(self) -> Any:
        while self.idle:
            conn = self.idle.pop()
            if not conn.is_closed():
                return conn
        conn = await asyncpg.connect(self.dsn, connection_class=_Driver, **self.connect_args)
        try:
            await self.setup(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    def put(self, conn: Any) -> None:
        """Take a connection back: kept if it is healthy, idle and there is room, else closed."""
        try:
            # A statement cancelled mid-flight (a task cancelled) leaves asyncpg cancelling
            # it on the server: that connection cannot take the next BEGIN, so it goes too.
            if (self.closed or conn.is_closed() or conn.is_in_transaction()
                    or conn._protocol._is_cancelling() or len(self.idle) >= self.size):
                conn.terminate()
            else:
                self.idle.append(conn)
        finally:
            self.in_use -= 1
            self.slots.release()

    async def close(self) -> None:
        self.closed = True
        idle, self.idle = self.idle, []
        for conn in idle:
            try:
                await conn.close(timeout=2)
            except Exception:
                conn.terminate()


class PgEngine:
    """Connections to one PostgreSQL database; `await engine.connect()` or `async with`.

    `fallback` is a SQLAlchemy engine for what needs a synchronous SQLAlchemy Connection
    (`run_sync`: Alembic); it opens connections only when used."""

    def __init__(self, dsn: str, fallback: AsyncEngine, *, size: int, overflow: int,
                 timeout: float, connect_args: Mapping[str, Any]) -> None:
        self.dsn = dsn
        self.fallback = fallback
        self.size, self.overflow, self.timeout = size, overflow, timeout
        self.connect_args = dict(connect_args)
        self._pool: PgPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._compiled: LRUCache[Any, Any] = LRUCache(COMPILED_CACHE_SIZE)
        self._readers: dict[int, _Reader] = {}
        self._prepared = PreparedCache(lambda: self.dialect)

    @property
    def dialect(self) -> Dialect:
        return self.fallback.dialect

    @property
    def pool(self) -> PgPool:
        # A pool belongs to the event loop it was made on; the next user may run another
        # (the CLI prepares on one loop, then uvicorn serves on its own).
        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:
            self._pool = PgPool(self.dsn, size=self.size, overflow=self.overflow,
                                timeout=self.timeout, connect_args=self.connect_args,
                                setup=self._setup)
            self._loop = loop
        return self._pool

    async def _setup(self, conn: Any) -> None:
        """The JSON codecs SQLAlchemy's asyncpg dialect installs on each new connection (its
        JSON types' conversions expect them): text in, values out through the dialect's
        deserializer."""
        loads = self.dialect._json_deserializer or json.loads
        await conn.set_type_codec("json", encoder=str.encode, decoder=lambda b: loads(b.decode()),
                                  schema="pg_catalog", format="binary")
        await conn.set_type_codec("jsonb", encoder=lambda s: b"\x01" + s.encode(),
                                  decoder=lambda b: loads(b[1:].decode()),
                                  schema="pg_catalog", format="binary")

    def connect(self) -> PgConnection:
        return PgConnection(self)

    async def dispose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        await self.fallback.dispose()

    def prepared(self, statement: sa.Executable, keys: tuple[str, ...]) -> Prepared | None:
        """A hot-path INSERT/UPDATE compiled once (see sqlite_inline.prepare), or None."""
        return self._prepared.get(statement, keys)

    def plan(self, statement: sa.Executable, params: Mapping[str, Any] | None
             ) -> tuple[str, list[Any], _Reader]:
        """SQL, positional arguments and row reader for one execution, as SQLAlchemy's
        Connection.execute works them out (compiled cache keyed on the statement's cache
        key, extracted literal values, expanding IN lists, bind conversions)."""
        keys = sorted(params) if params else []
        compiled: Any
        compiled, extracted, collected, _ = statement._compile_w_cache(
            self.dialect, compiled_cache=self._compiled, column_keys=keys)
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise NotImplementedError(
                "pg_direct runs no Python-side column defaults; give the value explicitly "
                f"or a server_default: {compiled.string[:120]}")
        values = compiled.construct_params(params, extracted_parameters=extracted,
                                           escape_names=False, _collected_params=collected)
        processors = compiled._bind_processors
        if compiled.literal_execute_params or compiled.post_compile_params:
            state = compiled._process_parameters_for_postcompile(values)
            sql, order, values = state.statement, state.positiontup, state.parameters
            processors = {**processors, **state.processors}
        else:
            sql, order = compiled.string, compiled.positiontup or ()
        args = [processors[k](values[k]) if k in processors else values[k] for k in order]
        reader = self._readers.get(id(compiled))
        if reader is None or reader.compiled is not compiled:
            if len(self._readers) > 2 * COMPILED_CACHE_SIZE:
                self._readers.clear()
            reader = self._readers[id(compiled)] = _Reader(compiled, self.dialect)
        return sql, args, reader

    def error(self, exc: BaseException, sql: str, args: Any, conn: Any) -> BaseException:
        """The SQLAlchemy exception the asyncpg dialect would raise for `exc` (raise it
        `from exc`); other errors (a refused connection, a timeout) are returned as they are."""
        if not isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError
                          | asyncpg.InternalClientError):
            return exc
        dbapi: Any = self.dialect.dbapi
        translated = dbapi.Error(str(exc), exc)
        for cls in type(exc).__mro__:
            if cls in dbapi._asyncpg_error_translate:
                translated = dbapi._asyncpg_error_translate[cls](str(exc), exc)
                break
        lost = conn is None or conn.is_closed()
        error: BaseException = sa.exc.DBAPIError.instance(
            sql, args, translated, dbapi.Error, connection_invalidated=lost, dialect=self.dialect)
        return error


class PgConnection:
    """One pooled asyncpg connection with SQLAlchemy's Connection semantics: a transaction
    begins with the first statement (or `begin()`), ends with `commit()` or `rollback()`,
    and is rolled back on `close()`."""

    def __init__(self, engine: PgEngine) -> None:
        self._engine = engine
        self._pool: PgPool | None = None
        self._conn: Any = None
        self._tx = False  # BEGIN sent
        self._begun = False  # begin() called: BEGIN goes with the first statement

    async def _open(self) -> PgConnection:
        self._pool = self._engine.pool
        self._conn = await self._pool.get()
        return self

    def __await__(self) -> Generator[Any, None, PgConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> PgConnection:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    @property
    def driver_connection(self) -> Any:
        assert self._conn is not None, "connection not open"
        return self._conn

    async def _run(self, sql: str, args: Sequence[Any]) -> tuple[list[Any], str | None]:
        if not self._tx:
            await self._start()
        conn = self._conn
        try:
            # Connection._execute: the statement from the connection's prepared-statement
            # cache, its records and its command tag (the public fetch() drops the tag).
            records, status, _ = await conn._execute(sql, args, 0, None, return_status=True)
        except Exception as exc:
            raise self._engine.error(exc, sql, args, conn) from exc
        return records, status.decode() if status else None

    async def _start(self) -> None:
        """BEGIN, which doubles as the check that a pooled connection is alive: one that
        died while idle is dropped and the BEGIN repeated on another (at most once per
        connection the pool can hold, and never on a connection made just now)."""
        assert self._pool is not None and self._conn is not None, "connection not open"
        for _ in range(self._engine.size + self._engine.overflow + 1):
            conn = self._conn
            served = getattr(conn, "served", False)
            conn.served = True
            try:
                await conn.execute("BEGIN")
            except _LOST as exc:
                if not (served and conn.is_closed()):
                    raise self._engine.error(exc, "BEGIN", (), conn) from exc
                self._conn = None
                self._pool.put(conn)
                self._conn = await self._pool.get()
                continue
            except Exception as exc:
                raise self._engine.error(exc, "BEGIN", (), conn) from exc
            self._tx = True
            return
        raise sa.exc.DisconnectionError("every pooled PostgreSQL connection was dead")

    @overload
    async def execute(self, statement: TypedReturnsRows[R],
                      parameters: Any = None) -> CursorResult[R]: ...

    @overload
    async def execute(self, statement: sa.Executable,
                      parameters: Any = None) -> CursorResult[Any]: ...

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> CursorResult[Any]:
        if parameters is not None and not isinstance(parameters, Mapping):
            await self.write(statement, parameters)
            return PgResult([], [], -1, False)  # type: ignore[return-value]
        sql, args, reader = self._engine.plan(statement, parameters)
        records, status = await self._run(sql, args)
        keys, rows = reader.rows(records)
        returns = bool(keys) or bool(rows)
        # Typed as the CursorResult it stands in for: the calls repositories make on one
        # (first, one, all, scalar_one, scalars, rowcount, iteration) all work on it.
        return PgResult(keys, rows, _rowcount(status), returns)  # type: ignore[return-value]

    async def write(self, statement: sa.Executable, params: Params) -> list[tuple[Any, ...]]:
        """Run an INSERT/UPDATE/DELETE (once per mapping given); the rows it RETURNs,
        unconverted (see sqlite_inline.InlineConnection.write)."""
        rows = [params] if isinstance(params, Mapping) else params
        assert rows, "write() needs at least one row of parameters"
        prepared = self._engine.prepared(statement, tuple(rows[0]))
        if prepared is None:
            if len(rows) == 1:
                result = await self.execute(statement, rows[0])
                return [tuple(r) for r in result]
            for row in rows:
                await self.execute(statement, row)
            return []
        if len(rows) > 1:
            if not self._tx:
                await self._start()
            args = [prepared.args(row) for row in rows]
            try:
                await self._conn.executemany(prepared.sql, args)
            except Exception as exc:
                raise self._engine.error(exc, prepared.sql, args, self._conn) from exc
            return []
        records, _ = await self._run(prepared.sql, prepared.args(rows[0]))
        return [tuple(r) for r in records]

    async def run_sync(self, fn: Callable[Concatenate[sa.Connection, P], T],
                       *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn` on a synchronous SQLAlchemy Connection (Alembic needs one) of the fallback
        engine, in a transaction of its own committed when `fn` returns: it cannot share
        this connection's, so this connection must have none open."""
        if self._tx:
            raise sa.exc.InvalidRequestError(
                "run_sync on PostgreSQL runs on a connection of its own and cannot join the "
                "transaction open here; call it before any statement")
        async with self._engine.fallback.connect() as conn:
            result = await conn.run_sync(fn, *args, **kwargs)
            await conn.commit()
        return result

    async def begin(self) -> None:
        if self._tx or self._begun:
            raise sa.exc.InvalidRequestError("a transaction is already begun on this connection")
        self._begun = True

    async def commit(self) -> None:
        await self._end("COMMIT")

    async def rollback(self) -> None:
        await self._end("ROLLBACK")

    async def _end(self, command: str) -> None:
        self._begun = False
        if not self._tx:
            return
        self._tx = False
        try:
            await self._conn.execute(command)
        except Exception as exc:
            raise self._engine.error(exc, command, (), self._conn) from exc

    def in_transaction(self) -> bool:
        return self._tx or self._begun

    async def close(self) -> None:
        conn, pool = self._conn, self._pool
        if conn is None or pool is None:
            return
        try:
            if self._tx and not conn.is_closed():
                await self.rollback()
        except Exception:
            conn.terminate()
        finally:
            self._tx = self._begun = False
            self._conn = None
            pool.put(conn)
