"""Job leases on a real PostgreSQL: one holder per job across processes (each process is a
`AdvisoryLeases` with its own connection here), freed when the holder's connection dies."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable

import asyncpg  # type: ignore[import-untyped]
import pytest

from krypton.adapters.db.leases import AdvisoryLeases, LocalLeases, lease_key
from tests.support.servers import PostgresServer

_names = itertools.count()


async def eventually(attempt: Callable[[], Awaitable[bool]]) -> bool:
    """Ask until granted; the limit only stops a hung test, it measures nothing."""
    for _ in range(200):
        if await attempt():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    return pg_server.create_database(f"lease{os.getpid()}_{next(_names)}", template="krypton_template")


async def test_one_holder_per_job_and_release_hands_it_over(pg_url: str) -> None:
    a, b = AdvisoryLeases(pg_url), AdvisoryLeases(pg_url)
    try:
        assert await a.try_acquire("chains")
        assert await a.try_acquire("chains")  # still holding: asked again, still its own
        assert not await b.try_acquire("chains")
        assert await b.try_acquire("expiry")  # leases are per job
        assert not await a.try_acquire("expiry")
        await a.release("chains")
        assert await b.try_acquire("chains")
        assert not await a.try_acquire("chains")
    finally:
        await a.close()
        await b.close()


async def test_a_dead_holder_connection_frees_its_leases(pg_url: str, pg_server: PostgresServer) -> None:
    holder, other = AdvisoryLeases(pg_url), AdvisoryLeases(pg_url)
    try:
        assert await holder.try_acquire("chains")
        assert await holder.try_acquire("projections")
        assert not await other.try_acquire("chains")
        # The holder's connection dies (as when its process is killed): PostgreSQL frees
        # its locks, the other takes them, and the old holder learns it lost them.
        backend = holder._conn.get_server_pid()  # type: ignore[union-attr]
        admin = await asyncpg.connect(pg_server.dsn_for(pg_url.rsplit("/", 1)[1]))
        try:
            row = await admin.fetchrow("SELECT application_name FROM pg_stat_activity WHERE pid = $1",
                                       backend)
            assert row["application_name"] == f"krypton-leases pid={os.getpid()}"  # for operators
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", backend)
            # The backend exits (and frees its locks) a moment after the call returns.
            for _ in range(200):
                if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                                            backend):
                    break
                await asyncio.sleep(0.05)
        finally:
            await admin.close()
        assert await other.try_acquire("chains")
        assert await other.try_acquire("projections")
        assert not await holder.try_acquire("chains")
        assert holder.held == set()
    finally:
        await holder.close()
        await other.close()


async def test_closing_gives_every_lease_up(pg_url: str) -> None:
    a, b = AdvisoryLeases(pg_url), AdvisoryLeases(pg_url)
    try:
        for job in ("chains", "expiry"):
            assert await a.try_acquire(job)
        await a.close()
        assert [await b.try_acquire(job) for job in ("chains", "expiry")] == [True, True]
    finally:
        await a.close()
        await b.close()


async def test_an_unreachable_server_is_no_lease() -> None:
    leases = AdvisoryLeases("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    assert not await leases.try_acquire("chains")
    await leases.close()


def test_each_job_has_its_own_lock_key() -> None:
    jobs = ["chains", "expiry", "projections", "checkpoint"]
    assert len({lease_key(j) for j in jobs}) == len(jobs)
    assert all(-(2**63) <= lease_key(j) < 2**63 for j in jobs)


async def test_on_sqlite_the_process_holds_every_lease() -> None:
    leases = LocalLeases()
    assert await leases.try_acquire("chains") and await leases.try_acquire("chains")
    await leases.release("chains")
    assert leases.held == set()
