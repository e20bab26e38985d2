"""The Stars money book (`app.stars_book.StarsBook`) on the unit of work's own transaction:
refunds, held settlements, reconciliation reports and subscriptions (migration 0014)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from krypton.adapters.db import tables as t
from krypton.adapters.db.database import SqlUnitOfWork
from krypton.adapters.db.repositories import Repo
from krypton.adapters.db.stars import SqlStarsLinks
from krypton.app.ports import IdempotencyClash, UnitOfWork
from krypton.app.stars_book import HeldSettlement, LedgerCharge, Renewal, Report
from krypton.domain.assets import XTR, Chain
from krypton.domain.refund import Refund, RefundStatus
from krypton.domain.subscription import Subscription, SubscriptionStatus

_R = t.refunds.c
_S = t.settlements.c
_J = t.journal_entries.c
_SUB = t.stars_subscriptions.c
_REN = t.stars_renewals.c
RELEASED = "released"  # the journal kind of ledger.released


def stars_book(uow: UnitOfWork) -> SqlStarsBook:
    """The book writing in `uow`'s transaction (an SqlUnitOfWork: the only kind there is)."""
    sql = cast(SqlUnitOfWork, uow)
    return SqlStarsBook(sql.connection, locking=sql.locking)


def _refund_values(r: Refund) -> dict[str, Any]:
    return dict(id=r.id, merchant_id=r.merchant_id, invoice_id=r.invoice_id,
                payment_id=r.payment_id, asset=r.asset, amount=r.amount, reason=r.reason,
                status=r.status.value, failure=r.failure, from_held=r.from_held,
                settlement_id=r.settlement_id, created_at=r.created_at,
                completed_at=r.completed_at)


def _refund(r: sa.Row[Any]) -> Refund:
    return Refund(id=r.id, merchant_id=r.merchant_id, invoice_id=r.invoice_id,
                  payment_id=r.payment_id, asset=r.asset, amount=r.amount, reason=r.reason,
                  created_at=r.created_at, status=RefundStatus(r.status), failure=r.failure,
                  completed_at=r.completed_at, from_held=r.from_held,
                  settlement_id=r.settlement_id)


def _held(r: sa.Row[Any]) -> HeldSettlement:
    return HeldSettlement(r.id, r.merchant_id, r.invoice_id, r.asset, r.net, r.created_at)


def _subscription(r: sa.Row[Any]) -> Subscription:
    return Subscription(id=r.id, merchant_id=r.merchant_id, invoice_id=r.invoice_id,
                        period=r.period, created_at=r.created_at, updated_at=r.updated_at,
                        status=SubscriptionStatus(r.status), payer_id=r.payer_id,
                        expires_at=r.expires_at, renewals=r.renewals)


def _renewal(r: sa.Row[Any]) -> Renewal:
    return Renewal(r.charge_id, r.subscription_id, r.invoice_id, r.amount, r.expires_at,
                   r.renewed_at)


_NOT_RELEASED = ~sa.exists().where(_J.kind == RELEASED, _J.reference == _S.id)


class SqlStarsBook(Repo):
    # --- refunds
    async def add_refund(self, refund: Refund, idempotency_key: str | None,
                         request_hash: str | None) -> None:
        try:
            await self.conn.execute(t.refunds.insert().values(
                **_refund_values(refund), idempotency_key=idempotency_key,
                request_hash=request_hash))
        except IntegrityError:
            raise IdempotencyClash(idempotency_key or "") from None

    async def save_refund(self, refund: Refund) -> None:
        values = _refund_values(refund)
        del values["id"]
        await self.conn.execute(t.refunds.update().where(_R.id == refund.id).values(**values))

    async def refund(self, refund_id: str) -> Refund | None:
        row = await self._one(sa.select(t.refunds).where(_R.id == refund_id))
        return _refund(row) if row else None

    async def refund_by_key(self, merchant_id: str, key: str) -> tuple[Refund, str | None] | None:
        row = await self._one(sa.select(t.refunds).where(
            _R.merchant_id == merchant_id, _R.idempotency_key == key))
        return (_refund(row), row.request_hash) if row else None

    async def refunds_for_invoice(self, invoice_id: str) -> list[Refund]:
        rows = await self.conn.execute(sa.select(t.refunds).where(
            _R.invoice_id == invoice_id).order_by(_R.created_at, _R.id))
        return [_refund(r) for r in rows]

    async def pending_refunds(self, created_before: datetime, limit: int) -> list[Refund]:
        rows = await self.conn.execute(sa.select(t.refunds).where(
            _R.status == RefundStatus.PENDING.value, _R.created_at <= created_before)
            .order_by(_R.created_at, _R.id).limit(limit))
        return [_refund(r) for r in rows]

    async def reserved(self, merchant_id: str, asset: str, excluding: str) -> int:
        total = (await self.conn.execute(sa.select(sa.func.coalesce(sa.func.sum(_R.amount), 0))
                                         .where(_R.merchant_id == merchant_id, _R.asset == asset,
                                                _R.status == RefundStatus.PENDING.value,
                                                _R.id != excluding))).scalar()
        return int(total or 0)

    async def refunded_charges(self) -> dict[str, int]:
        p = t.payments.c
        rows = await self.conn.execute(
            sa.select(p.tx_id, _R.amount).join(t.payments, p.id == _R.payment_id)
            .where(_R.status == RefundStatus.SUCCEEDED.value, p.chain == Chain.TELEGRAM.value))
        return {r.tx_id: int(r.amount) for r in rows}

    async def add_payer(self, charge_id: str, payer_id: int, now: datetime) -> None:
        # A webhook delivered twice at once: the second insert changes nothing.
        insert = (postgresql.insert if self.locking else sqlite.insert)(t.stars_charges)
        await self.conn.execute(insert.values(charge_id=charge_id, payer_id=payer_id,
                                              created_at=now).on_conflict_do_nothing())

    async def payer(self, charge_id: str) -> int | None:
        c = t.stars_charges.c
        row = await self._one(sa.select(c.payer_id).where(c.charge_id == charge_id))
        return int(row.payer_id) if row else None

    # --- hold
    async def held_settlement(self, settlement_id: str, *, for_update: bool = False
                              ) -> HeldSettlement | None:
        query = sa.select(t.settlements).where(_S.id == settlement_id, _S.asset == XTR.code,
                                               _NOT_RELEASED)
        if for_update and self.locking:
            query = query.with_for_update(of=t.settlements)
        row = await self._one(query)
        return _held(row) if row else None

    async def held_left(self, settlement: HeldSettlement) -> int:
        taken = (await self.conn.execute(sa.select(sa.func.coalesce(sa.func.sum(_R.from_held), 0))
                                         .where(_R.settlement_id == settlement.id,
                                                _R.status == RefundStatus.SUCCEEDED.value))
                 ).scalar()
        return settlement.net - int(taken or 0)

    async def due_releases(self, asset: str, created_before: datetime, limit: int
                           ) -> list[HeldSettlement]:
        rows = await self.conn.execute(sa.select(t.settlements).where(
            _S.asset == asset, _S.created_at <= created_before, _NOT_RELEASED)
            .order_by(_S.created_at, _S.id).limit(limit))
        return [_held(r) for r in rows]

    # --- reconciliation
    async def ledger_charges(self) -> list[LedgerCharge]:
        p = t.payments.c
        rows = await self.conn.execute(sa.select(t.payments).where(
            p.chain == Chain.TELEGRAM.value).order_by(p.detected_at, p.id))
        return [LedgerCharge(r.tx_id, r.id, r.invoice_id, int(r.amount), r.status, r.detected_at)
                for r in rows]

    async def add_report(self, report: Report) -> None:
        await self.conn.execute(t.stars_reconciliations.insert().values(
            id=report.id, created_at=report.created_at, transactions=report.transactions,
            differences=list(report.differences)))

    async def latest_report(self) -> Report | None:
        c = t.stars_reconciliations.c
        row = await self._one(sa.select(t.stars_reconciliations)
                              .order_by(c.created_at.desc(), c.id.desc()).limit(1))
        return Report(row.id, row.created_at, row.transactions, row.differences) if row else None

    # --- subscriptions
    async def add_subscription(self, subscription: Subscription) -> bool:
        if await self.subscription_for_invoice(subscription.invoice_id) is not None:
            return False
        s = subscription
        try:
            await self.conn.execute(t.stars_subscriptions.insert().values(
                id=s.id, merchant_id=s.merchant_id, invoice_id=s.invoice_id, period=s.period,
                status=s.status.value, payer_id=s.payer_id, expires_at=s.expires_at,
                renewals=s.renewals, created_at=s.created_at, updated_at=s.updated_at))
        except IntegrityError:  # a concurrent twin added it first
            return False
        return True

    async def subscription_for_invoice(self, invoice_id: str, *, for_update: bool = False
                                       ) -> Subscription | None:
        query = sa.select(t.stars_subscriptions).where(_SUB.invoice_id == invoice_id)
        if for_update and self.locking:
            query = query.with_for_update()
        row = await self._one(query)
        return _subscription(row) if row else None

    async def save_subscription(self, subscription: Subscription) -> None:
        s = subscription
        await self.conn.execute(t.stars_subscriptions.update().where(_SUB.id == s.id).values(
            status=s.status.value, payer_id=s.payer_id, expires_at=s.expires_at,
            renewals=s.renewals, updated_at=s.updated_at))

    async def renewal(self, charge_id: str) -> Renewal | None:
        row = await self._one(sa.select(t.stars_renewals).where(_REN.charge_id == charge_id))
        return _renewal(row) if row else None

    async def add_renewal(self, renewal: Renewal, now: datetime) -> None:
        r = renewal
        await self.conn.execute(t.stars_renewals.insert().values(
            charge_id=r.charge_id, subscription_id=r.subscription_id, invoice_id=r.invoice_id,
            amount=r.amount, expires_at=r.expires_at, renewed_at=r.renewed_at, created_at=now))

    async def mark_renewed(self, charge_id: str, now: datetime) -> bool:
        result = await self.conn.execute(t.stars_renewals.update().where(
            _REN.charge_id == charge_id, _REN.renewed_at.is_(None)).values(renewed_at=now))
        return bool(result.rowcount)

    async def renewals(self, subscription_id: str) -> list[Renewal]:
        rows = await self.conn.execute(sa.select(t.stars_renewals).where(
            _REN.subscription_id == subscription_id).order_by(_REN.created_at, _REN.charge_id))
        return [_renewal(r) for r in rows]


class SqlStarsPlanLinks(SqlStarsLinks):
    """Stars links that also know an invoice's subscription period (app.stars.SubscriptionPlans):
    a subscription's link is made with it."""

    async def subscription_period(self, invoice_id: str) -> int | None:
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(sa.select(_SUB.period).where(
                _SUB.invoice_id == invoice_id))).first()
        return int(row.period) if row else None
