"""Repositories: map domain objects to rows and back. They never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from krypton.adapters.db import tables as t
from krypton.adapters.db.connection import Connection, write
from krypton.app.ports import ApiKeyRecord, IdempotencyClash, TronDeposit
from krypton.domain.assets import Chain
from krypton.domain.collector import CollectorStatus, FeeCollector
from krypton.domain.errors import DomainError
from krypton.domain.invoice import Invoice, InvoiceException, InvoiceStatus, PaymentOption
from krypton.domain.ledger import JournalEntry, Posting
from krypton.domain.merchant import Merchant
from krypton.domain.payment import ObservedTransfer, Payment, PaymentStatus
from krypton.domain.settlement import Settlement, SettlementStatus

# Hot-path statements built once (and run through `write`): building `.values(**row)` per
# call costs more than the database work on SQLite (measured by bench/).
# A memo already taken is not an error but a redraw (app/invoices.py): the insert skips
# that conflict only, and says so by returning no id.
_INSERT_INVOICE = {
    name: dialect.insert(t.invoices).on_conflict_do_nothing(index_elements=[t.invoices.c.memo])
    .returning(t.invoices.c.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}
_INSERT_IDEMPOTENCY = t.idempotency_keys.insert()
_NEXT_COUNTER = t.counters.update().where(t.counters.c.name == sa.bindparam("counter")).values(
    value=t.counters.c.value + 1).returning(t.counters.c.value)
_NEXT_VALUE = {name: sa.select(sequence.next_value()) for name, sequence in t.SEQUENCES.items()}
_UPDATE_INVOICE = t.invoices.update().where(t.invoices.c.id == sa.bindparam("invoice_id")).values(
    version=t.invoices.c.version + 1)
_INSERT_PAYMENT = t.payments.insert()
_UPDATE_PAYMENT = t.payments.update().where(t.payments.c.id == sa.bindparam("payment_id")).values(
    version=t.payments.c.version + 1)
_INSERT_SETTLEMENT = t.settlements.insert()
_INSERT_JOURNAL = t.journal_entries.insert().returning(t.journal_entries.c.id)
_INSERT_POSTING = t.postings.insert()
_SELECT_MERCHANT = sa.select(t.merchants).where(t.merchants.c.id == sa.bindparam("merchant_id"))
_claims = t.transfer_claims.c
_CLAIM = postgresql.insert(t.transfer_claims).on_conflict_do_nothing().returning(_claims.chain)
_LOCK_CLAIM = sa.select(_claims.chain).where(
    _claims.chain == sa.bindparam("chain"), _claims.tx_id == sa.bindparam("tx_id"),
    _claims.tx_index == sa.bindparam("tx_index")).with_for_update()


LATE_WATCH = timedelta(days=7)
# A deposit address is read from a little before its invoice was made: created_at is the
# server's clock, and a server up to this far ahead of the chain (a ±10 min jump; the skew
# alert fires at 60 s) must not hide a payment made in the invoice's first minutes. The
# address is new, so reading further back costs nothing.
DEPOSIT_LOOK_BACK = timedelta(minutes=15)


class Repo:
    def __init__(self, conn: Connection, *, locking: bool) -> None:
        self.conn = conn
        # SELECT ... FOR UPDATE where the database has it (SQLite locks the whole file anyway).
        self.locking = locking

    async def _one(self, query: sa.Select[Any]) -> sa.Row[Any] | None:
        row: sa.Row[Any] | None = (await self.conn.execute(query)).first()
        return row


async def keyset_page(repo: Repo, table: sa.Table, scope: Sequence[Any], limit: int,
                      starting_after: str | None,
                      where: Sequence[Any] = ()) -> tuple[list[sa.Row[Any]], bool]:
    """`table`'s rows within `scope` that match `where`, newest first, keyset-paginated on
    (created_at, id); and whether more follow. The `starting_after` row must be within
    `scope` (whoever owns the list), whatever `where` says of it now."""
    query = sa.select(table).where(*scope, *where)
    if starting_after is not None:
        anchor = await repo._one(sa.select(table.c.created_at, table.c.id).where(
            table.c.id == starting_after, *scope))
        if anchor is None:
            raise DomainError(f"starting_after '{starting_after}' is not an id from this list.",
                              field="starting_after")
        query = query.where(sa.tuple_(table.c.created_at, table.c.id) < sa.tuple_(*anchor))
    rows = (await repo.conn.execute(
        query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit + 1))).all()
    return list(rows[:limit]), len(rows) > limit


async def _page(repo: Repo, table: sa.Table, merchant_id: str, where: list[Any], limit: int,
                starting_after: str | None) -> tuple[list[sa.Row[Any]], bool]:
    """One merchant's rows, newest first, keyset-paginated on (created_at, id)."""
    return await keyset_page(repo, table, [table.c.merchant_id == merchant_id], limit,
                             starting_after, where)


class MerchantRepo(Repo):
    async def add(self, m: Merchant, now: datetime) -> None:
        await self.conn.execute(t.merchants.insert().values(
            id=m.id, name=m.name, fee_bps=m.fee_bps, confirmations_override=m.confirmations_override,
            underpayment_tolerance_bps=m.underpayment_tolerance_bps, methods=list(m.methods),
            ton_address=m.ton_address, ton_collector=m.ton_collector, created_at=now))

    @staticmethod
    def _load(r: sa.Row[Any]) -> Merchant:
        return Merchant(r.id, r.name, r.fee_bps, r.confirmations_override,
                        r.underpayment_tolerance_bps, tuple(r.methods), r.ton_address,
                        r.ton_collector)

    async def get(self, merchant_id: str) -> Merchant | None:
        row = (await self.conn.execute(_SELECT_MERCHANT, {"merchant_id": merchant_id})).first()
        return self._load(row) if row else None

    async def list(self) -> list[Merchant]:
        rows = await self.conn.execute(sa.select(t.merchants).order_by(t.merchants.c.created_at))
        return [self._load(r) for r in rows]

    async def set_ton_collector(self, merchant_id: str, address: str) -> None:
        await self.conn.execute(t.merchants.update().where(t.merchants.c.id == merchant_id)
                                .values(ton_collector=address))

    async def set_settings(self, merchant_id: str, confirmations_override: int | None,
                           ton_address: str | None) -> None:
        await self.conn.execute(t.merchants.update().where(t.merchants.c.id == merchant_id).values(
            confirmations_override=confirmations_override, ton_address=ton_address))

    async def set_fee_bps(self, merchant_id: str, fee_bps: int) -> None:
        await self.conn.execute(t.merchants.update().where(t.merchants.c.id == merchant_id)
                                .values(fee_bps=fee_bps))


class CollectorRepo(Repo):
    async def put(self, c: FeeCollector) -> None:
        """Insert, or replace the merchant's PENDING collector (an active one never changes)."""
        await self.conn.execute(t.fee_collectors.delete().where(
            t.fee_collectors.c.merchant_id == c.merchant_id,
            t.fee_collectors.c.status == CollectorStatus.PENDING.value))
        await self.conn.execute(t.fee_collectors.insert().values(**self._values(c)))

    async def activate(self, c: FeeCollector) -> bool:
        """Store `c` as activated only if it is still the merchant's pending collector; the
        check is in the UPDATE itself, so of concurrent callers exactly one gets True."""
        col = t.fee_collectors.c
        result = await self.conn.execute(t.fee_collectors.update().where(
            col.merchant_id == c.merchant_id, col.address == c.address,
            col.status == CollectorStatus.PENDING.value).values(
            status=c.status.value, activated_at=c.activated_at))
        return bool(result.rowcount == 1)

    @staticmethod
    def _values(c: FeeCollector) -> dict[str, Any]:
        return dict(merchant_id=c.merchant_id, address=c.address, owner=c.owner,
                    destination=c.destination, fee_bps=c.fee_bps, min_withdrawal=c.min_withdrawal,
                    status=c.status.value, created_at=c.created_at, activated_at=c.activated_at)

    @staticmethod
    def _load(r: sa.Row[Any]) -> FeeCollector:
        return FeeCollector(r.merchant_id, r.address, r.owner, r.destination, r.fee_bps,
                            r.min_withdrawal, CollectorStatus(r.status), r.created_at,
                            r.activated_at)

    async def for_merchant(self, merchant_id: str) -> FeeCollector | None:
        row = await self._one(sa.select(t.fee_collectors).where(
            t.fee_collectors.c.merchant_id == merchant_id))
        return self._load(row) if row else None

    async def by_address(self, address: str) -> FeeCollector | None:
        row = await self._one(sa.select(t.fee_collectors).where(
            t.fee_collectors.c.address == address))
        return self._load(row) if row else None

    async def pending(self) -> list[FeeCollector]:
        rows = await self.conn.execute(sa.select(t.fee_collectors).where(
            t.fee_collectors.c.status == CollectorStatus.PENDING.value))
        return [self._load(r) for r in rows]


class ApiKeyRepo(Repo):
    async def add(self, key_id: str, merchant_id: str, prefix: str, key_hash: str,
                  scopes: Sequence[str], now: datetime) -> None:
        await self.conn.execute(t.api_keys.insert().values(
            id=key_id, merchant_id=merchant_id, prefix=prefix, key_hash=key_hash,
            scopes=list(scopes), created_at=now))

    @staticmethod
    def _load(r: sa.Row[Any]) -> ApiKeyRecord:
        return ApiKeyRecord(r.id, r.merchant_id, r.prefix, tuple(r.scopes), r.created_at, r.revoked_at)

    async def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = await self._one(sa.select(t.api_keys).where(t.api_keys.c.key_hash == key_hash))
        return self._load(row) if row else None

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._one(sa.select(t.api_keys).where(t.api_keys.c.id == key_id))
        return self._load(row) if row else None

    async def revoke(self, key_id: str, now: datetime) -> None:
        await self.conn.execute(
            t.api_keys.update().where(t.api_keys.c.id == key_id).values(revoked_at=now))

    async def for_merchant(self, merchant_id: str) -> list[ApiKeyRecord]:
        rows = await self.conn.execute(sa.select(t.api_keys).where(
            t.api_keys.c.merchant_id == merchant_id).order_by(t.api_keys.c.created_at))
        return [self._load(r) for r in rows]


def _invoice_values(i: Invoice) -> dict[str, Any]:
    return {
        "status": i.status.value, "exception": i.exception.value if i.exception else None,
        "asset": i.asset, "amount_paid": i.amount_paid, "amount_detected": i.amount_detected,
        "paid_at": i.paid_at,
    }


class InvoiceRepo(Repo):
    async def add(self, i: Invoice) -> bool:
        """Insert the invoice; False (and nothing written) if another holds its memo."""
        return bool(await write(self.conn, _INSERT_INVOICE[self.conn.dialect.name], dict(
            id=i.id, merchant_id=i.merchant_id, price_currency=i.price_currency,
            price_amount=i.price_amount,
            options=[[o.method, o.asset, str(o.amount), o.rate, o.usd_rate] for o in i.options],
            fee_bps=i.fee_bps, underpayment_tolerance_bps=i.underpayment_tolerance_bps,
            order_id=i.order_id, description=i.description, metadata=i.metadata,
            redirect_url=i.redirect_url, confirmations=i.confirmations, memo=i.memo,
            ton_address=i.ton_address, ton_collector=i.ton_collector,
            tron_address=i.tron_address, tron_index=i.tron_index,
            rate_source=i.rate_source, rate_at=i.rate_at,
            created_at=i.created_at, expires_at=i.expires_at, monitor_until=i.monitor_until,
            **_invoice_values(i))))

    async def save(self, i: Invoice) -> None:
        await write(
            self.conn, _UPDATE_INVOICE, {"invoice_id": i.id, **_invoice_values(i)})
        i.version += 1

    @staticmethod
    def _load(r: sa.Row[Any]) -> Invoice:
        return Invoice(
            id=r.id, merchant_id=r.merchant_id, price_currency=r.price_currency,
            price_amount=r.price_amount,
            options=tuple(PaymentOption(m, a, int(n), rate, usd) for m, a, n, rate, usd in r.options),
            fee_bps=r.fee_bps, underpayment_tolerance_bps=r.underpayment_tolerance_bps,
            created_at=r.created_at, expires_at=r.expires_at, monitor_until=r.monitor_until,
            status=InvoiceStatus(r.status),
            exception=InvoiceException(r.exception) if r.exception else None, asset=r.asset,
            amount_paid=r.amount_paid, amount_detected=r.amount_detected, order_id=r.order_id,
            description=r.description, metadata=r.metadata, redirect_url=r.redirect_url,
            confirmations=r.confirmations, memo=r.memo, ton_address=r.ton_address,
            ton_collector=r.ton_collector, tron_address=r.tron_address, tron_index=r.tron_index,
            paid_at=r.paid_at, rate_source=r.rate_source, rate_at=r.rate_at, version=r.version)

    async def get(self, invoice_id: str, *, for_update: bool = False) -> Invoice | None:
        query = sa.select(t.invoices).where(t.invoices.c.id == invoice_id)
        if for_update and self.locking:
            query = query.with_for_update()
        row = await self._one(query)
        return self._load(row) if row else None

    async def ids_by_memo(self, memos: Sequence[str]) -> dict[str, tuple[str, frozenset[str]]]:
        c = t.invoices.c
        found: dict[str, tuple[str, frozenset[str]]] = {}
        for start in range(0, len(memos), 500):
            rows = await self.conn.execute(sa.select(c.memo, c.id, c.ton_address, c.ton_collector)
                                           .where(c.memo.in_(memos[start:start + 500])))
            found.update((r.memo, (r.id, frozenset(a for a in (r.ton_address, r.ton_collector) if a)))
                         for r in rows)
        return found

    async def ids_by_tron_address(self, addresses: Sequence[str]) -> dict[str, str]:
        c = t.invoices.c
        found: dict[str, str] = {}
        for start in range(0, len(addresses), 500):
            rows = await self.conn.execute(sa.select(c.tron_address, c.id).where(
                c.tron_address.in_(addresses[start:start + 500])))
            found.update((r.tron_address, r.id) for r in rows)
        return found

    async def tron_deposits_after(self, index: int, limit: int) -> list[TronDeposit]:
        """Watched a week past the monitoring window too, so a late payment is recorded as
        unmatched for the operator instead of never being seen."""
        c = t.invoices.c
        rows = await self.conn.execute(
            sa.select(c.tron_index, c.tron_address, c.created_at, c.monitor_until)
            .where(c.tron_index > index).order_by(c.tron_index).limit(limit))
        return [self._deposit(r) for r in rows]

    async def tron_deposits_at(self, indexes: Sequence[int]) -> list[TronDeposit]:
        c = t.invoices.c
        found: list[TronDeposit] = []
        for start in range(0, len(indexes), 500):
            rows = await self.conn.execute(
                sa.select(c.tron_index, c.tron_address, c.created_at, c.monitor_until)
                .where(c.tron_index.in_(indexes[start:start + 500])).order_by(c.tron_index))
            found.extend(self._deposit(r) for r in rows)
        return found

    @staticmethod
    def _deposit(r: Any) -> TronDeposit:
        return TronDeposit(r.tron_index, r.tron_address,
                           int((r.created_at - DEPOSIT_LOOK_BACK).timestamp() * 1000),
                           r.monitor_until + LATE_WATCH)

    async def page(self, merchant_id: str, *, status: InvoiceStatus | None, order_id: str | None,
                   limit: int, starting_after: str | None) -> tuple[list[Invoice], bool]:
        where = []
        if status is not None:
            where.append(t.invoices.c.status == status.value)
        if order_id is not None:
            where.append(t.invoices.c.order_id == order_id)
        rows, more = await _page(self, t.invoices, merchant_id, where, limit, starting_after)
        return [self._load(r) for r in rows], more

    async def due_for_expiry(self, now: datetime, limit: int) -> list[str]:
        rows = await self.conn.execute(sa.select(t.invoices.c.id).where(
            t.invoices.c.status == InvoiceStatus.PENDING.value, t.invoices.c.expires_at <= now,
        ).order_by(t.invoices.c.expires_at).limit(limit))
        return [r.id for r in rows]


def _payment_values(p: Payment) -> dict[str, Any]:
    return {"status": p.status.value, "confirmations": p.confirmations, "block": p.block,
            "confirmed_at": p.confirmed_at, "sender": p.sender}


class PaymentRepo(Repo):
    async def add(self, p: Payment) -> None:
        await write(self.conn, _INSERT_PAYMENT, dict(
            id=p.id, invoice_id=p.invoice_id, merchant_id=p.merchant_id, chain=p.chain.value,
            tx_id=p.tx_id, tx_index=p.index, asset=p.asset, amount=p.amount,
            destination=p.destination, memo=p.memo,
            required_confirmations=p.required_confirmations, dust=p.dust,
            detected_at=p.detected_at, **_payment_values(p)))

    async def save(self, p: Payment) -> None:
        await write(
            self.conn, _UPDATE_PAYMENT, {"payment_id": p.id, **_payment_values(p)})
        p.version += 1

    @staticmethod
    def _load(r: sa.Row[Any]) -> Payment:
        return Payment(
            id=r.id, invoice_id=r.invoice_id, merchant_id=r.merchant_id, chain=Chain(r.chain),
            tx_id=r.tx_id, index=r.tx_index, asset=r.asset, amount=r.amount,
            destination=r.destination, memo=r.memo, block=r.block, confirmations=r.confirmations,
            required_confirmations=r.required_confirmations, dust=r.dust,
            detected_at=r.detected_at, status=PaymentStatus(r.status), confirmed_at=r.confirmed_at,
            version=r.version, sender=r.sender)

    async def claim(self, chain: str, tx_id: str, index: int) -> None:
        """Hold the transfer's key until this transaction ends (PostgreSQL; SQLite's one
        writer holds everything). The first claim inserts the row; a concurrent one waits on
        that insert, a later one on the row lock: then it reads what the holder committed."""
        if not self.locking:
            return
        key = {"chain": chain, "tx_id": tx_id, "tx_index": index}
        if not await write(self.conn, _CLAIM, key):
            await self.conn.execute(_LOCK_CLAIM, key)

    async def by_key(self, chain: str, tx_id: str, index: int) -> Payment | None:
        row = await self._one(sa.select(t.payments).where(
            t.payments.c.chain == chain, t.payments.c.tx_id == tx_id,
            t.payments.c.tx_index == index))
        return self._load(row) if row else None

    async def get(self, payment_id: str) -> Payment | None:
        row = await self._one(sa.select(t.payments).where(t.payments.c.id == payment_id))
        return self._load(row) if row else None

    async def unfinished(self, chain: str) -> list[Payment]:
        """Payments still waiting for finality (or re-appearance after a reorganisation)."""
        c = t.payments.c
        rows = await self.conn.execute(sa.select(t.payments).where(c.chain == chain, c.status.in_(
            [PaymentStatus.DETECTED.value, PaymentStatus.CONFIRMING.value,
             PaymentStatus.ORPHANED.value])).order_by(c.detected_at))
        return [self._load(r) for r in rows]

    async def known_tx_ids(self, chain: str, tx_ids: Sequence[str]) -> set[str]:
        """Which of these transactions were already recorded, as payments or as unmatched."""
        known: set[str] = set()
        for table in (t.payments, t.unmatched_transfers):
            for start in range(0, len(tx_ids), 500):
                rows = await self.conn.execute(sa.select(table.c.tx_id).where(
                    table.c.chain == chain, table.c.tx_id.in_(tx_ids[start:start + 500])))
                known.update(r.tx_id for r in rows)
        return known

    async def for_invoice(self, invoice_id: str) -> list[Payment]:
        rows = await self.conn.execute(sa.select(t.payments).where(
            t.payments.c.invoice_id == invoice_id).order_by(t.payments.c.detected_at, t.payments.c.id))
        return [self._load(r) for r in rows]


class UnmatchedRepo(Repo):
    async def add(self, unmatched_id: str, tr: ObservedTransfer, reason: str,
                  invoice_id: str | None, now: datetime) -> None:
        await self.conn.execute(t.unmatched_transfers.insert().values(
            id=unmatched_id, chain=tr.chain.value, tx_id=tr.tx_id, tx_index=tr.index,
            asset=tr.asset, amount=tr.amount, destination=tr.destination, memo=tr.memo,
            block=tr.block, reason=reason, invoice_id=invoice_id, observed_at=now))

    async def exists(self, chain: str, tx_id: str, index: int) -> bool:
        c = t.unmatched_transfers.c
        return await self._one(sa.select(c.id).where(
            c.chain == chain, c.tx_id == tx_id, c.tx_index == index)) is not None

    async def list(self, limit: int) -> list[dict[str, Any]]:
        rows = await self.conn.execute(sa.select(t.unmatched_transfers).order_by(
            t.unmatched_transfers.c.observed_at.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]

    async def page(self, merchant_id: str, addresses: Sequence[str], *, limit: int,
                   starting_after: str | None) -> tuple[Sequence[dict[str, Any]], bool]:
        """A merchant's unmatched transfers, newest first: those that named one of its
        invoices, and those sent to one of its own `addresses` (its TON wallet, its fee
        collector). A transfer to the platform's address with an unknown memo is nobody's."""
        u, i = t.unmatched_transfers.c, t.invoices.c
        theirs = sa.or_(i.merchant_id == merchant_id, u.destination.in_(addresses)) if addresses \
            else i.merchant_id == merchant_id
        query = sa.select(t.unmatched_transfers).select_from(t.unmatched_transfers.outerjoin(
            t.invoices, i.id == u.invoice_id)).where(theirs)
        if starting_after is not None:
            anchor = await self._one(sa.select(u.observed_at, u.id).select_from(
                t.unmatched_transfers.outerjoin(t.invoices, i.id == u.invoice_id)).where(
                u.id == starting_after, theirs))
            if anchor is None:
                raise DomainError(f"starting_after '{starting_after}' is not an id from this list.",
                                  field="starting_after")
            query = query.where(sa.tuple_(u.observed_at, u.id) < sa.tuple_(*anchor))
        rows = (await self.conn.execute(
            query.order_by(u.observed_at.desc(), u.id.desc()).limit(limit + 1))).all()
        return [dict(r._mapping) for r in rows[:limit]], len(rows) > limit


class SettlementRepo(Repo):
    async def add(self, s: Settlement) -> None:
        await write(self.conn, _INSERT_SETTLEMENT, dict(
            id=s.id, merchant_id=s.merchant_id, invoice_id=s.invoice_id, asset=s.asset,
            gross=s.gross, fee=s.fee, net=s.net, fee_bps=s.fee_bps, status=s.status.value,
            created_at=s.created_at, forwarded=s.forwarded, collector_fee=s.collector_fee,
            collector_address=s.collector_address))

    @staticmethod
    def _load(r: sa.Row[Any]) -> Settlement:
        return Settlement(r.id, r.merchant_id, r.invoice_id, r.asset, r.gross, r.fee, r.net,
                          r.fee_bps, SettlementStatus(r.status), r.created_at, r.forwarded,
                          r.collector_fee, r.collector_address)

    async def get(self, settlement_id: str) -> Settlement | None:
        row = await self._one(sa.select(t.settlements).where(t.settlements.c.id == settlement_id))
        return self._load(row) if row else None

    async def for_invoice(self, invoice_id: str) -> list[Settlement]:
        rows = await self.conn.execute(sa.select(t.settlements).where(
            t.settlements.c.invoice_id == invoice_id).order_by(t.settlements.c.created_at,
                                                               t.settlements.c.id))
        return [self._load(r) for r in rows]

    async def page(self, merchant_id: str, *, limit: int,
                   starting_after: str | None) -> tuple[list[Settlement], bool]:
        rows, more = await _page(self, t.settlements, merchant_id, [], limit, starting_after)
        return [self._load(r) for r in rows], more

    async def forwarded_total(self, merchant_id: str, asset: str) -> int:
        c = t.settlements.c
        total = (await self.conn.execute(sa.select(sa.func.coalesce(sa.func.sum(c.forwarded), 0))
                                         .where(c.merchant_id == merchant_id, c.asset == asset))).scalar()
        return int(total or 0)


class LedgerRepo(Repo):
    async def post(self, entry: JournalEntry, now: datetime) -> None:
        [(entry_id,)] = await write(self.conn, _INSERT_JOURNAL, {
            "kind": entry.kind, "reference": entry.reference, "created_at": now})
        await write(self.conn, _INSERT_POSTING, [
            {"entry_id": entry_id, "account": p.account, "asset": p.asset, "amount": p.amount}
            for p in entry.postings])

    async def balances(self, account_prefix: str | None = None) -> dict[tuple[str, str], int]:
        c = t.postings.c
        query = sa.select(c.account, c.asset, sa.func.sum(c.amount)).group_by(c.account, c.asset)
        if account_prefix is not None:
            query = query.where(c.account.startswith(account_prefix, autoescape=True))
        return {(a, s): int(total) for a, s, total in await self.conn.execute(query)}

    async def postings(self) -> list[Posting]:
        rows = await self.conn.execute(sa.select(t.postings).order_by(t.postings.c.id))
        return [Posting(r.account, r.asset, r.amount) for r in rows]


class IdempotencyRepo(Repo):
    async def save(self, merchant_id: str, key: str, request_hash: str, result: Any,
                   now: datetime) -> None:
        # No savepoint: on a clash the whole transaction is abandoned anyway.
        try:
            await write(self.conn, _INSERT_IDEMPOTENCY, {
                "merchant_id": merchant_id, "key": key, "request_hash": request_hash,
                "response": result, "created_at": now})
        except IntegrityError:
            raise IdempotencyClash(key) from None

    async def get(self, merchant_id: str, key: str) -> tuple[str, Any] | None:
        c = t.idempotency_keys.c
        row = await self._one(sa.select(c.request_hash, c.response).where(
            c.merchant_id == merchant_id, c.key == key))
        return (row.request_hash, row.response) if row else None


class CounterRepo(Repo):
    async def next(self, name: str) -> int:
        if self.locking and name in _NEXT_VALUE:  # PostgreSQL: a sequence (tables.py)
            # No lock held to COMMIT; a value is never handed out twice, even after a rollback.
            return int((await self.conn.execute(_NEXT_VALUE[name])).scalar_one())
        # UPDATE ... RETURNING takes the row lock: concurrent callers queue, none share a value.
        rows = await write(self.conn, _NEXT_COUNTER, {"counter": name})
        if not rows:
            raise LookupError(f"counter {name} is not seeded by a migration")
        return int(rows[0][0])


class CursorRepo(Repo):
    async def get(self, name: str) -> str | None:
        c = t.chain_cursors.c
        row = await self._one(sa.select(c.value).where(c.name == name))
        return str(row.value) if row else None

    async def set(self, name: str, value: str) -> None:
        c = t.chain_cursors.c
        result = await self.conn.execute(
            t.chain_cursors.update().where(c.name == name).values(value=value))
        if result.rowcount == 0:
            await self.conn.execute(t.chain_cursors.insert().values(name=name, value=value))

    async def remove_all(self, *, keep: str) -> int:
        c = t.chain_cursors.c
        result = await self.conn.execute(t.chain_cursors.delete().where(c.name != keep))
        return int(result.rowcount)
