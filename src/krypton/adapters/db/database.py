"""Engines and the unit of work, for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from krypton.adapters.db import pg_direct, sqlite_inline, tables
from krypton.adapters.db.connection import Connection, Engine
from krypton.adapters.db.event_log import EventLog
from krypton.adapters.db.provider_health import ProviderHealthRepo
from krypton.adapters.db.read_models import ReadModels
from krypton.adapters.db.repositories import (
    ApiKeyRepo,
    CollectorRepo,
    CounterRepo,
    CursorRepo,
    IdempotencyRepo,
    InvoiceRepo,
    LedgerRepo,
    MerchantRepo,
    PaymentRepo,
    Repo,
    SettlementRepo,
    UnmatchedRepo,
)
from krypton.adapters.db.users import SessionRepo as UserSessionRepo
from krypton.adapters.db.users import UserRepo
from krypton.adapters.db.webhooks import WebhookRepo

R = TypeVar("R")
RepoT = TypeVar("RepoT", bound=Repo)
WAL_SIZE_LIMIT = 64 * 1024 * 1024
# Units of work sharing one COMMIT at most (sqlite_inline.py): enough to absorb a queue of
# concurrent requests, few enough that the first in a batch does not wait long.
GROUP_COMMIT = 32
# PostgreSQL: seconds to open a connection, and to wait for a free one in the pool.
CONNECT_TIMEOUT = 5
POOL_TIMEOUT = 30
# PostgreSQL: connections opened beyond the pool size under load, closed when given back.
MAX_OVERFLOW = 10
# PostgreSQL: seconds a session may sit idle inside a transaction before the server ends it.
# An open write transaction holds back the event-log horizon of every database on the
# server (event_log.py), freezing projections and /api/v1/events; this bounds how long one
# of Krypton's own sessions can do that.
IDLE_IN_TRANSACTION_SECONDS = 60.0


def _sqlite_engine(url: str, *, writer: bool) -> sqlite_inline.InlineEngine:
    # One writer connection: SQLite allows one writer anyway, and queueing for it is
    # cheaper and fairer than spinning on the file lock. Readers use WAL snapshots.
    engine = sqlite_inline.InlineEngine(make_url(url).database or "", size=1 if writer else 8,
                                        timeout=30, group=GROUP_COMMIT if writer else 0)

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        # No automatic checkpoint: its fsync would stall the event loop the statements run
        # on; Database.checkpoint() does it on a worker thread instead. The size limit
        # shrinks the log file back after a burst once a checkpoint has emptied it.
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=30000", "wal_autocheckpoint=0", "temp_store=MEMORY",
                       f"journal_size_limit={WAL_SIZE_LIMIT}"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a read-then-write never deadlocks.
        # Straight to the driver: SQLAlchemy's execution path would double its cost.
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


@dataclass
class Database:
    """The engines for one database URL; `write` picks the writer on SQLite."""

    url: str
    writer: Engine
    reader: Engine

    @classmethod
    def open(cls, url: str, *, pool_size: int = 20,
             idle_in_transaction_seconds: float = IDLE_IN_TRANSACTION_SECONDS) -> Database:
        if url.startswith("sqlite"):
            return cls(url, _sqlite_engine(url, writer=True), _sqlite_engine(url, writer=False))
        # A connection attempt gives up after CONNECT_TIMEOUT seconds and a request waits at
        # most POOL_TIMEOUT for a free connection: while the server is away the API answers
        # 503 quickly rather than hanging for a minute.
        connect_args: dict[str, Any] = {}
        asyncpg_url = make_url(url).get_driver_name() == "asyncpg"
        if asyncpg_url:
            idle_ms = str(round(idle_in_transaction_seconds * 1000))  # 0: no limit
            connect_args = {"timeout": CONNECT_TIMEOUT,
                            "server_settings": {"idle_in_transaction_session_timeout": idle_ms}}
        # pool_pre_ping (SQLAlchemy's engine only): a pooled connection is checked before use,
        # so after a PostgreSQL restart the dead ones are replaced at once instead of failing
        # requests one by one. The direct engine gets that from its BEGIN (pg_direct.py).
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=MAX_OVERFLOW,
                                     pool_timeout=POOL_TIMEOUT, pool_pre_ping=True,
                                     connect_args=connect_args,
                                     json_serializer=tables.json_text,
                                     json_deserializer=tables.json_value)
        if not asyncpg_url:
            return cls(url, engine, engine)
        # asyncpg: statements run on the driver directly (pg_direct.py); SQLAlchemy's engine
        # only compiles them and serves run_sync (Alembic), opening connections only then.
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        direct = pg_direct.PgEngine(dsn, engine, size=pool_size, overflow=MAX_OVERFLOW,
                                    timeout=POOL_TIMEOUT, connect_args=connect_args)
        return cls(url, direct, direct)

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    async def checkpoint(self) -> tuple[int, int]:
        """Fold the SQLite write-ahead log back into the database: (frames in the log,
        frames copied) as the log stood at the end; (0, 0) on PostgreSQL.

        A checkpoint beside a busy writer never catches up with the end of the log, so the
        log never starts over: under a steady write load it grew by about 50 MB a second
        and every page lookup slowed down with it. So this copies in two passes: first
        beside the writer on a worker thread, which copies the bulk while the event loop
        keeps serving (about 55 ms for a second of invoice writes), then inline holding the
        writer connection, which copies only what came in meanwhile (about 8 ms; inline
        because handing the GIL to a thread and back would hold the writer longer). With no
        frame appended then, the log is copied to its end and the next write transaction
        starts it afresh. PASSIVE never waits for readers (frames a reader still needs are
        copied next time)."""
        if not isinstance(self.writer, sqlite_inline.InlineEngine):
            return 0, 0
        assert isinstance(self.reader, sqlite_inline.InlineEngine)
        async with self.reader.connect() as beside:
            await asyncio.to_thread(beside.checkpoint_blocking)
        async with self.writer.connect() as conn:
            _busy, log, copied = conn.checkpoint_blocking()
        return log, copied

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


class _Made(Generic[R]):
    """A unit-of-work attribute made on first use from the open connection, then kept in
    the instance (which shadows this non-data descriptor from then on)."""

    def __init__(self, make: Callable[[SqlUnitOfWork], R]) -> None:
        self.make = make

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, uow: SqlUnitOfWork, owner: type | None = None) -> R:
        made = uow.__dict__[self.name] = self.make(uow)
        return made


def _repo(cls: type[RepoT]) -> _Made[RepoT]:
    return _Made(lambda uow: cls(uow.connection, locking=uow.locking))


class SqlUnitOfWork:
    """One database transaction. Only `commit` commits; leaving without it rolls back.

    Repositories are made on first use: a unit of work touches two or three of them."""

    def __init__(self, db: Database, new_id: Callable[[str], str], *, write: bool) -> None:
        self.db = db
        self.new_id = new_id
        self.write = write
        self._conn: Connection | None = None
        # SELECT ... FOR UPDATE where the database has it (SQLite locks the whole file anyway).
        self.locking = db.dialect == "postgresql"

    async def __aenter__(self) -> SqlUnitOfWork:
        engine = self.db.writer if self.write else self.db.reader
        conn = self._conn = await engine.connect()
        await conn.begin()
        return self

    @property
    def connection(self) -> Connection:
        assert self._conn is not None, "the unit of work is not open"
        return self._conn

    merchants = _repo(MerchantRepo)
    collectors = _repo(CollectorRepo)
    api_keys = _repo(ApiKeyRepo)
    invoices = _repo(InvoiceRepo)
    payments = _repo(PaymentRepo)
    unmatched = _repo(UnmatchedRepo)
    settlements = _repo(SettlementRepo)
    ledger = _repo(LedgerRepo)
    idempotency = _repo(IdempotencyRepo)
    counters = _repo(CounterRepo)
    cursors = _repo(CursorRepo)
    webhooks = _repo(WebhookRepo)
    users = _repo(UserRepo)
    sessions = _repo(UserSessionRepo)
    provider_health = _repo(ProviderHealthRepo)
    events = _Made(lambda uow: EventLog(uow.connection, uow.new_id))
    read_models = _Made(lambda uow: ReadModels(uow.connection))

    async def commit(self) -> None:
        assert self._conn is not None
        if "events" in self.__dict__:  # made, so maybe holding events to write
            await self.events.flush()
        await self._conn.commit()

    async def __aexit__(self, *exc: object) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None


@dataclass(frozen=True)
class UowFactory:
    db: Database
    new_id: Callable[[str], str]

    def __call__(self, *, write: bool = True) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.db, self.new_id, write=write)
