"""Read models kept by the projections consumer; all of them can be rebuilt from the log."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from krypton.adapters.db import tables as t
from krypton.app.ports import StoredEvent
from krypton.domain import events as ev


class ReadModels:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _add(self, table: sa.Table, key: dict[str, Any], deltas: dict[str, int]) -> None:
        """Add `deltas` to the row at `key`, creating it at zero first."""
        where = [table.c[k] == v for k, v in key.items()]
        result = await self.conn.execute(table.update().where(*where).values(
            {col: table.c[col] + d for col, d in deltas.items()}))
        if result.rowcount == 0:
            zeros = {c.name: 0 for c in table.c if c.name not in key}
            await self.conn.execute(table.insert().values({**zeros, **key, **deltas}))

    async def apply(self, e: StoredEvent) -> None:
        d = e.data
        day = e.created_at.date().isoformat()
        if e.type == ev.INVOICE_CREATED:
            await self._add(t.rm_invoice_summary, {"merchant_id": e.merchant_id, "status": "pending"},
                            {"count": 1})
        elif e.type.startswith("invoice.") and "previous_status" in d:
            await self._add(t.rm_invoice_summary,
                            {"merchant_id": e.merchant_id, "status": d["previous_status"]},
                            {"count": -1})
            await self._add(t.rm_invoice_summary, {"merchant_id": e.merchant_id, "status": d["status"]},
                            {"count": 1})
        elif e.type == ev.SETTLEMENT_CREATED:
            gross, fee, net = int(d["gross"]), int(d["fee"]), int(d["net"])
            await self._add(t.rm_merchant_revenue, {"merchant_id": e.merchant_id, "asset": d["asset"]},
                            {"gross": gross, "net": net, "count": 1})
            await self._add(t.rm_daily_settlements,
                            {"merchant_id": e.merchant_id, "day": day, "asset": d["asset"]},
                            {"gross": gross, "fees": fee, "count": 1})
        elif e.type == ev.PAYMENT_DETECTED:
            await self._add(t.rm_payment_stats, {"day": day, "asset": d["asset"]}, {"detected": 1})
        elif e.type == ev.PAYMENT_CONFIRMED:
            took = datetime.fromisoformat(d["confirmed_at"]) - datetime.fromisoformat(d["detected_at"])
            await self._add(t.rm_payment_stats, {"day": day, "asset": d["asset"]},
                            {"confirmed": 1, "confirm_ms_total": took // timedelta(milliseconds=1)})
        elif e.type == ev.PAYMENT_FAILED:
            await self._add(t.rm_payment_stats, {"day": day, "asset": d["asset"]}, {"failed": 1})

    async def reset(self) -> None:
        for table in t.READ_MODELS:
            await self.conn.execute(table.delete())

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        out = {}
        for table in t.READ_MODELS:
            rows = await self.conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            out[table.name] = [tuple(r) for r in rows]
        return out

    async def merchant_summary(self, merchant_id: str) -> list[dict[str, Any]]:
        rows = await self.conn.execute(sa.select(t.rm_merchant_revenue).where(
            t.rm_merchant_revenue.c.merchant_id == merchant_id))
        return [dict(r._mapping) for r in rows]

    async def invoice_summary(self, merchant_id: str) -> dict[str, int]:
        rows = await self.conn.execute(sa.select(t.rm_invoice_summary).where(
            t.rm_invoice_summary.c.merchant_id == merchant_id))
        return {str(r.status): int(r._mapping["count"]) for r in rows}

    async def daily_settlements(self, merchant_id: str) -> list[dict[str, Any]]:
        rows = await self.conn.execute(sa.select(t.rm_daily_settlements).where(
            t.rm_daily_settlements.c.merchant_id == merchant_id).order_by(
            t.rm_daily_settlements.c.day))
        return [dict(r._mapping) for r in rows]

    async def payment_stats(self) -> list[dict[str, Any]]:
        rows = await self.conn.execute(sa.select(t.rm_payment_stats).order_by(
            t.rm_payment_stats.c.day, t.rm_payment_stats.c.asset))
        return [dict(r._mapping) for r in rows]
