"""Who runs each background job (the `Leases` port): on PostgreSQL a session-level advisory
lock per job, on SQLite the process itself.

An advisory lock belongs to the connection that took it, so these leases hold one
connection of their own, outside the pool: a pooled connection would go back to the pool
still holding its locks. When the holding process dies its connection closes and
PostgreSQL frees the locks at once; the next process that asks gets them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Collection

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

CONNECT_TIMEOUT = 5.0
# What a lost connection or an unreachable server raises: the leases are then given up.
# (A connection the server terminated can also leave asyncpg's protocol mid-operation, which
# it reports as an InternalClientError.)
_LOST = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
         asyncpg.InternalClientError)


def lease_key(job: str) -> int:
    """The advisory lock's 64-bit key for `job` (locks are per database: two Krypton
    databases on one server never share one)."""
    digest = hashlib.sha256(f"krypton.job.{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class LocalLeases:
    """The embedded default (SQLite) runs in one process: every lease is this process's."""

    def __init__(self) -> None:
        self.held: set[str] = set()

    async def try_acquire(self, job: str) -> bool:
        self.held.add(job)
        return True

    async def release(self, job: str) -> None:
        self.held.discard(job)

    async def running(self, jobs: Collection[str]) -> set[str]:
        return self.held & set(jobs)

    async def close(self) -> None:
        self.held.clear()


class AdvisoryLeases:
    """Leases as PostgreSQL session advisory locks on one dedicated connection."""

    def __init__(self, url: str) -> None:
        # SQLAlchemy's URL names its driver (postgresql+asyncpg://); asyncpg wants the plain one.
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: asyncpg.Connection | None = None
        self.held: set[str] = set()
        # One connection runs one statement at a time; the jobs ask concurrently.
        self._lock = asyncio.Lock()

    async def try_acquire(self, job: str) -> bool:
        async with self._lock:
            try:
                conn = await self._connection()
                if job in self.held:
                    # The lock lives as long as the connection: a round trip proves both.
                    await conn.fetchval("SELECT 1")
                    return True
                got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", lease_key(job)))
            except _LOST:
                await self._drop()  # whatever was held is gone with the connection
                return False
            if got:
                self.held.add(job)
            return got

    async def release(self, job: str) -> None:
        async with self._lock:
            if job not in self.held or self._conn is None:
                return
            self.held.discard(job)
            try:
                await self._conn.fetchval("SELECT pg_advisory_unlock($1)", lease_key(job))
            except _LOST:
                await self._drop()

    async def running(self, jobs: Collection[str]) -> set[str]:
        """Which of `jobs` some process of the cluster holds the lease of now (any process:
        the advisory locks of this database, whoever took them)."""
        keys = {lease_key(job) & (2**64 - 1): job for job in jobs}
        async with self._lock:
            try:
                conn = await self._connection()
                rows = await conn.fetch(
                    "SELECT classid, objid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
            except _LOST:
                await self._drop()
                raise
        held = {(int(r["classid"]) << 32) | int(r["objid"]) for r in rows}
        return {job for key, job in keys.items() if key in held}

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                try:
                    await self._conn.close(timeout=CONNECT_TIMEOUT)
                except _LOST:
                    self._conn.terminate()
            self._conn = None
            self.held.clear()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self.held.clear()
            # The process id in application_name tells an operator (pg_stat_activity joined
            # with pg_locks) which process runs which job.
            self._conn = await asyncpg.connect(
                self._dsn, timeout=CONNECT_TIMEOUT,
                server_settings={"application_name": f"krypton-leases pid={os.getpid()}"})
        return self._conn

    async def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
        self._conn = None
        self.held.clear()
