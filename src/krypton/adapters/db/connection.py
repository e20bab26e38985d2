"""The connection repositories are written against: SQLAlchemy's AsyncConnection on
PostgreSQL, the inline SQLite connection (sqlite_inline.py) with the same methods."""

from __future__ import annotations

from typing import TypeAlias

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from krypton.adapters.db.sqlite_inline import InlineConnection, InlineEngine

Connection: TypeAlias = AsyncConnection | InlineConnection
Engine: TypeAlias = AsyncEngine | InlineEngine
