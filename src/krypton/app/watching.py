"""Watching the chains: hand what a ChainReader found to ingest, then move its cursor.

A cursor is stored only after everything before it was ingested, so a crash or a
provider outage re-reads a page (ingest is idempotent) instead of skipping it.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Sequence
from datetime import datetime, timedelta

from krypton.app import ingest, matching
from krypton.app.deps import Deps
from krypton.app.ports import ChainRead, ChainReader, TronDeposit, Watch
from krypton.domain.payment import PaymentStatus

WATCH_PAGE = 5000
# How long a deposit index below the highest seen is looked for again (see WatchSet).
GAP_PATIENCE = timedelta(minutes=10)


async def follow(deps: Deps, reader: ChainReader, deposits: WatchSet | None = None) -> int:
    """Read and ingest everything new since the stored cursor, page by page; returns how many
    new transactions (TON) or transfers (Tron) were handled."""
    addresses = await deposits.refresh(deps) if deposits is not None else {}
    watch = Watch(addresses, lambda tx_ids: _known(deps, reader, tx_ids))
    handled = 0
    while True:
        async with deps.uow(write=False) as uow:
            cursor = await uow.cursors.get(reader.cursor_name)
        read = await reader.read(cursor, watch)
        await _ingest(deps, reader.chain, read)
        if read.cursor is not None:
            async with deps.uow() as uow:
                await uow.cursors.set(reader.cursor_name, read.cursor)
                await uow.commit()
        handled += read.handled
        if not read.more:
            return handled


async def recheck(deps: Deps, reader: ChainReader) -> int:
    """Look again at the chain's payments that are not final; returns how many moved."""
    chain = reader.chain
    async with deps.uow(write=False) as uow:
        pending = {(p.tx_id, p.index): p for p in await uow.payments.unfinished(chain)}
    if not pending:
        return 0
    read = await reader.recheck(list(pending))
    moved = 0
    for key in read.vanished:
        # Only a payment counted in a block can be reorganised away; one merely detected
        # is still waiting for its block.
        if pending[key].status is PaymentStatus.CONFIRMING:
            await ingest.orphan_transfer(deps, chain, *key)
            moved += 1
    for key in read.failed:
        await ingest.fail_transfer(deps, chain, *key)
        moved += 1
    for transfer in read.seen:
        result = await matching.receive(deps, transfer)
        moved += result.outcome == "updated"
    return moved


async def ton_accounts(deps: Deps) -> dict[str, bool]:
    """Merchants' own TON receiving addresses and fee-collector contracts (raw form) -> whether
    it is a fee-collector contract: each is watched like the platform address."""
    async with deps.uow(write=False) as uow:
        merchants = await uow.merchants.list()
    accounts = {m.ton_address: False for m in merchants if m.ton_address}
    accounts.update({m.ton_collector: True for m in merchants if m.ton_collector})
    return accounts


async def _ingest(deps: Deps, chain: str, read: ChainRead) -> None:
    await matching.receive_all(deps, read.seen)
    for transfer, reason in read.rejected:
        await ingest.reject_transfer(deps, transfer, reason)
    for tx_id, index in read.failed:  # after its sighting above: a failure needs the payment
        await ingest.fail_transfer(deps, chain, tx_id, index)


async def _known(deps: Deps, reader: ChainReader, tx_ids: Sequence[str]) -> set[str]:
    async with deps.uow(write=False) as uow:
        return await uow.payments.known_tx_ids(reader.chain, list(tx_ids))


class WatchSet:
    """Tron deposit addresses that may still receive a payment -> watch from (ms since epoch).

    Kept in memory and topped up with the invoices created since the last look, instead of
    re-reading every invoice of the past week on each poll: that read grew with every
    invoice and ran on the event loop. Indexes may become visible out of order (on
    PostgreSQL a sequence hands them out and concurrent creations commit in any order), so
    the high-water mark alone could skip one: an index below it not seen yet (a gap) is
    asked for again on every refresh until it shows, or for GAP_PATIENCE after it was first
    missed. A creation commits within moments of taking its index or not at all (an index
    whose transaction rolled back never shows), so a gap that old is given up.
    """

    def __init__(self) -> None:
        self.addresses: dict[str, int] = {}
        self._after = -1
        self._gaps: dict[int, datetime] = {}  # index below _after not seen -> first missed at
        self._ends: list[tuple[datetime, str]] = []  # heap of (watch until, address)

    async def refresh(self, deps: Deps) -> dict[str, int]:
        now = deps.clock.now()
        if self._gaps:
            async with deps.uow(write=False) as uow:
                late = await uow.invoices.tron_deposits_at(sorted(self._gaps))
            for deposit in late:
                del self._gaps[deposit.index]
                self._watch(deposit, now)
            self._gaps = {i: since for i, since in self._gaps.items() if now - since < GAP_PATIENCE}
        while True:
            async with deps.uow(write=False) as uow:
                new = await uow.invoices.tron_deposits_after(self._after, WATCH_PAGE)
            for deposit in new:
                # At most a page of them: a longer run of missing indexes is not in flight.
                for missing in range(max(self._after + 1, deposit.index - WATCH_PAGE), deposit.index):
                    self._gaps.setdefault(missing, now)
                self._after = deposit.index
                self._watch(deposit, now)
            if len(new) < WATCH_PAGE:
                break
            await asyncio.sleep(0)  # a first load after a busy week: let requests in between
        while self._ends and self._ends[0][0] <= now:
            self.addresses.pop(heapq.heappop(self._ends)[1], None)
        return self.addresses

    def _watch(self, deposit: TronDeposit, now: datetime) -> None:
        if deposit.watch_until > now:
            self.addresses[deposit.address] = deposit.watch_from_ms
            heapq.heappush(self._ends, (deposit.watch_until, deposit.address))
