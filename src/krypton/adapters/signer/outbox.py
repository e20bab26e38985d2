"""The signer's tables (signer_transfers, signer_audit) and its read-only look at the ledger.

Exactly-once hinges on `record`: the rows of an external (its seqno, message hash and BOC)
and their audit rows are written in ONE transaction before the BOC is broadcast, so after
any crash the signer knows every external that may be on its way to the chain.

The ledger (journal_entries, postings) is only read here: the signer confirms that a
request's ledger entry exists and matches; it never writes money movements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from krypton.adapters.db import tables as t
from krypton.adapters.db.database import Database
from krypton.domain import ledger
from krypton.domain.signer_policy import DestinationKind, LedgerEntry, RequestKind, TransferRequest

_T = t.signer_transfers.c
_A = t.signer_audit.c


class TransferStatus(StrEnum):
    RECORDED = "recorded"  # signed and written, maybe broadcast (a crash can fall in between)
    BROADCAST = "broadcast"  # handed to the chain's API at least once
    CONFIRMED = "confirmed"  # the wallet's transaction sent its message
    FAILED = "failed"  # the chain did not send it (action phase failed, skipped)


UNRESOLVED = (TransferStatus.RECORDED, TransferStatus.BROADCAST)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One recorded external and the transfers it carries."""

    message_hash: str
    boc: str
    seqno: int
    valid_until: int
    attempt: int
    transfers: tuple[StoredTransfer, ...]


@dataclass(frozen=True, slots=True)
class StoredTransfer:
    id: str
    request: TransferRequest
    status: str


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    transfer_id: str
    request: dict[str, Any]
    wallet: str
    seqno: int
    message_hash: str
    signed_at: datetime


def request_json(request: TransferRequest) -> dict[str, Any]:
    return {"request_id": request.request_id, "kind": request.kind.value, "asset": request.asset,
            "amount": request.amount, "destination": request.destination,
            "destination_kind": request.destination_kind.value,
            "ledger_entry_id": request.ledger_entry_id, "comment": request.comment}


class Outbox:
    def __init__(self, db: Database, wallet: str) -> None:
        self._db = db
        self._wallet = wallet

    # -- what the policy needs ------------------------------------------------------------

    async def spent(self, asset: str, day: str) -> int:
        query = sa.select(sa.func.coalesce(sa.func.sum(_T.amount), 0)).where(
            _T.asset == asset, _T.day == day, _T.status != TransferStatus.FAILED.value)
        async with self._db.reader.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def seen(self, request_id: str) -> bool:
        return await self._exists(_T.request_id == request_id)

    async def entry_used(self, ledger_entry_id: int) -> bool:
        return await self._exists(_T.ledger_entry_id == ledger_entry_id)

    async def ledger_entry(self, entry_id: int) -> LedgerEntry | None:
        entries, postings = t.journal_entries.c, t.postings.c
        async with self._db.reader.connect() as conn:
            query = sa.select(entries.id, entries.kind).where(entries.id == entry_id)
            head = (await conn.execute(query)).first()
            if head is None:
                return None
            rows = (await conn.execute(sa.select(postings.account, postings.asset, postings.amount)
                                       .where(postings.entry_id == entry_id))).all()
        return LedgerEntry(int(head.id), str(head.kind),
                           tuple(ledger.Posting(r.account, r.asset, int(r.amount)) for r in rows))

    async def _exists(self, condition: Any) -> bool:
        async with self._db.reader.connect() as conn:
            return (await conn.execute(sa.select(_T.id).where(condition).limit(1))).first() is not None

    # -- the outbox ---------------------------------------------------------------------

    async def record(self, items: Sequence[tuple[str, TransferRequest]], *, seqno: int, message_hash: str,
                     boc: str, valid_until: int, now: datetime) -> None:
        """The transfers of one external and their audit rows, in one transaction."""
        day = now.date().isoformat()
        async with self._db.writer.connect() as conn:
            await conn.begin()
            for transfer_id, request in items:
                await conn.execute(t.signer_transfers.insert().values(
                    id=transfer_id, request_id=request.request_id, kind=request.kind.value,
                    asset=request.asset, amount=request.amount, destination=request.destination,
                    destination_kind=request.destination_kind.value, ledger_entry_id=request.ledger_entry_id,
                    wallet=self._wallet, seqno=seqno, message_hash=message_hash, boc=boc,
                    valid_until=valid_until, status=TransferStatus.RECORDED.value, attempt=1, day=day,
                    created_at=now, updated_at=now, comment=request.comment))
                await self._audit(conn, transfer_id, request, seqno, message_hash, now)
            await conn.commit()

    async def resign(self, old_hash: str, transfers: Sequence[StoredTransfer], *, seqno: int,
                     message_hash: str,
                     boc: str, valid_until: int, attempt: int, now: datetime) -> None:
        """The same transfers in a new external (the old one expired unseen), before broadcast."""
        async with self._db.writer.connect() as conn:
            await conn.begin()
            await conn.execute(t.signer_transfers.update().where(_T.message_hash == old_hash).values(
                seqno=seqno, message_hash=message_hash, boc=boc, valid_until=valid_until, attempt=attempt,
                status=TransferStatus.RECORDED.value, updated_at=now))
            for transfer in transfers:
                await self._audit(conn, transfer.id, transfer.request, seqno, message_hash, now)
            await conn.commit()

    async def _audit(self, conn: Any, transfer_id: str, request: TransferRequest, seqno: int,
                     message_hash: str, now: datetime) -> None:
        await conn.execute(t.signer_audit.insert().values(
            transfer_id=transfer_id, request=request_json(request), wallet=self._wallet, seqno=seqno,
            message_hash=message_hash, signed_at=now))

    async def mark_broadcast(self, message_hash: str, now: datetime) -> None:
        await self._set(_T.message_hash == message_hash, now, status=TransferStatus.BROADCAST.value,
                        only=TransferStatus.RECORDED)

    async def settle(self, transfer_id: str, status: TransferStatus, now: datetime, *,
                     tx_hash: str | None = None, failure: str | None = None) -> None:
        await self._set(_T.id == transfer_id, now, status=status.value, tx_hash=tx_hash,
                        failure=None if failure is None else failure[:500])

    async def _set(self, condition: Any, now: datetime, *, only: TransferStatus | None = None,
                   **values: Any) -> None:
        if only is not None:
            condition = sa.and_(condition, _T.status == only.value)
        async with self._db.writer.connect() as conn:
            await conn.begin()
            await conn.execute(t.signer_transfers.update().where(condition).values(updated_at=now, **values))
            await conn.commit()

    async def unresolved(self) -> list[Outgoing]:
        """Every external recorded and not yet seen on chain, oldest seqno first."""
        query = (sa.select(t.signer_transfers).where(_T.wallet == self._wallet,
                                                     _T.status.in_([s.value for s in UNRESOLVED]))
                 .order_by(_T.seqno, _T.created_at, _T.id))
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        groups: dict[str, list[Any]] = {}
        for row in rows:
            groups.setdefault(row.message_hash, []).append(row)
        return [Outgoing(h, group[0].boc, int(group[0].seqno), int(group[0].valid_until),
                         int(group[0].attempt),
                         tuple(StoredTransfer(r.id, _request(r), r.status) for r in group))
                for h, group in groups.items()]

    async def transfer(self, request_id: str) -> dict[str, Any] | None:
        async with self._db.reader.connect() as conn:
            query = sa.select(t.signer_transfers).where(_T.request_id == request_id)
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return {"transfer_id": row.id, "request_id": row.request_id, "status": row.status,
                "seqno": int(row.seqno), "message_hash": row.message_hash, "tx_hash": row.tx_hash,
                "failure": row.failure, "asset": row.asset, "amount": int(row.amount),
                "destination": row.destination}

    async def batch(self, message_hash: str) -> list[dict[str, Any]]:
        """The transfers one external carries, in the order they were signed into it (its
        audit rows' order): the order of the wallet's out messages."""
        query = (sa.select(_T.request_id, _T.asset, _T.amount, _T.destination)
                 .join(t.signer_audit, _A.transfer_id == _T.id)
                 .where(_A.message_hash == message_hash).order_by(_A.id))
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [{"request_id": r.request_id, "asset": r.asset, "amount": int(r.amount),
                 "destination": r.destination} for r in rows]

    async def audit(self, limit: int = 50) -> list[AuditRow]:
        query = sa.select(t.signer_audit).order_by(_A.id.desc()).limit(limit)
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [AuditRow(int(r.id), r.transfer_id, dict(r.request), r.wallet, int(r.seqno), r.message_hash,
                         r.signed_at) for r in rows]


def _request(row: Any) -> TransferRequest:
    return TransferRequest(row.request_id, RequestKind(row.kind), row.asset, int(row.amount), row.destination,
                           DestinationKind(row.destination_kind), int(row.ledger_entry_id), row.comment)
