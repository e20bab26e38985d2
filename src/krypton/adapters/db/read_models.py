"""Read models kept by the projections consumer; all of them can be rebuilt from the log."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from krypton.adapters.db import tables as t
from krypton.adapters.db.connection import Connection
from krypton.app.ports import ConfirmedPayment, DailyRow, StoredEvent
from krypton.domain import events as ev

Key = tuple[str, tuple[tuple[str, Any], ...]]  # (table name, key columns)


class ReadModels:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def apply_batch(self, events: Sequence[StoredEvent]) -> None:
        """Fold a batch into per-row deltas first: one write per touched row, not per event
        (the projection shares SQLite's single writer with every request)."""
        deltas: dict[Key, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for e in events:
            for table, key, change in _effects(e):
                row = deltas[(table.name, tuple(sorted(key.items())))]
                for column, amount in change.items():
                    row[column] += amount
        for (name, columns), change in deltas.items():
            await self._add(t.metadata.tables[name], dict(columns), change)

    async def _add(self, table: sa.Table, key: dict[str, Any], deltas: dict[str, int]) -> None:
        """Add `deltas` to the row at `key`, creating it at zero first."""
        where = [table.c[k] == v for k, v in key.items()]
        result = await self.conn.execute(table.update().where(*where).values(
            {col: table.c[col] + d for col, d in deltas.items()}))
        if result.rowcount == 0:
            zeros = {c.name: 0 for c in table.c if c.name not in key}
            await self.conn.execute(table.insert().values({**zeros, **key, **deltas}))

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

    # --- The merchant dashboard's queries (app/stats.py) -------------------------------------

    async def daily_settlements(self, merchant_id: str, since: str) -> list[DailyRow]:
        """The merchant's rows of rm_daily_settlements from the day `since` (ISO) on."""
        c = t.rm_daily_settlements.c
        rows = await self.conn.execute(sa.select(t.rm_daily_settlements).where(
            c.merchant_id == merchant_id, c.day >= since).order_by(c.day, c.asset))
        return [DailyRow(str(r.day), str(r.asset), int(r.gross), int(r.fees), int(r._mapping["count"]))
                for r in rows]

    async def confirmed_payments(self, merchant_id: str, limit: int) -> list[ConfirmedPayment]:
        """The merchant's `limit` most recently confirmed payments, newest first."""
        c = t.payments.c
        rows = await self.conn.execute(
            sa.select(c.id, c.asset, c.detected_at, c.confirmed_at)
            .where(c.merchant_id == merchant_id, c.confirmed_at.is_not(None))
            .order_by(c.confirmed_at.desc(), c.id.desc()).limit(limit))
        return [ConfirmedPayment(r.id, r.asset, r.detected_at, r.confirmed_at) for r in rows]

    async def events_about(self, merchant_id: str, subject_ids: Sequence[str],
                           limit: int) -> list[StoredEvent]:
        """The merchant's events whose subject is one of `subject_ids`, in commit order."""
        c = t.events.c
        rows = await self.conn.execute(
            sa.select(t.events).where(c.merchant_id == merchant_id,
                                      c.subject_id.in_(sorted(set(subject_ids))))
            .order_by(c.txid, c.seq).limit(limit))
        return [StoredEvent(r.seq, r.txid, r.id, r.type, r.merchant_id, r.subject_id, r.data,
                            r.created_at) for r in rows]


Effect = tuple[sa.Table, dict[str, Any], dict[str, int]]


def _effects(e: StoredEvent) -> list[Effect]:
    """What one event adds to which read-model rows."""
    d = e.data
    day = e.created_at.date().isoformat()
    if e.type == ev.INVOICE_CREATED:
        return [(t.rm_invoice_summary, {"merchant_id": e.merchant_id, "status": "pending"}, {"count": 1})]
    if e.type.startswith("invoice.") and "previous_status" in d:
        return [
            (t.rm_invoice_summary, {"merchant_id": e.merchant_id, "status": d["previous_status"]},
             {"count": -1}),
            (t.rm_invoice_summary, {"merchant_id": e.merchant_id, "status": d["status"]}, {"count": 1}),
        ]
    if e.type == ev.SETTLEMENT_CREATED:
        gross, fee, net = int(d["gross"]), int(d["fee"]), int(d["net"])
        return [
            (t.rm_merchant_revenue, {"merchant_id": e.merchant_id, "asset": d["asset"]},
             {"gross": gross, "net": net, "count": 1}),
            (t.rm_daily_settlements, {"merchant_id": e.merchant_id, "day": day, "asset": d["asset"]},
             {"gross": gross, "fees": fee, "count": 1}),
        ]
    if e.type == ev.PAYMENT_DETECTED:
        return [(t.rm_payment_stats, {"day": day, "asset": d["asset"]}, {"detected": 1})]
    if e.type == ev.PAYMENT_CONFIRMED:
        took = datetime.fromisoformat(d["confirmed_at"]) - datetime.fromisoformat(d["detected_at"])
        return [(t.rm_payment_stats, {"day": day, "asset": d["asset"]},
                 {"confirmed": 1, "confirm_ms_total": took // timedelta(milliseconds=1)})]
    if e.type == ev.PAYMENT_FAILED:
        return [(t.rm_payment_stats, {"day": day, "asset": d["asset"]}, {"failed": 1})]
    return []
