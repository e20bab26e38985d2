"""Group commit on SQLite's single writer: units of work that finish on the same turn of
the event loop share one COMMIT, each in its own SAVEPOINT (sqlite_inline.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from krypton.adapters.db import tables
from krypton.adapters.db.connection import write
from krypton.adapters.db.database import Database
from krypton.adapters.db.migrate import upgrade
from krypton.adapters.db.sqlite_inline import InlineConnection


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database.open(f"sqlite:///{tmp_path / 'k.db'}")
    await upgrade(database)
    yield database
    await database.dispose()


def _count_commits(db: Database) -> list[int]:
    commits = [0]

    def on_commit(_conn: Any) -> None:
        commits[0] += 1

    event.listen(db.writer.sync_engine, "commit", on_commit)
    return commits


def _names_on_disk(db: Database) -> set[str]:
    """What another process would read: only what was committed."""
    with sqlite3.connect(sa.make_url(db.url).database or "") as conn:
        return {r[0] for r in conn.execute("SELECT name FROM counters WHERE name LIKE 't_'")}


async def _connect(db: Database) -> InlineConnection:
    conn = await db.writer.connect()
    assert isinstance(conn, InlineConnection)
    return conn


async def _unit(db: Database, name: str, *, fail: bool = False) -> None:
    async with db.writer.connect() as conn:
        await conn.begin()
        await write(conn, tables.counters.insert(), {"name": name, "value": 1})
        if fail:
            raise RuntimeError("this unit of work fails")
        await conn.commit()
        # Acknowledged only once durable: another connection sees it now.
        assert name in _names_on_disk(db)


async def test_concurrent_units_of_work_share_one_commit(db: Database) -> None:
    commits = _count_commits(db)
    await asyncio.gather(*(_unit(db, f"t{i}") for i in range(10)))
    assert _names_on_disk(db) == {f"t{i}" for i in range(10)}
    assert commits[0] < 10, "every unit of work committed on its own"


async def test_a_failing_unit_of_work_undoes_only_its_own_writes(db: Database) -> None:
    results = await asyncio.gather(
        _unit(db, "t1"), _unit(db, "t2", fail=True), _unit(db, "t3"),
        _unit(db, "t1"),  # a duplicate key: fails, and must not take t1 with it
        _unit(db, "t4"), return_exceptions=True)
    assert [type(r).__name__ for r in results] == [
        "NoneType", "RuntimeError", "NoneType", "IntegrityError", "NoneType"]
    assert _names_on_disk(db) == {"t1", "t3", "t4"}


async def test_a_failed_commit_fails_every_unit_of_work_in_the_batch(db: Database) -> None:
    failures = [1]

    def fail_once(_conn: Any) -> None:
        if failures[0]:
            failures[0] -= 1
            raise sqlite3.OperationalError("disk I/O error")

    event.listen(db.writer.sync_engine, "commit", fail_once)
    results = await asyncio.gather(*(_unit(db, f"t{i}") for i in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, sqlite3.OperationalError) for r in results), results
    assert _names_on_disk(db) == set()  # nobody was told "done", and nothing is there
    await _unit(db, "t9")  # the writer works again afterwards
    assert _names_on_disk(db) == {"t9"}


async def test_a_writer_that_gives_up_while_queued_does_not_strand_the_batch(db: Database) -> None:
    holder = await _connect(db)
    await holder.begin()
    await write(holder, tables.counters.insert(), {"name": "t1", "value": 1})
    queued = asyncio.create_task(_connect(db))
    await asyncio.sleep(0)  # `queued` now waits for the writer
    committing = asyncio.create_task(holder.commit())
    await asyncio.sleep(0)  # the commit handed the open batch to `queued`...
    queued.cancel()  # ...which gives up before it ever runs
    await asyncio.wait_for(committing, timeout=5)
    assert _names_on_disk(db) == {"t1"}
    await holder.close()


async def test_a_plain_connection_commits_the_batch_it_is_handed_first(db: Database) -> None:
    """Alembic and the checkpoint take the writer without beginning a unit of work."""
    holder = await _connect(db)
    await holder.begin()
    await write(holder, tables.counters.insert(), {"name": "t1", "value": 1})
    plain = asyncio.create_task(_connect(db))
    await asyncio.sleep(0)
    committing = asyncio.create_task(holder.commit())
    conn = await plain
    assert _names_on_disk(db) == set()  # still the open batch, handed on
    await conn.execute(sa.text("SELECT 1"))
    assert _names_on_disk(db) == {"t1"}
    await conn.close()
    await committing
