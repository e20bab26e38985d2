"""Which invoice an observed transfer pays: TON by memo (at the invoice's receiving
address), Tron by deposit address. A transfer that matches nothing is still ingested, as
unmatched with the reason: "no_matching_invoice", or "ambiguous_memo" when its comment
names two different memos (domain/memo.py finds a memo anywhere in the comment). Matching
works on a whole page of transfers with two indexed queries."""

from __future__ import annotations

from collections.abc import Sequence

from krypton.app.deps import Deps
from krypton.app.ingest import NO_MATCHING_INVOICE, IngestResult, ingest_transfer
from krypton.app.ports import UnitOfWork
from krypton.domain import memo
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer

AMBIGUOUS_MEMO = "ambiguous_memo"

Match = tuple[str | None, str | None]  # (invoice id, why none when it is None)


async def find_invoices(uow: UnitOfWork, transfers: Sequence[ObservedTransfer]) -> list[str | None]:
    """The invoice id each transfer pays (None: unmatched), in the same order."""
    return [invoice_id for invoice_id, _ in await match(uow, transfers)]


async def match(uow: UnitOfWork, transfers: Sequence[ObservedTransfer]) -> list[Match]:
    """For each transfer, in order, the invoice it pays, or None and the reason."""
    named = [memo.find(t.memo) if t.chain is Chain.TON else () for t in transfers]
    memos = {found[0] for found in named if len(found) == 1}
    addresses = {t.destination for t in transfers if t.chain is Chain.TRON}
    by_memo = await uow.invoices.ids_by_memo(sorted(memos)) if memos else {}
    by_address = await uow.invoices.ids_by_tron_address(sorted(addresses)) if addresses else {}
    found: list[Match] = []
    for t, memos_named in zip(transfers, named, strict=True):
        if t.chain is not Chain.TON:
            invoice_id = by_address.get(t.destination)
        elif len(memos_named) > 1:
            found.append((None, AMBIGUOUS_MEMO))
            continue
        else:
            hit = by_memo.get(memos_named[0]) if memos_named else None
            # A memo only counts at the address its invoice names: a memo copied to another
            # merchant's address must not pay this invoice.
            invoice_id = hit[0] if hit and t.destination in hit[1] else None
        found.append((invoice_id, None if invoice_id else NO_MATCHING_INVOICE))
    return found


async def receive(deps: Deps, transfer: ObservedTransfer) -> IngestResult:
    """Match a watcher's transfer to its invoice (memos and addresses never change) and ingest it."""
    return (await receive_all(deps, [transfer]))[0]


async def receive_all(deps: Deps, transfers: Sequence[ObservedTransfer]) -> list[IngestResult]:
    async with deps.uow(write=False) as uow:
        matches = await match(uow, transfers)
    return [await ingest_transfer(deps, t, invoice_id, unmatched_reason=reason or NO_MATCHING_INVOICE)
            for t, (invoice_id, reason) in zip(transfers, matches, strict=True)]
