"""PostgreSQL run straight on asyncpg (pg_direct.py): the same rows, errors and transaction
semantics as SQLAlchemy's engine, a pool that recovers from dead connections without a
ping, and no round trip for a unit of work that runs nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidRequestError

from krypton.adapters.db import faults
from krypton.adapters.db import tables as t
from krypton.adapters.db.connection import write
from krypton.adapters.db.database import Database
from krypton.adapters.db.pg_direct import PgConnection, PgEngine, PgPool

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database.open(db_url)
    yield database
    await database.dispose()


def _engine(db: Database) -> PgEngine:
    assert isinstance(db.writer, PgEngine)
    return db.writer


def _merchant(merchant_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": merchant_id, "name": "Shop", "fee_bps": 100, "underpayment_tolerance_bps": 0,
            "methods": ["ton", "usdt_trc20"], "created_at": NOW, **extra}


async def _add_merchant(db: Database, merchant_id: str) -> None:
    async with db.writer.connect() as conn:
        await write(conn, t.merchants.insert(), _merchant(merchant_id))
        await conn.commit()


async def _sqlalchemy_rows(db: Database, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """What SQLAlchemy's own engine reads for `query`: the reference for conversions."""
    async with _engine(db).fallback.connect() as conn:
        return [tuple(r) for r in await conn.execute(query)]


async def test_postgresql_urls_get_the_direct_engine(db: Database) -> None:
    assert db.dialect == "postgresql"
    async with db.writer.connect() as conn:
        assert isinstance(conn, PgConnection)


async def test_rows_are_converted_as_sqlalchemy_converts_them(db: Database) -> None:
    await _add_merchant(db, "mer_a")
    query = sa.select(t.merchants).where(t.merchants.c.id == "mer_a")
    async with db.reader.connect() as conn:
        row = (await conn.execute(query)).one()
    assert row.methods == ["ton", "usdt_trc20"]  # JSON decoded
    assert row.created_at == NOW and row.created_at.tzinfo is not None
    assert row._mapping["fee_bps"] == 100
    assert [tuple(row)] == await _sqlalchemy_rows(db, query)


async def test_results_answer_the_calls_repositories_make(db: Database) -> None:
    for n in range(3):
        await _add_merchant(db, f"mer_{n}")
    c = t.merchants.c
    async with db.writer.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(t.merchants))
                ).scalar_one() == 3
        ids = (await conn.execute(sa.select(c.id).where(c.id.in_(["mer_0", "mer_2", "x"]))
                                  .order_by(c.id))).scalars().all()
        assert ids == ["mer_0", "mer_2"]  # an expanding IN list
        assert (await conn.execute(sa.select(c.id).where(c.id == "nobody"))).first() is None
        updated = await conn.execute(t.merchants.update().where(c.id != "mer_1").values(fee_bps=5))
        assert updated.rowcount == 2
        text = (await conn.execute(sa.text("SELECT :n + 1 AS m"), {"n": 41})).one()
        assert text.m == 42


async def test_a_unique_violation_is_sqlalchemys_integrity_error(db: Database) -> None:
    """Repositories catch IntegrityError (an Idempotency-Key clash): through write() and
    execute() alike; a fault it is not."""
    await _add_merchant(db, "mer_twice")
    async with db.writer.connect() as conn:
        with pytest.raises(IntegrityError) as caught:
            await write(conn, t.merchants.insert(), _merchant("mer_twice"))
        assert faults.unavailable(caught.value) is None
    async with db.writer.connect() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(t.merchants.insert().values(**_merchant("mer_twice")))


async def test_write_returns_the_rows_it_returns_and_inserts_many(db: Database) -> None:
    await _add_merchant(db, "mer_w")
    statement = t.merchants.update().where(t.merchants.c.id == sa.bindparam("merchant_id")).values(
        fee_bps=sa.bindparam("fee")).returning(t.merchants.c.fee_bps)
    async with db.writer.connect() as conn:
        assert await write(conn, statement, {"merchant_id": "mer_w", "fee": 7}) == [(7,)]
        assert await write(conn, t.merchants.insert(), [_merchant("mer_x"), _merchant("mer_y")]) == []
        await conn.commit()
    assert len(await _sqlalchemy_rows(db, sa.select(t.merchants.c.id))) == 3


async def test_only_commit_commits(db: Database) -> None:
    async with db.writer.connect() as conn:
        await conn.begin()
        await write(conn, t.merchants.insert(), _merchant("mer_gone"))
        assert conn.in_transaction()
    async with db.writer.connect() as conn:
        await write(conn, t.merchants.insert(), _merchant("mer_rolled"))
        await conn.rollback()
        assert not conn.in_transaction()
    assert await _sqlalchemy_rows(db, sa.select(t.merchants.c.id)) == []


async def test_a_unit_of_work_that_runs_nothing_sends_nothing(db: Database) -> None:
    """BEGIN goes with the first statement: checking out, beginning and closing cost no
    round trip (the server counts no transaction for this session)."""
    async with db.writer.connect() as conn:
        driver = conn.driver_connection
        pid = driver.get_server_pid()
    async with db.writer.connect() as conn:
        await conn.begin()
        assert conn.driver_connection is driver
        assert not driver.is_in_transaction()
        await conn.rollback()
    async with db.writer.connect() as conn:
        assert conn.driver_connection.get_server_pid() == pid


async def test_a_pooled_connection_that_died_unnoticed_is_replaced_by_the_begin(
        db: Database) -> None:
    """No ping before use: the BEGIN finds the dead connection, and the unit of work goes on
    on another one, with nothing lost (nothing had happened in it yet)."""
    await _add_merchant(db, "mer_alive")  # leaves one served connection idle in the pool
    pool = _engine(db).pool
    [dead] = pool.idle
    dead._transport.abort()  # the socket is gone; asyncpg has not run its callbacks yet
    assert not dead.is_closed()
    async with db.writer.connect() as conn:
        assert conn.driver_connection is dead
        row = (await conn.execute(sa.select(t.merchants.c.id))).one()
        assert row.id == "mer_alive"
        assert conn.driver_connection is not dead
    assert dead.is_closed() and dead not in pool.idle


async def test_a_connection_lost_mid_transaction_fails_as_a_fault(db: Database) -> None:
    async with db.writer.connect() as conn:
        await conn.execute(sa.select(1))
        conn.driver_connection._transport.abort()
        with pytest.raises(DBAPIError) as caught:
            await conn.execute(sa.select(2))
    assert faults.unavailable(caught.value) is not None
    async with db.writer.connect() as conn:  # the dead one was not kept
        assert (await conn.execute(sa.select(3))).scalar_one() == 3


async def test_a_full_pool_times_out_as_a_fault(db_url: str) -> None:
    db = Database.open(db_url)
    engine = _engine(db)
    engine.size, engine.overflow, engine.timeout = 1, 0, 0.05
    try:
        async with db.writer.connect():
            with pytest.raises(sa.exc.TimeoutError) as caught:
                await db.writer.connect()
        assert faults.unavailable(caught.value) == "no database connection became free in time"
    finally:
        await db.dispose()


async def test_an_unreachable_server_is_a_fault(db_url: str) -> None:
    """(db_url: only so that this module's one parametrisation applies.)"""
    pool = PgPool("postgresql://nobody@127.0.0.1:1/none", size=1, overflow=0, timeout=1,
                  connect_args={"timeout": 2}, setup=lambda conn: asyncio.sleep(0))
    with pytest.raises(OSError) as caught:
        await pool.get()
    assert faults.unavailable(caught.value) is not None
    assert not pool.slots.locked()  # the slot was given back


async def test_run_sync_runs_on_a_connection_of_its_own(db: Database) -> None:
    def tables(sync_conn: sa.Connection) -> set[str]:
        return set(sa.inspect(sync_conn).get_table_names())

    async with db.reader.connect() as conn:
        assert "invoices" in await conn.run_sync(tables)
        await conn.execute(sa.select(1))
        with pytest.raises(InvalidRequestError, match="cannot join the transaction"):
            await conn.run_sync(tables)


async def test_a_cancelled_statement_leaves_no_broken_connection_in_the_pool(db: Database) -> None:
    """A request cancelled mid-statement (a client gone): its connection is not handed to
    the next unit of work while asyncpg is still cancelling on the server."""
    started = asyncio.Event()

    async def slow() -> None:
        async with db.writer.connect() as conn:
            await conn.execute(sa.select(1))
            started.set()
            await conn.execute(sa.text("SELECT pg_sleep(30)"))

    task = asyncio.create_task(slow())
    await started.wait()
    await asyncio.sleep(0.05)  # the sleep is on the server; the outcome holds either way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for n in range(3):
        async with db.writer.connect() as conn:
            assert (await conn.execute(sa.select(sa.literal(n)))).scalar_one() == n


async def test_floats_and_decimals_come_back_as_their_types(db: Database) -> None:
    """asyncpg's numeric conversions need the column's type id, which no cursor gives here."""
    query = sa.select(sa.literal(1.5, sa.Float), sa.literal(2.25, sa.Numeric(10, 2)),
                      sa.literal(3.5, sa.Numeric(10, 2, asdecimal=False)))
    async with db.reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    assert [tuple(r) for r in rows] == [(1.5, Decimal("2.25"), 3.5)]
    assert [tuple(r) for r in rows] == await _sqlalchemy_rows(db, query)
