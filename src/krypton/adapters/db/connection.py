"""The connection repositories are written against: SQLAlchemy's AsyncConnection on
PostgreSQL, the inline SQLite connection (sqlite_inline.py) with the same methods."""

from __future__ import annotations

from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from krypton.adapters.db.sqlite_inline import InlineConnection, InlineEngine, Params

Connection: TypeAlias = AsyncConnection | InlineConnection
Engine: TypeAlias = AsyncEngine | InlineEngine


async def write(conn: Connection, statement: sa.Executable, params: Params) -> list[tuple[Any, ...]]:
    """Run a hot-path INSERT/UPDATE/DELETE built once at import (one row of parameters, or
    a list for many); the rows it RETURNs. On SQLite it skips SQLAlchemy's execution path."""
    if isinstance(conn, InlineConnection):
        return conn.write(statement, params)
    result = await conn.execute(statement, params)
    return [tuple(row) for row in result] if result.returns_rows else []
