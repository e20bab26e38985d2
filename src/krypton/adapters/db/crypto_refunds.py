"""What chain refunds keep beside their `refunds` row (migration 0017), on the unit of
work's own transaction: the refund, its ledger entries and this detail commit together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from krypton.adapters.db import tables as t
from krypton.adapters.db.database import SqlUnitOfWork
from krypton.adapters.db.repositories import Repo
from krypton.app.ports import UnitOfWork
from krypton.app.refunds import ChainDetail
from krypton.domain.refund import RefundStatus, RefundTarget

_C = t.crypto_refunds.c
_R = t.refunds.c


def chain_refund_book(uow: UnitOfWork) -> SqlChainRefundBook:
    sql = cast(SqlUnitOfWork, uow)
    return SqlChainRefundBook(sql.connection, locking=sql.locking)


def _values(d: ChainDetail) -> dict[str, Any]:
    return dict(refund_id=d.refund_id, target=d.target.value, destination=d.destination, fee=d.fee,
                claim_nonce=d.claim_nonce, claim_expires_at=d.claim_expires_at,
                claimed_at=d.claimed_at, ledger_entry_id=d.ledger_entry_id,
                signer_request_id=d.signer_request_id, updated_at=d.updated_at)


def _detail(r: sa.Row[Any]) -> ChainDetail:
    return ChainDetail(refund_id=r.refund_id, target=RefundTarget(r.target), destination=r.destination,
                       fee=int(r.fee), claim_nonce=r.claim_nonce, claim_expires_at=r.claim_expires_at,
                       claimed_at=r.claimed_at, ledger_entry_id=r.ledger_entry_id,
                       signer_request_id=r.signer_request_id, updated_at=r.updated_at)


class SqlChainRefundBook(Repo):
    async def lock_merchant(self, merchant_id: str) -> None:
        # Refunds of different invoices of one merchant draw on one balance: serialised on the
        # merchant's row (SQLite's BEGIN IMMEDIATE serialises every writer already).
        if self.locking:
            m = t.merchants.c
            await self.conn.execute(sa.select(m.id).where(m.id == merchant_id).with_for_update())

    async def add(self, detail: ChainDetail) -> None:
        await self.conn.execute(t.crypto_refunds.insert().values(**_values(detail)))

    async def save(self, detail: ChainDetail) -> None:
        values = _values(detail)
        del values["refund_id"]
        await self.conn.execute(t.crypto_refunds.update().where(
            _C.refund_id == detail.refund_id).values(**values))

    async def get(self, refund_id: str) -> ChainDetail | None:
        row = await self._one(sa.select(t.crypto_refunds).where(_C.refund_id == refund_id))
        return _detail(row) if row else None

    async def of(self, refund_ids: Sequence[str]) -> dict[str, ChainDetail]:
        if not refund_ids:
            return {}
        rows = await self.conn.execute(sa.select(t.crypto_refunds).where(_C.refund_id.in_(refund_ids)))
        return {r.refund_id: _detail(r) for r in rows}

    async def refunded_of(self, payment_id: str) -> int:
        total = (await self.conn.execute(sa.select(sa.func.coalesce(sa.func.sum(_R.amount), 0)).where(
            _R.payment_id == payment_id,
            _R.status.in_([RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value])))).scalar()
        return int(total or 0)

    async def spend_claim(self, refund_id: str, nonce: str, destination: str, now: datetime) -> bool:
        """Set the payer's address once: True only for the first use of this nonce."""
        result = await self.conn.execute(t.crypto_refunds.update().where(
            _C.refund_id == refund_id, _C.claim_nonce == nonce, _C.claimed_at.is_(None),
            _C.destination.is_(None)).values(destination=destination, claimed_at=now, updated_at=now))
        return bool(result.rowcount == 1)

    async def entry_id(self, kind: str, reference: str) -> int | None:
        j = t.journal_entries.c
        row = await self._one(sa.select(j.id).where(j.kind == kind, j.reference == reference))
        return int(row.id) if row else None

    async def pending(self, limit: int) -> list[str]:
        rows = await self.conn.execute(
            sa.select(_R.id).join(t.crypto_refunds, _C.refund_id == _R.id)
            .where(_R.status == RefundStatus.PENDING.value).order_by(_R.created_at, _R.id).limit(limit))
        return [r.id for r in rows]
