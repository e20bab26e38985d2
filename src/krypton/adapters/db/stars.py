"""Telegram Stars links (table stars_links): one createInvoiceLink answer per invoice.

Each call is its own short transaction: the link comes from a Bot API call, which no
database transaction is held open across (on SQLite the writer is shared by every request).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from krypton.adapters.db import tables as t
from krypton.adapters.db.database import Database

stars_links = t.stars_links
_C = stars_links.c
_SELECT = sa.select(_C.link).where(_C.invoice_id == sa.bindparam("invoice_id"))
# The first link kept wins: a concurrent first request's insert changes nothing.
_INSERT = {name: dialect.insert(stars_links).on_conflict_do_nothing(index_elements=["invoice_id"])
           for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}


class SqlStarsLinks:
    """`app.stars.StarsLinks` on the Krypton database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, invoice_id: str) -> str | None:
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(_SELECT, {"invoice_id": invoice_id})).first()
        return str(row.link) if row else None

    async def add(self, invoice_id: str, link: str, now: datetime) -> str:
        async with self._db.writer.connect() as conn:
            await conn.begin()
            await conn.execute(_INSERT[self._db.dialect].values(
                invoice_id=invoice_id, link=link, created_at=now))
            row = (await conn.execute(_SELECT, {"invoice_id": invoice_id})).first()
            await conn.commit()
        assert row is not None  # inserted just now, or by the request that won
        return str(row.link)
