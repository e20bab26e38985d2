"""The Tron watcher: discovers USDT transfers to open deposit addresses, then follows each
one's receipt until it is solidified.

Discovery only yields transaction ids; what is credited always comes from the receipt
(`gettransactioninfobyid`), whose log positions give the canonical (tx, index) key, so the
per-address listing and the contract-event scan can never produce two keys for one
transfer. A transfer is credited (`final`) only once the solidity node returns it with a
SUCCESS receipt; until then it is `confirming` with a live count. A receipt that the full
node no longer knows after it was in a block means the block was reorganised away.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
from collections import defaultdict
from collections.abc import Container, Iterable
from datetime import datetime

import structlog

from krypton.adapters.chains.tron.client import TronGridClient
from krypton.adapters.chains.tron.finality import confirmations
from krypton.adapters.chains.tron.transfer import Trc20Transfer
from krypton.app import ingest, matching
from krypton.app.deps import Deps
from krypton.domain.assets import USDT_TRC20, Chain
from krypton.domain.payment import ObservedTransfer, PaymentStatus

log = structlog.get_logger()

# Above this many open deposit addresses, one contract-wide event scan beats per-address polls.
SCAN_THRESHOLD = 20
EVENTS_CURSOR = "tron:usdt-events"
OVERLAP_MS = 60_000  # re-read a minute of events: late-indexed ones are not missed
Found = dict[str, list[Trc20Transfer]]  # tx id -> transfers discovery saw
WATCH_PAGE = 5000


class WatchSet:
    """Deposit addresses that may still receive a payment -> watch from (ms since epoch).

    Kept in memory and topped up with the invoices created since the last look, instead of
    re-reading every invoice of the past week on each poll: that read grew with every
    invoice and ran on the event loop. A high-water mark on the deposit index never skips
    one, because indexes are handed out under the counter row's lock, held until commit:
    they become visible in index order (an index whose transaction rolled back never does).
    """

    def __init__(self) -> None:
        self.addresses: dict[str, int] = {}
        self._after = -1
        self._ends: list[tuple[datetime, str]] = []  # heap of (watch until, address)

    async def refresh(self, deps: Deps) -> dict[str, int]:
        now = deps.clock.now()
        while True:
            async with deps.uow(write=False) as uow:
                new = await uow.invoices.tron_deposits_after(self._after, WATCH_PAGE)
            for deposit in new:
                self._after = deposit.index
                if deposit.watch_until > now:
                    self.addresses[deposit.address] = deposit.watch_from_ms
                    heapq.heappush(self._ends, (deposit.watch_until, deposit.address))
            if len(new) < WATCH_PAGE:
                break
            await asyncio.sleep(0)  # a first load after a busy week: let requests in between
        while self._ends and self._ends[0][0] <= now:
            self.addresses.pop(heapq.heappop(self._ends)[1], None)
        return self.addresses


class TronWatcher:
    def __init__(self, deps: Deps, client: TronGridClient) -> None:
        self.deps = deps
        self.client = client
        self.watching = WatchSet()

    async def poll(self) -> int:
        """One discovery round and one confirmation round; returns how many transfers moved."""
        return await self.discover() + await self.confirm()

    async def discover(self) -> int:
        open_addresses = await self.watching.refresh(self.deps)
        if not open_addresses:
            return 0
        if len(open_addresses) <= SCAN_THRESHOLD:
            found = await self._per_address(dict(open_addresses))
        else:
            found = await self._scan(open_addresses)
        async with self.deps.uow(write=False) as uow:
            known = await uow.payments.known_tx_ids("tron", list(found))
        moved = 0
        for tx_id in sorted(set(found) - known):
            moved += await self._receipt(tx_id, found[tx_id], open_addresses)
        return moved

    async def _per_address(self, addresses: dict[str, int]) -> Found:
        found: Found = defaultdict(list)
        for address, since_ms in addresses.items():
            fingerprint = None
            while True:
                page = await self.client.incoming(address, since_ms, fingerprint)
                for t in page.transfers:
                    if t.to == address:
                        found[t.tx_id].append(t)
                if not page.fingerprint:
                    break
                fingerprint = page.fingerprint
        return found

    async def _scan(self, addresses: Container[str]) -> Found:
        async with self.deps.uow(write=False) as uow:
            stored = await uow.cursors.get(EVENTS_CURSOR)
        since = max(0, int(stored or 0) - OVERLAP_MS)
        found: Found = defaultdict(list)
        newest, fingerprint = since, None
        while True:
            page = await self.client.contract_events(since, fingerprint)
            for t in page.transfers:
                newest = max(newest, t.block_timestamp or 0)
                if t.to in addresses:
                    found[t.tx_id].append(t)
            if not page.fingerprint:
                break
            fingerprint = page.fingerprint
        # The cursor moves only after the whole scan was read; the caller handles every id.
        async with self.deps.uow() as uow:
            await uow.cursors.set(EVENTS_CURSOR, str(newest))
            await uow.commit()
        return found

    async def _receipt(self, tx_id: str, discovered: list[Trc20Transfer],
                       ours: Container[str]) -> int:
        info = await self.client.tx_info(tx_id, solid=False)
        if info is None or info.block_number is None:
            return 0  # not in a block yet: discovered again next round
        head = await self.client.head()
        # A failed call emits no logs: record what discovery saw, then fail it.
        transfers = discovered if info.failed and not info.transfers else _to(info.transfers, ours)
        for transfer in transfers:
            if transfer.counterfeit:
                log.warning("counterfeit_trc20", tx=tx_id, contract=transfer.contract)
                await ingest.reject_transfer(self.deps, ObservedTransfer(
                    Chain.TRON, tx_id, transfer.index, "COUNTERFEIT", transfer.amount, transfer.to,
                    None, info.block_number, 0, transfer.from_), "counterfeit_token")
                continue
            seen = dataclasses.replace(transfer.observed(confirmations(head, info.block_number)),
                                       block=info.block_number, final=False)
            await matching.receive(self.deps, seen)
            if info.failed:
                await ingest.fail_transfer(self.deps, "tron", tx_id, transfer.index)
        return len(transfers)

    async def confirm(self) -> int:
        async with self.deps.uow(write=False) as uow:
            pending = await uow.payments.unfinished("tron")
        moved = 0
        for payment in pending:
            solid = await self.client.tx_info(payment.tx_id, solid=True)
            info = solid or await self.client.tx_info(payment.tx_id, solid=False)
            if info is None or info.block_number is None:
                if payment.status is PaymentStatus.CONFIRMING:
                    await ingest.orphan_transfer(self.deps, "tron", payment.tx_id, payment.index)
                    moved += 1
                continue
            if info.failed:
                await ingest.fail_transfer(self.deps, "tron", payment.tx_id, payment.index)
                moved += 1
                continue
            transfer = next((t for t in info.credits if t.index == payment.index), None)
            if transfer is None:
                continue
            count = confirmations(await self.client.head(), info.block_number)
            if solid is not None:  # the head is cached; a solidified block has the full depth
                count = max(count, USDT_TRC20.finality_depth)
            seen = dataclasses.replace(transfer.observed(count), block=info.block_number,
                                       final=solid is not None)
            result = await matching.receive(self.deps, seen)
            moved += result.outcome == "updated"
        return moved


def _to(transfers: Iterable[Trc20Transfer], ours: Container[str]) -> list[Trc20Transfer]:
    return [t for t in transfers if t.to in ours]
