"""The payouts book (`app.payouts.PayoutBook`) and the fee sweeps' (`app.fee_sweeps.SweepBook`)
on the unit of work's own transaction (migration 0016; the bounce watch's columns: 0020)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from krypton.adapters.db import tables as t
from krypton.adapters.db.database import SqlUnitOfWork
from krypton.adapters.db.repositories import Repo
from krypton.app.fee_sweeps import Sweep, SweepStatus
from krypton.app.ports import IdempotencyClash, UnitOfWork
from krypton.domain.payout import Payout, PayoutStatus

_P = t.payouts.c
_W = t.fee_sweeps.c
_J = t.journal_entries.c


def payout_book(uow: UnitOfWork) -> SqlPayoutBook:
    """The book writing in `uow`'s transaction (an SqlUnitOfWork: the only kind there is)."""
    sql = cast(SqlUnitOfWork, uow)
    return SqlPayoutBook(sql.connection, locking=sql.locking)


def sweep_book(uow: UnitOfWork) -> SqlSweepBook:
    sql = cast(SqlUnitOfWork, uow)
    return SqlSweepBook(sql.connection, locking=sql.locking)


def _values(p: Payout) -> dict[str, Any]:
    return dict(id=p.id, merchant_id=p.merchant_id, asset=p.asset, amount=p.amount,
                destination=p.destination, description=p.description, status=p.status.value,
                message_hash=p.message_hash, tx_hash=p.tx_hash, network_fee=p.network_fee,
                failure=p.failure, created_at=p.created_at, updated_at=p.updated_at,
                bounce_check_at=p.bounce_check_at, bounce_checks=p.bounce_checks)


def _payout(r: sa.Row[Any]) -> Payout:
    return Payout(id=r.id, merchant_id=r.merchant_id, asset=r.asset, amount=int(r.amount),
                  destination=r.destination, created_at=r.created_at, updated_at=r.updated_at,
                  status=PayoutStatus(r.status), description=r.description,
                  message_hash=r.message_hash, tx_hash=r.tx_hash,
                  network_fee=int(r.network_fee), failure=r.failure,
                  bounce_check_at=r.bounce_check_at, bounce_checks=int(r.bounce_checks))


class SqlPayoutBook(Repo):
    async def lock_merchant(self, merchant_id: str) -> None:
        # PostgreSQL: the merchant's row lock queues its concurrent payout requests, so each
        # reads the balance the previous one left. SQLite has one writer (BEGIN IMMEDIATE):
        # a write transaction is already alone.
        if self.locking:
            await self.conn.execute(sa.select(t.merchants.c.id).where(
                t.merchants.c.id == merchant_id).with_for_update())

    async def add(self, payout: Payout, idempotency_key: str | None,
                  request_hash: str | None) -> None:
        # No savepoint: on a clash the caller abandons the whole transaction.
        try:
            await self.conn.execute(t.payouts.insert().values(
                **_values(payout), idempotency_key=idempotency_key, request_hash=request_hash))
        except IntegrityError:
            raise IdempotencyClash(idempotency_key or payout.id) from None

    async def save(self, payout: Payout) -> None:
        values = _values(payout)
        del values["id"], values["created_at"]
        await self.conn.execute(t.payouts.update().where(_P.id == payout.id).values(**values))

    async def get(self, payout_id: str, *, for_update: bool = False) -> Payout | None:
        query = sa.select(t.payouts).where(_P.id == payout_id)
        if for_update and self.locking:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return _payout(row) if row else None

    async def by_key(self, merchant_id: str, key: str) -> tuple[Payout, str | None] | None:
        row = (await self.conn.execute(sa.select(t.payouts).where(
            _P.merchant_id == merchant_id, _P.idempotency_key == key))).first()
        return (_payout(row), row.request_hash) if row else None

    async def page(self, merchant_id: str, *, limit: int,
                   starting_after: str | None) -> tuple[list[Payout], bool]:
        query = sa.select(t.payouts).where(_P.merchant_id == merchant_id)
        if starting_after is not None:
            anchor = (await self.conn.execute(sa.select(_P.created_at, _P.id).where(
                _P.id == starting_after, _P.merchant_id == merchant_id))).first()
            if anchor is not None:
                query = query.where(sa.or_(_P.created_at < anchor.created_at, sa.and_(
                    _P.created_at == anchor.created_at, _P.id < anchor.id)))
        rows = (await self.conn.execute(query.order_by(_P.created_at.desc(), _P.id.desc())
                                        .limit(limit + 1))).all()
        return [_payout(r) for r in rows[:limit]], len(rows) > limit

    async def in_status(self, statuses: Sequence[PayoutStatus], limit: int) -> list[Payout]:
        rows = (await self.conn.execute(sa.select(t.payouts).where(
            _P.status.in_([s.value for s in statuses])).order_by(_P.created_at, _P.id)
            .limit(limit))).all()
        return [_payout(r) for r in rows]

    async def bounce_checks_due(self, now: datetime, limit: int) -> list[Payout]:
        """Confirmed payouts whose bounce check is due, the longest due first: one range of
        ix_payouts_status_bounce_check_at, already in order (unwatched payouts hold null and
        are never read; ties in any order, so no sort)."""
        rows = (await self.conn.execute(sa.select(t.payouts).where(
            _P.status == PayoutStatus.CONFIRMED.value, _P.bounce_check_at <= now)
            .order_by(_P.bounce_check_at).limit(limit))).all()
        return [_payout(r) for r in rows]

    async def entry_id(self, kind: str, reference: str) -> int | None:
        row = (await self.conn.execute(sa.select(_J.id).where(
            _J.kind == kind, _J.reference == reference))).first()
        return int(row.id) if row else None


def _sweep(r: sa.Row[Any]) -> Sweep:
    return Sweep(r.id, r.asset, int(r.amount), r.destination, SweepStatus(r.status),
                 r.created_at, r.updated_at, r.failure)


class SqlSweepBook(Repo):
    async def add(self, sweep: Sweep) -> None:
        await self.conn.execute(t.fee_sweeps.insert().values(
            id=sweep.id, asset=sweep.asset, amount=sweep.amount, destination=sweep.destination,
            status=sweep.status.value, failure=sweep.failure, created_at=sweep.created_at,
            updated_at=sweep.updated_at))

    async def save(self, sweep: Sweep) -> None:
        await self.conn.execute(t.fee_sweeps.update().where(_W.id == sweep.id).values(
            status=sweep.status.value, failure=sweep.failure, updated_at=sweep.updated_at))

    async def get(self, sweep_id: str) -> Sweep | None:
        row = (await self.conn.execute(sa.select(t.fee_sweeps).where(_W.id == sweep_id))).first()
        return _sweep(row) if row else None

    async def in_status(self, statuses: Sequence[SweepStatus], limit: int) -> list[Sweep]:
        rows = (await self.conn.execute(sa.select(t.fee_sweeps).where(
            _W.status.in_([s.value for s in statuses])).order_by(_W.created_at, _W.id)
            .limit(limit))).all()
        return [_sweep(r) for r in rows]

    async def totals(self) -> dict[tuple[str, str], int]:
        """(asset, status) -> amount."""
        rows = await self.conn.execute(sa.select(_W.asset, _W.status, sa.func.sum(_W.amount))
                                       .group_by(_W.asset, _W.status))
        return {(a, s): int(total) for a, s, total in rows}

    async def entry_id(self, kind: str, reference: str) -> int | None:
        row = (await self.conn.execute(sa.select(_J.id).where(
            _J.kind == kind, _J.reference == reference))).first()
        return int(row.id) if row else None

    async def last_failed_at(self, asset: str) -> datetime | None:
        found = (await self.conn.execute(sa.select(sa.func.max(_W.updated_at)).where(
            _W.asset == asset, _W.status == SweepStatus.FAILED.value))).scalar()
        return found if isinstance(found, datetime) else None
