"""The write-ahead log starts over after each checkpoint, even under a steady write load.

A checkpoint run beside a busy writer never catches up with the end of the log, so the
log never restarts and grows for ever (about 50 MB a second under the invoice benchmark).
Database.checkpoint holds the writer while it copies: it copies every frame, and the
next write starts the log afresh."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from krypton.adapters.db import tables
from krypton.adapters.db.database import Database
from krypton.adapters.db.migrate import upgrade


async def _write(db: Database, n: int) -> None:
    async with db.writer.connect() as conn:
        await conn.begin()
        await conn.execute(tables.counters.insert(), {"name": f"c{n}", "value": n})
        await conn.commit()


def _frames_in_log(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


async def test_checkpoint_copies_everything_while_writes_keep_coming(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    db = Database.open(f"sqlite:///{path}")
    await upgrade(db)
    written = 0
    stop = asyncio.Event()

    async def steady_writer() -> None:
        nonlocal written
        while not stop.is_set():
            await _write(db, written)
            written += 1
            await asyncio.sleep(0)  # let the checkpoint and other tasks in, like a server

    writer = asyncio.create_task(steady_writer())
    try:
        results = []
        for _ in range(5):
            await asyncio.sleep(0.02)
            results.append(await db.checkpoint())
    finally:
        stop.set()
        await writer
    assert written > 50
    # Every checkpoint copied the whole log, although the writer never paused on its own...
    assert all(log == copied for log, copied in results), results
    # ...so after the last one the log started over with the next write.
    await _write(db, written)
    assert _frames_in_log(path) <= 10, "the log did not start over after the checkpoint"
    async with db.reader.connect() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).where(
            tables.counters.c.name.startswith("c")))).scalar()
    assert count == written + 1  # nothing lost while the checkpoint held the writer
    await db.dispose()

