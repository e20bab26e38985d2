"""Ceiling B: how many "create an invoice" transactions the database itself commits per second.

Each transaction inserts one invoice row and one event row, as POST /api/v1/invoices does,
through the raw driver (no SQLAlchemy, no HTTP). The tables are Krypton's own definitions
(krypton.adapters.db.tables: same columns, indexes, unique and foreign keys), created in a
throwaway database so they stay equivalent as the schema changes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from krypton.adapters.db import tables as t

# Keep in step with _sqlite_engine() in src/krypton/adapters/db/database.py.
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000")
WARMUP_SECONDS = 1.0
MERCHANT = "mer_bench000000000000000000"
# What one USD 9.99 invoice stores today (copied from a real row).
OPTIONS = json.dumps([["ton", "TON", "1998000000", "5.00", "5.00"],
                      ["usdt_ton", "USDT_TON", "9990000", "1.00", "1.00"],
                      ["usdt_trc20", "USDT_TRC20", "9990000", "1.00", "1.00"],
                      ["stars", "XTR", "769", "0.013", "0.013"]])
EVENT_DATA = json.dumps({"status": "pending", "exception": None, "price_currency": "USD",
                         "price_amount": "999", "asset": None, "amount_paid": "0", "order_id": None})
# Columns with a server default (a row version, say) are left to it, as the server's INSERT does.
INVOICE_COLS = [c.name for c in t.invoices.c if c.server_default is None]
EVENT_COLS = ["txid", "id", "type", "merchant_id", "subject_id", "data", "created_at"]


def _ddl(dialect: sa.Dialect) -> list[str]:
    out = []
    for table in (t.merchants, t.invoices, t.events):
        out.append(str(CreateTable(table).compile(dialect=dialect)))
        out += [str(CreateIndex(ix).compile(dialect=dialect)) for ix in table.indexes]
    return out


def _insert(table: str, cols: list[str], marks: list[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(marks)})"


def _merchant(created_at: Any) -> tuple[list[str], list[Any]]:
    row = {"id": MERCHANT, "name": "bench", "fee_bps": 100, "underpayment_tolerance_bps": 0,
           "methods": "[]", "created_at": created_at}
    return list(row), list(row.values())


def _rows(stamp: Callable[[datetime], Any]) -> tuple[list[Any], list[Any]]:
    """Values of one invoice row and its event row, in INVOICE_COLS / EVENT_COLS order
    (a KeyError here means tables.py gained a column this bench must fill)."""
    now = datetime.now(UTC)
    inv_id = f"inv_{secrets.token_hex(12)}"
    invoice = dict.fromkeys(INVOICE_COLS) | {
        "id": inv_id, "merchant_id": MERCHANT, "status": "pending", "price_currency": "USD",
        "price_amount": 999, "options": OPTIONS, "fee_bps": 100, "underpayment_tolerance_bps": 0,
        "amount_paid": 0, "amount_detected": 0, "metadata": "{}", "created_at": stamp(now),
        "expires_at": stamp(now + timedelta(minutes=15)), "monitor_until": stamp(now + timedelta(days=1))}
    event = {"txid": 0, "id": f"evt_{secrets.token_hex(12)}", "type": "invoice.created",
             "merchant_id": MERCHANT, "subject_id": inv_id, "data": EVENT_DATA, "created_at": stamp(now)}
    return [invoice[c] for c in INVOICE_COLS], [event[c] for c in EVENT_COLS]


def _sqlite_stamp(dt: datetime) -> str:  # how SQLAlchemy stores a UTC datetime in SQLite
    return dt.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def sqlite_commits(path: Path, seconds: float) -> float:
    """Commits/s of one connection (the server also has exactly one writer connection)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        for pragma in SQLITE_PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        for stmt in _ddl(sqlite.dialect()):
            conn.execute(stmt)
        cols, values = _merchant(_sqlite_stamp(datetime.now(UTC)))
        conn.execute(_insert("merchants", cols, ["?"] * len(cols)), values)
        ins_inv = _insert("invoices", INVOICE_COLS, ["?"] * len(INVOICE_COLS))
        ins_evt = _insert("events", EVENT_COLS, ["?"] * len(EVENT_COLS))

        def run(secs: float) -> float:
            n, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < secs:
                invoice, event = _rows(_sqlite_stamp)
                conn.execute("BEGIN IMMEDIATE")  # as the server's writer does
                conn.execute(ins_inv, invoice)
                conn.execute(ins_evt, event)
                conn.execute("COMMIT")
                n += 1
            return n / elapsed

        run(WARMUP_SECONDS)
        return run(seconds)
    finally:
        conn.close()


def postgres_commits(dsn: str, seconds: float, concurrency: int = 64) -> float:
    return asyncio.run(_postgres_commits(dsn, seconds, concurrency))


async def _postgres_commits(dsn: str, seconds: float, concurrency: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        for stmt in _ddl(postgresql.dialect()):
            await conn.execute(stmt)
        cols, values = _merchant(datetime.now(UTC))
        await conn.execute(_insert("merchants", cols, [f"${i + 1}" for i in range(len(cols))]), *values)
    finally:
        await conn.close()
    ins_inv = _insert("invoices", INVOICE_COLS, [f"${i + 1}" for i in range(len(INVOICE_COLS))])
    # txid as the event log writes it (see krypton.adapters.db.event_log.PG_TXID).
    ins_evt = _insert("events", EVENT_COLS,
                      ["pg_current_xact_id()::text::bigint"] + [f"${i}" for i in range(1, len(EVENT_COLS))])

    async with asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency) as pool:
        async def worker(end: float) -> int:
            n = 0
            while time.perf_counter() < end:
                invoice, event = _rows(lambda dt: dt)
                async with pool.acquire() as c, c.transaction():
                    await c.execute(ins_inv, *invoice)
                    await c.execute(ins_evt, *event[1:])
                n += 1
            return n

        async def run(secs: float) -> float:
            start = time.perf_counter()
            counts = await asyncio.gather(*(worker(start + secs) for _ in range(concurrency)))
            return sum(counts) / (time.perf_counter() - start)

        await run(WARMUP_SECONDS)
        return await run(seconds)


# ------------------------------------------------------------------ projection backlog

BACKLOG_POSITION = "SELECT txid, seq FROM consumer_positions WHERE name = 'projections'"
BACKLOG_COUNT = "SELECT count(*) FROM events WHERE txid > {0} OR (txid = {0} AND seq > {1})"


def sqlite_backlog(path: Path) -> int:
    """Events the server's projection worker has not applied yet (it shares the one writer)."""
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        txid, seq = conn.execute(BACKLOG_POSITION).fetchone() or (0, 0)
        return int(conn.execute(BACKLOG_COUNT.format("?1", "?2"), (txid, seq)).fetchone()[0])


def postgres_backlog(dsn: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            txid, seq = await conn.fetchrow(BACKLOG_POSITION) or (0, 0)
            return int(await conn.fetchval(BACKLOG_COUNT.format("$1", "$2"), txid, seq))
        finally:
            await conn.close()
    return asyncio.run(count())
