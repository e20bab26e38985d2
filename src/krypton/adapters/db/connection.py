"""The connection repositories are written against: on PostgreSQL (asyncpg) the direct
connection (pg_direct.py), on SQLite the inline connection (sqlite_inline.py), both with
the part of SQLAlchemy's AsyncConnection API we use; AsyncConnection itself for any other
driver."""

from __future__ import annotations

from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from krypton.adapters.db.pg_direct import PgConnection, PgEngine
from krypton.adapters.db.sqlite_inline import InlineConnection, InlineEngine, Params

Connection: TypeAlias = AsyncConnection | InlineConnection | PgConnection
Engine: TypeAlias = AsyncEngine | InlineEngine | PgEngine


async def write(conn: Connection, statement: sa.Executable, params: Params) -> list[tuple[Any, ...]]:
    """Run a hot-path INSERT/UPDATE/DELETE built once at import (one row of parameters, or
    a list for many); the rows it RETURNs. Both SQLite and PostgreSQL skip SQLAlchemy's
    execution path for it."""
    if isinstance(conn, PgConnection):
        return await conn.write(statement, params)
    if isinstance(conn, InlineConnection):
        return conn.write(statement, params)
    result = await conn.execute(statement, params)
    return [tuple(row) for row in result] if result.returns_rows else []
