"""Engines and the unit of work, for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from krypton.adapters.db import sqlite_inline
from krypton.adapters.db.event_log import EventLog
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
    SettlementRepo,
    UnmatchedRepo,
)


def _sqlite_engine(url: str, *, writer: bool) -> AsyncEngine:
    # One writer connection: SQLite allows one writer anyway, and queueing in the pool is
    # cheaper and fairer than spinning on the file lock. Readers use WAL snapshots.
    engine = create_async_engine(
        url, pool_size=1 if writer else 8, max_overflow=0, pool_timeout=60,
        # The unit of work always ends its transaction itself: no reset round trip needed.
        pool_reset_on_return=None,
        async_creator=sqlite_inline.creator(make_url(url).database or "", timeout=30))

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        # No automatic checkpoint: its fsync would stall the event loop the statements run
        # on; Database.checkpoint() does it on a worker thread instead.
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=30000", "wal_autocheckpoint=0"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a read-then-write never deadlocks.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


@dataclass
class Database:
    """The engines for one database URL; `write` picks the writer on SQLite."""

    url: str
    writer: AsyncEngine
    reader: AsyncEngine

    @classmethod
    def open(cls, url: str, *, pool_size: int = 20) -> Database:
        if url.startswith("sqlite"):
            return cls(url, _sqlite_engine(url, writer=True), _sqlite_engine(url, writer=False))
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=10, pool_timeout=60)
        return cls(url, engine, engine)

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    def checkpoint(self) -> int:
        """Fold the SQLite write-ahead log back into the database (blocking: run it on a
        worker thread). Returns the pages written; 0 on PostgreSQL."""
        if self.dialect != "sqlite":
            return 0
        with closing(sqlite3.connect(make_url(self.url).database or "", timeout=30)) as conn:
            _busy, _log, written = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(written)

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


class SqlUnitOfWork:
    """One database transaction. Only `commit` commits; leaving without it rolls back."""

    merchants: MerchantRepo
    api_keys: ApiKeyRepo
    invoices: InvoiceRepo
    payments: PaymentRepo
    unmatched: UnmatchedRepo
    settlements: SettlementRepo
    ledger: LedgerRepo
    idempotency: IdempotencyRepo
    events: EventLog
    read_models: ReadModels
    counters: CounterRepo
    cursors: CursorRepo

    def __init__(self, db: Database, new_id: Callable[[str], str], *, write: bool) -> None:
        self.db = db
        self.new_id = new_id
        self.write = write
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        engine = self.db.writer if self.write else self.db.reader
        conn = self._conn = await engine.connect()
        await conn.begin()
        locking = self.db.dialect == "postgresql"
        self.merchants = MerchantRepo(conn, locking=locking)
        self.collectors = CollectorRepo(conn, locking=locking)
        self.api_keys = ApiKeyRepo(conn, locking=locking)
        self.invoices = InvoiceRepo(conn, locking=locking)
        self.payments = PaymentRepo(conn, locking=locking)
        self.unmatched = UnmatchedRepo(conn, locking=locking)
        self.settlements = SettlementRepo(conn, locking=locking)
        self.ledger = LedgerRepo(conn, locking=locking)
        self.idempotency = IdempotencyRepo(conn, locking=locking)
        self.events = EventLog(conn, self.new_id)
        self.read_models = ReadModels(conn)
        self.counters = CounterRepo(conn, locking=locking)
        self.cursors = CursorRepo(conn, locking=locking)
        return self

    async def commit(self) -> None:
        assert self._conn is not None
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
