"""PostgreSQL's event-log horizon is cluster-wide: Krypton's sessions idle in a transaction
are cut, and the lag a transaction open elsewhere causes is measured for /metrics."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from krypton.adapters.db.database import Database, UowFactory
from krypton.adapters.db.event_log import HORIZON_LAG
from krypton.adapters.system import RandomIds
from krypton.app import relay
from krypton.bootstrap import Container
from krypton.domain.events import Event
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


async def _backend_gone(dsn: str, pid: int) -> bool:
    """Waits (a bounded poll) until backend `pid` has ended; False if it never does."""
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(200):
            if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
                return True
            await asyncio.sleep(0.05)
        return False
    finally:
        await conn.close()


async def test_a_session_idle_in_a_transaction_is_cut(db_url: str) -> None:
    db = Database.open(db_url, idle_in_transaction_seconds=0.2)
    uow = UowFactory(db, RandomIds().new)()
    try:
        await uow.__aenter__()
        conn = uow.connection
        pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        setting = (await conn.execute(sa.text("SHOW idle_in_transaction_session_timeout"))).scalar_one()
        assert setting == "200ms"
        assert await _backend_gone(db_url.replace("+asyncpg", ""), pid)
        with pytest.raises(DBAPIError):  # the transaction is gone with its session
            await conn.execute(sa.text("SELECT 1"))
    finally:
        with contextlib.suppress(DBAPIError):  # rolling back on a cut session fails too
            await uow.__aexit__(None, None, None)
        await db.dispose()


async def test_sessions_have_the_default_idle_timeout(db_url: str) -> None:
    db = Database.open(db_url)
    try:
        async with db.writer.connect() as conn:
            assert (await conn.execute(sa.text("SHOW idle_in_transaction_session_timeout"))
                    ).scalar_one() == "1min"
    finally:
        await db.dispose()


async def test_a_transaction_open_in_another_database_shows_as_horizon_lag(
        container: Container, pg_server: PostgresServer) -> None:
    pg_server.create_database("elsewhere")
    other = await asyncpg.connect(pg_server.dsn_for("elsewhere"))
    try:
        await relay.run_projections(container.deps)
        quiet = HORIZON_LAG._value.get()
        tx = other.transaction()
        await tx.start()
        await other.execute("CREATE TABLE held (n int)")  # a write: the transaction has an id
        now = container.deps.clock.now()
        for n in range(20):
            async with container.deps.uow() as uow:
                await uow.events.append(Event("test.happened", None, f"subject-{n}"), now)
                await uow.commit()
        # Krypton's events wait behind the other database's transaction.
        assert await relay.run_projections(container.deps) == 0
        assert HORIZON_LAG._value.get() >= quiet + 20
        await tx.rollback()
        assert await relay.run_projections(container.deps) == 20
        assert HORIZON_LAG._value.get() < 20
    finally:
        await other.close()
        pg_server.drop_database("elsewhere")


async def test_metrics_show_the_horizon_lag(container: Container, api: httpx.AsyncClient) -> None:
    await relay.run_projections(container.deps)
    body = (await api.get("/metrics")).text
    assert "krypton_event_horizon_lag_transactions " in body
