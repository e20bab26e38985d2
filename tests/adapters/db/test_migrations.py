"""The migrations build exactly the schema tables.py describes, on every database."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from krypton.adapters.db import migrate, tables
from krypton.adapters.db.database import Database
from krypton.adapters.db.repositories import CounterRepo
from krypton.bootstrap import Container
from tests.support.servers import PostgresServer


async def test_migrated_schema_matches_the_table_definitions(container: Container) -> None:
    def diff(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": False})
        return list(compare_metadata(context, tables.metadata))

    async with container.db.reader.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_the_deposit_index_goes_on_where_the_counter_stood(pg_server: PostgresServer) -> None:
    """0007 turns PostgreSQL's deposit counter into a sequence: no index is handed out twice."""
    db = Database.open(pg_server.create_database(f"m{os.getpid()}_0007"))
    try:
        await migrate.upgrade(db, "0006")
        async with db.writer.connect() as conn:  # indexes 0, 1 and 2 handed out by the row
            await conn.execute(tables.counters.update().where(
                tables.counters.c.name == "tron_deposit_index").values(value=2))
            await conn.commit()
        await migrate.upgrade(db)
        async with db.writer.connect() as conn:
            taken = [await CounterRepo(conn, locking=True).next("tron_deposit_index")
                     for _ in range(2)]
            rows = (await conn.execute(sa.select(tables.counters.c.name))).scalars().all()
        assert taken == [3, 4]
        assert "tron_deposit_index" not in rows  # nothing can take an index from the row now
    finally:
        await db.dispose()
