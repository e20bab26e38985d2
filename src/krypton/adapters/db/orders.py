"""The Stars shop's orders (`app.shop.OrderBook`) on the unit of work's own transaction
(migration 0018): an order's change, its events and its ledger entries commit together."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from krypton.adapters.db import tables as t
from krypton.adapters.db.database import SqlUnitOfWork
from krypton.adapters.db.repositories import Repo, keyset_page
from krypton.app.ports import IdempotencyClash, UnitOfWork
from krypton.domain.order import Order, OrderStatus

_O = t.shop_orders.c
_J = t.journal_entries.c
_COLUMNS = frozenset(c.name for c in t.shop_orders.columns)
_FIELDS = tuple(f.name for f in fields(Order) if f.name in _COLUMNS)


def order_book(uow: UnitOfWork) -> SqlOrderBook:
    """The book writing in `uow`'s transaction (an SqlUnitOfWork: the only kind there is)."""
    sql = cast(SqlUnitOfWork, uow)
    return SqlOrderBook(sql.connection, locking=sql.locking)


def _values(order: Order) -> dict[str, Any]:
    values = {name: getattr(order, name) for name in _FIELDS}
    values["status"] = order.status.value
    return values


def _order(r: sa.Row[Any]) -> Order:
    data = {name: getattr(r, name) for name in _FIELDS}
    data["status"] = OrderStatus(r.status)
    return Order(**data)


class SqlOrderBook(Repo):
    async def add(self, order: Order) -> None:
        try:
            await self.conn.execute(t.shop_orders.insert().values(**_values(order)))
        except IntegrityError:
            if order.idempotency_key is None:
                raise
            raise IdempotencyClash(order.idempotency_key) from None

    async def save(self, order: Order) -> None:
        values = _values(order)
        del values["id"]
        await self.conn.execute(t.shop_orders.update().where(_O.id == order.id).values(**values))

    async def get(self, order_id: str, *, lock: bool = False) -> Order | None:
        query = sa.select(t.shop_orders).where(_O.id == order_id)
        if lock and self.locking:
            query = query.with_for_update()
        row = await self._one(query)
        return _order(row) if row else None

    async def by_invoice(self, invoice_id: str, *, lock: bool = False) -> Order | None:
        query = sa.select(t.shop_orders).where(_O.invoice_id == invoice_id)
        if lock and self.locking:
            query = query.with_for_update()
        row = await self._one(query)
        return _order(row) if row else None

    async def by_idempotency_key(self, key: str) -> Order | None:
        row = await self._one(sa.select(t.shop_orders).where(_O.idempotency_key == key))
        return _order(row) if row else None

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Orders with work to do by `now` (paid, fulfilling or failed, not yet refunded):
        those already committed to a supplier first (their delivery is nearest), then by
        when they became due."""
        active = [OrderStatus.PAID.value, OrderStatus.FULFILLING.value, OrderStatus.FAILED.value]
        uncommitted = sa.case((_O.supplier_request.is_(None), 1), else_=0)
        query = (sa.select(_O.id).where(_O.status.in_(active),
                                        sa.or_(_O.next_attempt_at.is_(None), _O.next_attempt_at <= now))
                 .order_by(uncommitted, _O.next_attempt_at, _O.id).limit(limit))
        return [r.id for r in await self.conn.execute(query)]

    async def of_buyer(self, buyer: str, limit: int,
                       starting_after: str | None) -> tuple[list[Order], bool]:
        rows, more = await keyset_page(self, t.shop_orders, [_O.buyer == buyer], limit, starting_after)
        return [_order(r) for r in rows], more

    async def entry_id(self, kind: str, reference: str) -> int | None:
        """The journal entry (kind, reference)'s id: what the signer's ledger check reads."""
        row = await self._one(sa.select(_J.id).where(_J.kind == kind, _J.reference == reference))
        return int(row.id) if row else None
