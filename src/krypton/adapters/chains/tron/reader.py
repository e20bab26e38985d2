"""The Tron ChainReader: discovers USDT transfers to open deposit addresses on TronGrid, then
follows each one's receipt until it is solidified.

Discovery only yields transaction ids; what is credited always comes from the receipt
(`gettransactioninfobyid`), whose log positions give the canonical (tx, index) key, so the
per-address listing and the contract-event scan can never produce two keys for one
transfer. Whether a transfer is final is the Tron rule in domain/finality.py. A receipt
that the full node no longer knows after it was in a block means the block was
reorganised away.

Discovery has two modes. Up to `ScanPolicy.threshold` open deposit addresses, each is
polled on its own (its TronGrid account list, from when its invoice was created). Above
that, one contract-wide scan of USDT `Transfer` events costs less; its rules:

- The first scan starts at the lookback (now − `lookback`) or at the oldest open
  address's watch start, whichever is later: never at the beginning of USDT's history.
- One page per `read`, each returning a cursor (the newest block time read), so
  `app/watching.follow` stores the position page by page, after ingesting each. The pages
  of one scan are chained by TronGrid's fingerprint only within one `follow` (the same
  `Watch`) and only while the stored cursor is the one the last page returned: after a
  failure the next scan starts afresh from the stored cursor, so no page is skipped.
- A scan starts at the cursor (inclusive: a block's events may span two pages), and every
  half `overlap` it reaches back a whole `overlap` instead: TronGrid may index an event
  later than events of newer blocks, and one indexed up to half an overlap late is still
  found, and so is a listed transfer whose receipt the node did not have yet. (Re-reading
  the whole overlap on every round would cost tens of requests a round on mainnet; ingest
  is idempotent, so the re-reads are harmless, only paid for.)
- As a safety net the worker runs `sweep`, an account poll of every open address, every
  `sweep_every` while scanning (workers/watch.py): it finds what no scan could (an event
  indexed later than the overlap covers, a gap longer than the lookback after an outage).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog

from krypton.adapters.chains.tron.client import TronGridClient
from krypton.adapters.chains.tron.transfer import Trc20Transfer
from krypton.app.ports import ChainRead, Clock, TransferKey, Watch
from krypton.domain import finality
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer

log = structlog.get_logger()

# Above this many open deposit addresses, one contract-wide event scan beats per-address polls.
SCAN_THRESHOLD = 20
EVENTS_CURSOR = "tron:usdt-events"
SWEEP_CURSOR = "tron:account-sweep"  # never written: a sweep always reads every address whole
Found = dict[str, list[Trc20Transfer]]  # tx id -> transfers discovery saw


@dataclass(frozen=True, slots=True)
class ScanPolicy:
    """How the contract-wide scan reads (bootstrap fills it from the KRYPTON_TRON_* settings)."""

    threshold: int = SCAN_THRESHOLD  # scan above this many open deposit addresses
    lookback: timedelta = timedelta(hours=1)  # how far back a scan may ever start
    overlap: timedelta = timedelta(minutes=5)  # re-read this much, every half of it
    sweep_every: timedelta = timedelta(minutes=10)  # account polls of every address, while scanning

    def __post_init__(self) -> None:
        if self.threshold < 0 or min(self.lookback, self.overlap, self.sweep_every) <= timedelta(0):
            raise ValueError("the Tron scan's threshold must be 0 or more and its durations positive")


@dataclass(slots=True)
class _Scan:
    """A scan under way: the page to ask for next and what the cursor says."""

    watch: Watch  # the follow() it belongs to
    since: int  # min_block_timestamp of the scan (ms)
    newest: int  # the newest block time read (ms)
    fingerprint: str | None = None
    cursor: str | None = None  # what the last page returned


class TronReader:
    chain = Chain.TRON.value
    cursor_name = EVENTS_CURSOR  # the contract-wide scan's position (block time, ms)
    rechecks = True

    def __init__(self, client: TronGridClient, clock: Clock, policy: ScanPolicy | None = None) -> None:
        self.client = client
        self.clock = clock
        self.policy = policy or ScanPolicy()
        self.scanning = False  # whether the last read scanned the contract's events
        self.sweep = AccountSweep(self)
        self._scan: _Scan | None = None
        self._last_rewind: int | None = None  # when a scan last reached back the overlap (ms)

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        """Transfers to the watched deposit addresses whose receipts were not read before."""
        self.scanning = len(watch.addresses) > self.policy.threshold
        if not self.scanning:
            self._scan = None
            if not watch.addresses:
                return ChainRead()
            return await self._receipts(await self._per_address(watch.addresses), watch)
        return await self._scan_page(cursor, watch)

    async def read_accounts(self, watch: Watch) -> ChainRead:
        """Every watched address polled on its own, whatever the mode (the sweep)."""
        if not watch.addresses:
            return ChainRead()
        return await self._receipts(await self._per_address(watch.addresses), watch)

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

    async def _scan_page(self, cursor: str | None, watch: Watch) -> ChainRead:
        scan = self._scan
        if scan is None or scan.watch is not watch or scan.cursor != cursor:
            since = self._since(_position(cursor), watch.addresses)
            scan = _Scan(watch, since, newest=_position(cursor) or 0)
        page = await self.client.contract_events(scan.since, scan.fingerprint)
        found: Found = defaultdict(list)
        for t in page.transfers:
            scan.newest = max(scan.newest, t.block_timestamp or 0)
            if t.to in watch.addresses:
                found[t.tx_id].append(t)
        read = await self._receipts(found, watch)
        scan.fingerprint = page.fingerprint
        scan.cursor = str(scan.newest) if scan.newest else cursor
        self._scan = scan if page.fingerprint else None
        return dataclasses.replace(read, cursor=scan.cursor, more=page.fingerprint is not None)

    def _since(self, cursor: int | None, addresses: Mapping[str, int]) -> int:
        """Where a new scan starts (ms): the cursor, or the overlap before it when a rewind is
        due, but never before the lookback or the oldest open address's watch start."""
        now = int(self.clock.now().timestamp() * 1000)
        floor = max(now - _ms(self.policy.lookback), min(addresses.values()), 0)
        rewind = self._last_rewind is None or now - self._last_rewind >= _ms(self.policy.overlap) // 2
        if cursor is None or rewind:
            self._last_rewind = now
        if cursor is None:
            return floor
        return max(floor, cursor - _ms(self.policy.overlap) if rewind else cursor)

    async def _receipts(self, found: Found, watch: Watch) -> ChainRead:
        """What the receipts of the transactions not ingested before say."""
        known = await watch.known(list(found)) if watch.known is not None else set()
        seen: list[ObservedTransfer] = []
        rejected: list[tuple[ObservedTransfer, str]] = []
        failed: list[TransferKey] = []
        handled = 0
        for tx_id in sorted(set(found) - known):
            handled += await self._receipt(tx_id, found[tx_id], watch.addresses, seen, rejected, failed)
        return ChainRead(seen=seen, rejected=rejected, failed=failed, handled=handled)

    async def _receipt(self, tx_id: str, discovered: list[Trc20Transfer], ours: Container[str],
                       seen: list[ObservedTransfer], rejected: list[tuple[ObservedTransfer, str]],
                       failed: list[TransferKey]) -> int:
        info = await self.client.tx_info(tx_id, solid=False)
        if info is None or info.block_number is None:
            return 0  # not in a block yet: discovered again later
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


class AccountSweep:
    """The safety net as a ChainReader: the Tron reader's account polls of every open deposit
    address, whatever the number; it keeps no cursor (each sweep reads every address whole)."""

    chain = Chain.TRON.value
    cursor_name = SWEEP_CURSOR
    rechecks = True

    def __init__(self, reader: TronReader) -> None:
        self.reader = reader

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        return await self.reader.read_accounts(watch)

    async def recheck(self, unfinished: Sequence[TransferKey]) -> ChainRead:
        return await self.reader.recheck(unfinished)


def _position(cursor: str | None) -> int | None:
    """The stored scan position (block time, ms); None for none or one this reader never wrote."""
    return int(cursor) if cursor is not None and cursor.isdigit() else None


def _ms(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


def _to(transfers: Iterable[Trc20Transfer], ours: Container[str]) -> list[Trc20Transfer]:
    return [t for t in transfers if t.to in ours]
