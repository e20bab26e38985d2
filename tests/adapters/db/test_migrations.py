"""The migrations build exactly the schema tables.py describes, on every database."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from krypton.adapters.db import tables
from krypton.bootstrap import Container


async def test_migrated_schema_matches_the_table_definitions(container: Container) -> None:
    def diff(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": False})
        return list(compare_metadata(context, tables.metadata))

    async with container.db.reader.connect() as conn:
        assert await conn.run_sync(diff) == []
