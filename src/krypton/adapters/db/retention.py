"""Pruning of finished bookkeeping (app/retention.py), in the unit of work's transaction.

Rows are chosen first (oldest first, up to the limit) and then deleted by key, so one call
deletes at most `limit` rows on both databases (SQLite's DELETE has no LIMIT by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from krypton.adapters.db import tables as t
from krypton.adapters.db.database import SqlUnitOfWork
from krypton.adapters.db.repositories import Repo
from krypton.app.ports import UnitOfWork
from krypton.app.retention import Kind

_D, _A = t.webhook_deliveries.c, t.webhook_attempts.c
_M, _I = t.telegram_messages.c, t.idempotency_keys.c
_P, _L = t.shop_proof_payloads.c, t.telegram_link_codes.c


def pruner(uow: UnitOfWork) -> SqlPruner:
    sql = cast(SqlUnitOfWork, uow)
    return SqlPruner(sql.connection, locking=sql.locking)


class SqlPruner(Repo):
    async def prune(self, kind: Kind, before: datetime, limit: int) -> int:
        if kind == "webhook_deliveries":
            ids = await self._keys(sa.select(_D.id).where(_D.finished_at < before)
                                   .order_by(_D.finished_at), limit)
            if ids:  # their attempts first: nothing relies on the foreign key's cascade
                await self.conn.execute(t.webhook_attempts.delete().where(_A.delivery_id.in_(ids)))
                await self.conn.execute(t.webhook_deliveries.delete().where(_D.id.in_(ids)))
            return len(ids)
        if kind == "telegram_messages":
            return await self._delete(t.telegram_messages, _M.id, _M.finished_at < before,
                                      _M.finished_at, limit)
        if kind == "shop_proof_payloads":
            return await self._delete(t.shop_proof_payloads, _P.nonce, _P.expires_at < before,
                                      _P.expires_at, limit)
        if kind == "telegram_link_codes":
            return await self._delete(t.telegram_link_codes, _L.code_hash, _L.expires_at < before,
                                      _L.expires_at, limit)
        if kind == "idempotency_keys":
            rows = (await self.conn.execute(
                sa.select(_I.merchant_id, _I.key).where(_I.created_at < before)
                .order_by(_I.created_at).limit(limit))).all()
            for merchant_id, key in rows:  # a composite key: one statement each, batch-bounded
                await self.conn.execute(t.idempotency_keys.delete().where(
                    _I.merchant_id == merchant_id, _I.key == key))
            return len(rows)
        raise ValueError(f"unknown kind of record: {kind}")

    async def _keys(self, query: sa.Select[Any], limit: int) -> Sequence[Any]:
        return (await self.conn.execute(query.limit(limit))).scalars().all()

    async def _delete(self, table: sa.Table, key: sa.Column[Any], old: sa.ColumnElement[bool],
                      age: sa.Column[Any], limit: int) -> int:
        keys = await self._keys(sa.select(key).where(old).order_by(age), limit)
        if keys:
            await self.conn.execute(table.delete().where(key.in_(keys)))
        return len(keys)
