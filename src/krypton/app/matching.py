"""Which invoice an observed transfer pays: TON by memo (at the invoice's receiving
address), Tron by deposit address. A transfer that matches nothing is still ingested, as
unmatched. Matching works on a whole page of transfers with two indexed queries."""

from __future__ import annotations

from collections.abc import Sequence

from krypton.app.deps import Deps
from krypton.app.ingest import IngestResult, ingest_transfer
from krypton.app.ports import UnitOfWork
from krypton.domain import memo
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer


async def find_invoices(uow: UnitOfWork, transfers: Sequence[ObservedTransfer]) -> list[str | None]:
    """The invoice id each transfer pays (None: unmatched), in the same order."""
    memos = {memo.normalise(t.memo) for t in transfers if t.chain is Chain.TON} - {None}
    addresses = {t.destination for t in transfers if t.chain is Chain.TRON}
    by_memo = await uow.invoices.ids_by_memo(sorted(m for m in memos if m)) if memos else {}
    by_address = await uow.invoices.ids_by_tron_address(sorted(addresses)) if addresses else {}
    found: list[str | None] = []
    for t in transfers:
        if t.chain is Chain.TON:
            hit = by_memo.get(memo.normalise(t.memo) or "")
            # A memo only counts at the address its invoice names: a memo copied to another
            # merchant's address must not pay this invoice.
            found.append(hit[0] if hit and t.destination in hit[1] else None)
        else:
            found.append(by_address.get(t.destination))
    return found


async def receive(deps: Deps, transfer: ObservedTransfer) -> IngestResult:
    """Match a watcher's transfer to its invoice (memos and addresses never change) and ingest it."""
    return (await receive_all(deps, [transfer]))[0]


async def receive_all(deps: Deps, transfers: Sequence[ObservedTransfer]) -> list[IngestResult]:
    async with deps.uow(write=False) as uow:
        invoice_ids = await find_invoices(uow, transfers)
    return [await ingest_transfer(deps, t, i) for t, i in zip(transfers, invoice_ids, strict=True)]
