"""The Tron ChainReader: discovers USDT transfers to open deposit addresses on TronGrid, then
follows each one's receipt until it is solidified.

Discovery only yields transaction ids; what is credited always comes from the receipt
(`gettransactioninfobyid`), whose log positions give the canonical (tx, index) key, so the
per-address listing and the contract-event scan can never produce two keys for one
transfer. Whether a transfer is final is the Tron rule in domain/finality.py. A receipt
that the full node no longer knows after it was in a block means the block was
reorganised away.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Container, Iterable, Mapping, Sequence

import structlog

from krypton.adapters.chains.tron.client import TronGridClient
from krypton.adapters.chains.tron.transfer import Trc20Transfer
from krypton.app.ports import ChainRead, TransferKey, Watch
from krypton.domain import finality
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer

log = structlog.get_logger()

# Above this many open deposit addresses, one contract-wide event scan beats per-address polls.
SCAN_THRESHOLD = 20
EVENTS_CURSOR = "tron:usdt-events"
OVERLAP_MS = 60_000  # re-read a minute of events: late-indexed ones are not missed
Found = dict[str, list[Trc20Transfer]]  # tx id -> transfers discovery saw


class TronReader:
    chain = Chain.TRON.value
    cursor_name = EVENTS_CURSOR  # the contract-wide scan's position (block time, ms)
    rechecks = True

    def __init__(self, client: TronGridClient) -> None:
        self.client = client

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        """Transfers to the watched deposit addresses whose receipts were not read before."""
        if not watch.addresses:
            return ChainRead()
        scanned: str | None = None
        if len(watch.addresses) <= SCAN_THRESHOLD:
            found = await self._per_address(watch.addresses)
        else:
            found, newest = await self._scan(cursor, watch.addresses)
            scanned = str(newest)
        known = await watch.known(list(found)) if watch.known is not None else set()
        seen: list[ObservedTransfer] = []
        rejected: list[tuple[ObservedTransfer, str]] = []
        failed: list[TransferKey] = []
        handled = 0
        for tx_id in sorted(set(found) - known):
            handled += await self._receipt(tx_id, found[tx_id], watch.addresses, seen, rejected, failed)
        return ChainRead(seen=seen, rejected=rejected, failed=failed, cursor=scanned, handled=handled)

    async def recheck(self, unfinished: Sequence[TransferKey]) -> ChainRead:
        seen: list[ObservedTransfer] = []
        failed: list[TransferKey] = []
        vanished: list[TransferKey] = []
        for tx_id, index in unfinished:
            solid = await self.client.tx_info(tx_id, solid=True)
            info = solid or await self.client.tx_info(tx_id, solid=False)
            if info is None or info.block_number is None:
                vanished.append((tx_id, index))
                continue
            if info.failed:
                failed.append((tx_id, index))
                continue
            transfer = next((t for t in info.credits if t.index == index), None)
            if transfer is None:
                continue
            count, final = finality.tron(await self.client.head(), info.block_number,
                                         solidified=solid is not None)
            seen.append(dataclasses.replace(transfer.observed(count), block=info.block_number,
                                            final=final))
        return ChainRead(seen=seen, failed=failed, vanished=vanished)

    async def _per_address(self, addresses: Mapping[str, int]) -> Found:
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

    async def _scan(self, cursor: str | None, addresses: Container[str]) -> tuple[Found, int]:
        since = max(0, int(cursor or 0) - OVERLAP_MS)
        found: Found = defaultdict(list)
        newest, fingerprint = since, None
        while True:
            page = await self.client.contract_events(since, fingerprint)
            for t in page.transfers:
                newest = max(newest, t.block_timestamp or 0)
                if t.to in addresses:
                    found[t.tx_id].append(t)
            if not page.fingerprint:
                return found, newest
            fingerprint = page.fingerprint

    async def _receipt(self, tx_id: str, discovered: list[Trc20Transfer], ours: Container[str],
                       seen: list[ObservedTransfer], rejected: list[tuple[ObservedTransfer, str]],
                       failed: list[TransferKey]) -> int:
        info = await self.client.tx_info(tx_id, solid=False)
        if info is None or info.block_number is None:
            return 0  # not in a block yet: discovered again next round
        head = await self.client.head()
        # A failed call emits no logs: record what discovery saw, then fail it.
        transfers = discovered if info.failed and not info.transfers else _to(info.transfers, ours)
        for transfer in transfers:
            if transfer.counterfeit:
                log.warning("counterfeit_trc20", tx=tx_id, contract=transfer.contract)
                rejected.append((ObservedTransfer(
                    Chain.TRON, tx_id, transfer.index, "COUNTERFEIT", transfer.amount, transfer.to,
                    None, info.block_number, 0, transfer.from_), "counterfeit_token"))
                continue
            count, final = finality.tron(head, info.block_number, solidified=False)
            seen.append(dataclasses.replace(transfer.observed(count), block=info.block_number,
                                            final=final))
            if info.failed:
                failed.append((tx_id, transfer.index))
        return len(transfers)


def _to(transfers: Iterable[Trc20Transfer], ours: Container[str]) -> list[Trc20Transfer]:
    return [t for t in transfers if t.to in ours]
