"""Apply Alembic migrations programmatically (`krypton migrate`, and at start-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from krypton.adapters.db.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    def run(sync_conn: Any) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with db.writer.connect() as conn:
        await conn.run_sync(run)
        await conn.commit()


async def current(db: Database) -> str | None:
    def run(sync_conn: Any) -> str | None:
        from alembic.runtime.migration import MigrationContext
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with db.reader.connect() as conn:
        return await conn.run_sync(run)
