"""The Mini App's bindings (table miniapp_bindings): which Telegram user first opened each
invoice with verified initData, and that user's purchases, newest first.

Each call is its own short transaction, like the Stars links: a binding is written from a
page request and read for a list, never as part of an invoice's own unit of work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from krypton.adapters.db import tables as t
from krypton.adapters.db.database import Database
from krypton.app.miniapp import Purchase
from krypton.domain.errors import DomainError

bindings = t.miniapp_bindings
invoices = t.invoices
_B = bindings.c
_I = invoices.c
_OWNER = sa.select(_B.telegram_user_id).where(_B.invoice_id == sa.bindparam("invoice_id"))
# The first user kept wins: a concurrent first binding's insert changes nothing.
_INSERT = {name: dialect.insert(bindings).on_conflict_do_nothing(index_elements=["invoice_id"])
           for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}
_COLUMNS = (_I.id, _I.status, _I.exception, _I.price_amount, _I.price_currency, _I.asset,
            _I.amount_paid, _I.description, _I.created_at, _I.paid_at)


class SqlMiniAppBindings:
    """`app.miniapp.Bindings` on the Krypton database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def bind(self, invoice_id: str, telegram_user_id: int, now: datetime) -> int:
        async with self._db.writer.connect() as conn:
            await conn.begin()
            await conn.execute(_INSERT[self._db.dialect].values(
                invoice_id=invoice_id, telegram_user_id=telegram_user_id, bound_at=now))
            row = (await conn.execute(_OWNER, {"invoice_id": invoice_id})).first()
            await conn.commit()
        assert row is not None  # inserted just now, or by the request that won
        return int(row.telegram_user_id)

    async def owner(self, invoice_id: str) -> int | None:
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(_OWNER, {"invoice_id": invoice_id})).first()
        return int(row.telegram_user_id) if row else None

    async def purchases(self, telegram_user_id: int, limit: int,
                        starting_after: str | None) -> tuple[list[Purchase], bool]:
        mine = sa.select(*_COLUMNS).join(bindings, _B.invoice_id == _I.id).where(
            _B.telegram_user_id == telegram_user_id)
        async with self._db.reader.connect() as conn:
            if starting_after is not None:
                # The anchor must be one of this user's own: an id from someone else's list
                # says nothing about where this one goes on.
                anchor = (await conn.execute(sa.select(_I.created_at, _I.id).join(
                    bindings, _B.invoice_id == _I.id).where(
                    _I.id == starting_after, _B.telegram_user_id == telegram_user_id))).first()
                if anchor is None:
                    raise DomainError(f"starting_after '{starting_after}' is not an id from this "
                                      "list.", field="starting_after")
                mine = mine.where(sa.tuple_(_I.created_at, _I.id) < sa.tuple_(*anchor))
            rows: list[sa.Row[Any]] = list(await conn.execute(
                mine.order_by(_I.created_at.desc(), _I.id.desc()).limit(limit + 1)))
        return [_purchase(r) for r in rows[:limit]], len(rows) > limit


def _purchase(r: sa.Row[Any]) -> Purchase:
    return Purchase(id=str(r.id), status=str(r.status), exception=r.exception,
                    price_amount=int(r.price_amount), price_currency=str(r.price_currency),
                    asset=r.asset, amount_paid=int(r.amount_paid), description=r.description,
                    created_at=r.created_at, paid_at=r.paid_at)
