"""The append-only event log (and outbox), read in a gap-free order.

On PostgreSQL, sequence values are handed out before commit, so a transaction that
commits late can leave an event with a *lower* seq than ones already visible: a reader
that follows seq alone would skip it for ever. Each event therefore stores the id of the
transaction that wrote it, and readers see only events written by transactions older than
the oldest one still running (pg_snapshot_xmin), in (txid, seq) order. Everything below
that horizon is final, so a position (txid, seq) never needs to go back.

SQLite has one writer at a time (BEGIN IMMEDIATE), so seq order is commit order: txid is 0.

The horizon is cluster-wide: a transaction left open in *any* database on the server holds
it back, and events committed since stay unread until it ends. Krypton's own sessions are
cut when idle in a transaction (database.py); the lag is exported as a metric, measured by
every consumer as it reads its position.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import Gauge

from krypton.adapters.db import tables as t
from krypton.adapters.db.connection import Connection, write
from krypton.app.ports import ConsumerLag, EventWindow, StoredEvent
from krypton.domain.events import Event

PG_TXID: sa.ColumnClause[int] = sa.literal_column("pg_current_xact_id()::text::bigint")
_INSERT_SQLITE = t.events.insert().values(txid=0)
_INSERT_PG = t.events.insert().values(txid=PG_TXID)
PG_HORIZON: sa.ColumnClause[int] = sa.literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
# Transaction ids handed out since the oldest transaction still running: how far the newest
# writes are ahead of what readers may see. It stays near the number of concurrent writers,
# and grows for as long as one transaction anywhere on the server stays open.
PG_HORIZON_LAG: sa.ColumnClause[int] = sa.literal_column(
    "(pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
    " - pg_snapshot_xmin(pg_current_snapshot())::text::bigint)")
HORIZON_LAG = Gauge("krypton_event_horizon_lag_transactions",
                    "PostgreSQL: transactions started since the oldest one still open on the "
                    "server; events they wrote are not readable by consumers or /api/v1/events yet")


class EventLog:
    def __init__(self, conn: Connection, new_id: Callable[[str], str]) -> None:
        self.conn = conn
        self.new_id = new_id
        self.pg = conn.dialect.name == "postgresql"
        self._pending: list[dict[str, Any]] = []

    async def append(self, event: Event, now: datetime) -> str:
        """Queue an event; the unit of work writes the queue (in order, one statement) just
        before it commits, so the events still commit with the state they describe."""
        event_id = self.new_id("evt")
        self._pending.append({"id": event_id, "type": event.type, "merchant_id": event.merchant_id,
                              "subject_id": event.subject_id, "data": event.data, "created_at": now})
        return event_id

    async def flush(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        await write(self.conn, _INSERT_PG if self.pg else _INSERT_SQLITE, rows)

    async def read(self, after: tuple[int, int], limit: int, merchant_id: str | None = None,
                   types: Collection[str] = ()) -> list[StoredEvent]:
        c = t.events.c
        query = sa.select(t.events).where(sa.tuple_(c.txid, c.seq) > sa.tuple_(*after))
        if self.pg:
            query = query.where(c.txid < PG_HORIZON)
        if merchant_id is not None:
            query = query.where(c.merchant_id == merchant_id)
        if types:
            query = query.where(c.type.in_(sorted(types)))
        rows = await self.conn.execute(query.order_by(c.txid, c.seq).limit(limit))
        return [StoredEvent(r.seq, r.txid, r.id, r.type, r.merchant_id, r.subject_id, r.data,
                            r.created_at) for r in rows]

    async def window(self, after: tuple[int, int], limit: int,
                     wanted: Callable[[str, str | None], bool]) -> EventWindow:
        # Two reads: positions and types of the next `limit` (small rows, nothing decoded),
        # then in full only the wanted ones up to the last of those. Decoding every event's
        # data was most of what a consumer needing few of them cost.
        c = t.events.c
        query = sa.select(c.txid, c.seq, c.type, c.merchant_id).where(
            sa.tuple_(c.txid, c.seq) > sa.tuple_(*after))
        if self.pg:
            query = query.where(c.txid < PG_HORIZON)
        rows = (await self.conn.execute(query.order_by(c.txid, c.seq).limit(limit))).all()
        if not rows:
            return EventWindow(None, (), ())
        end = (rows[-1].txid, rows[-1].seq)
        types = [r.type for r in rows]
        chosen = {r.type for r in rows if wanted(r.type, r.merchant_id)}
        events: list[StoredEvent] = []
        if chosen:
            # Up to `end` only: every event at or below it was readable by the first read
            # (below the horizon nothing new can appear), so both reads see the same events.
            full = sa.select(t.events).where(sa.tuple_(c.txid, c.seq) > sa.tuple_(*after),
                                             sa.tuple_(c.txid, c.seq) <= sa.tuple_(*end),
                                             c.type.in_(sorted(chosen)))
            events = [StoredEvent(r.seq, r.txid, r.id, r.type, r.merchant_id, r.subject_id, r.data,
                                  r.created_at)
                      for r in await self.conn.execute(full.order_by(c.txid, c.seq))
                      if wanted(r.type, r.merchant_id)]
        return EventWindow(end, types, events)

    async def position_of(self, event_id: str, merchant_id: str | None = None) -> tuple[int, int] | None:
        query = sa.select(t.events.c.txid, t.events.c.seq).where(t.events.c.id == event_id)
        if merchant_id is not None:
            query = query.where(t.events.c.merchant_id == merchant_id)
        row = (await self.conn.execute(query)).first()
        return (row.txid, row.seq) if row else None

    async def count(self) -> int:
        return int((await self.conn.execute(sa.select(sa.func.count()).select_from(t.events))).scalar_one())

    async def consumer_position(self, name: str) -> tuple[int, int]:
        c = t.consumer_positions.c
        query = sa.select(c.txid, c.seq).where(c.name == name)
        if self.pg:
            query = query.with_for_update()  # one instance of a consumer at a time
            lag = (await self.conn.execute(sa.select(PG_HORIZON_LAG))).scalar_one()
            HORIZON_LAG.set(lag)
        row = (await self.conn.execute(query)).first()
        if row is None:
            await self.conn.execute(t.consumer_positions.insert().values(name=name, txid=0, seq=0))
            return (0, 0)
        return (row.txid, row.seq)

    async def consumer_lags(self, cap: int) -> list[ConsumerLag]:
        """How far each consumer is behind the readable end of the log: events (counted up to
        `cap`, so a consumer far behind costs one bounded scan) and the oldest unread one's
        time. Reads positions without locking them: a consumer at work is not held up."""
        c, e = t.consumer_positions.c, t.events.c
        lags = []
        for row in await self.conn.execute(sa.select(c.name, c.txid, c.seq).order_by(c.name)):
            after = sa.tuple_(e.txid, e.seq) > sa.tuple_(sa.literal(row.txid), sa.literal(row.seq))
            unread = sa.select(e.created_at).where(after)
            if self.pg:
                unread = unread.where(e.txid < PG_HORIZON)
            first = (await self.conn.execute(unread.order_by(e.txid, e.seq).limit(1))).first()
            behind = 0
            if first is not None:
                capped = unread.with_only_columns(sa.literal(1)).limit(cap).subquery()
                behind = int((await self.conn.execute(
                    sa.select(sa.func.count()).select_from(capped))).scalar_one())
            lags.append(ConsumerLag(row.name, behind, first.created_at if first else None))
        return lags

    async def set_consumer_position(self, name: str, position: tuple[int, int]) -> None:
        c = t.consumer_positions.c
        result = await self.conn.execute(t.consumer_positions.update().where(c.name == name).values(
            txid=position[0], seq=position[1]))
        if result.rowcount == 0:
            await self.conn.execute(t.consumer_positions.insert().values(
                name=name, txid=position[0], seq=position[1]))
