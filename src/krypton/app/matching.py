"""Which invoice an observed transfer pays: TON by memo (and receiving address), Tron by
deposit address. A transfer that matches nothing is still ingested, as unmatched."""

from __future__ import annotations

from krypton.app.deps import Deps
from krypton.app.ingest import IngestResult, ingest_transfer
from krypton.app.ports import UnitOfWork
from krypton.domain import memo
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer


async def find_invoice(uow: UnitOfWork, transfer: ObservedTransfer) -> str | None:
    if transfer.chain is Chain.TON:
        wanted = memo.normalise(transfer.memo)
        invoice = await uow.invoices.by_memo(wanted) if wanted else None
        # A memo only counts at the address its invoice names (a memo copied to another
        # merchant's address must not pay this invoice).
        if invoice is not None and invoice.ton_address == transfer.destination:
            return invoice.id
        return None
    if transfer.chain is Chain.TRON:
        invoice = await uow.invoices.by_tron_address(transfer.destination)
        return invoice.id if invoice else None
    return None


async def receive(deps: Deps, transfer: ObservedTransfer) -> IngestResult:
    """Match a watcher's transfer to its invoice (memos and addresses never change) and ingest it."""
    async with deps.uow(write=False) as uow:
        invoice_id = await find_invoice(uow, transfer)
    return await ingest_transfer(deps, transfer, invoice_id)
