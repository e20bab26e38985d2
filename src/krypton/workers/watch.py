"""The chain loop's one step: follow every reader, re-check what is not final yet, and look
for newly deployed fee collectors now and then. While the Tron reader scans USDT's events
(many open deposit addresses), its account sweep also polls every open address on its own,
on a slower schedule: at the first scanning round (covering whatever happened while the
process was down) and then every `ScanPolicy.sweep_every`. What a reader found is handed to
the use cases in app/watching.py; this module only decides when and in which order."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

import structlog
from prometheus_client import Gauge

from krypton.app import chain_time, collectors, watching
from krypton.app.chain_time import ChainHead
from krypton.app.clock_skew import SkewWatch
from krypton.app.deps import Deps
from krypton.app.ports import ChainReader
from krypton.bootstrap import ChainAdapters

# How often pending fee collectors are looked up on chain (one get-method call each).
COLLECTOR_CHECK_SECONDS = 15.0


class ChainWatch:
    def __init__(self, deps: Deps, chains: ChainAdapters) -> None:
        self.deps = deps
        self.chains = chains
        # Merchants' own TON receiving addresses and fee-collector contracts, a reader each.
        self.merchant_ton: dict[str, ChainReader] = {}
        self.tron_deposits = watching.WatchSet()
        self.next_collector_check = 0.0
        self.next_tron_sweep: datetime | None = None  # None: at the first scanning round
        # When (time.monotonic) the newest round that read each chain to its end had begun:
        # everything the chain held then has been read.
        self.caught_up: dict[str, float] = {}
        self.last_round_began: float | None = None  # None: the chain job never ran here

    async def poll(self) -> int:
        """One round over every reader; returns how many transactions or transfers moved."""
        started = self.last_round_began = time.monotonic()
        moved = await self._round()
        for chain, reader in (("ton", self.chains.ton), ("tron", self.chains.tron)):
            if reader is not None:
                self.caught_up[chain] = started
        return moved

    async def _round(self) -> int:
        moved = 0
        ton, tron = self.chains.ton, self.chains.tron
        if ton is not None:
            await self._activate_collectors()
            await self._follow_merchant_accounts(ton.account.raw)
            for reader in (ton, *self.merchant_ton.values()):
                moved += await watching.follow(self.deps, reader)
        if tron is not None:
            moved += await watching.follow(self.deps, tron, self.tron_deposits)
            moved += await self._sweep_tron()
            moved += await watching.recheck(self.deps, tron)
        return moved

    async def _sweep_tron(self) -> int:
        """The safety net under the event scan; nothing to do while every address is polled."""
        tron = self.chains.tron
        if tron is None:
            return 0
        now = self.deps.clock.now()
        if not tron.scanning:
            # Every address was just polled on its own: the safety net's interval starts
            # again from here. (Else the first scanning round would poll every address once
            # more at once: thousands of calls for what the last round has just read.)
            self.next_tron_sweep = now + tron.policy.sweep_every
            return 0
        if self.next_tron_sweep is not None and now < self.next_tron_sweep:
            return 0
        self.next_tron_sweep = now + tron.policy.sweep_every
        return await watching.follow(self.deps, tron.sweep, self.tron_deposits)

    async def _activate_collectors(self) -> None:
        """Start using a merchant's fee collector once its deploy shows on chain."""
        if time.monotonic() < self.next_collector_check:
            return
        self.next_collector_check = time.monotonic() + COLLECTOR_CHECK_SECONDS
        await collectors.activate_deployed(self.deps, self.chains.collectors)

    async def _follow_merchant_accounts(self, platform: str) -> None:
        for raw, is_contract in (await watching.ton_accounts(self.deps)).items():
            if raw != platform and raw not in self.merchant_ton:
                self.merchant_ton[raw] = self.chains.merchant_ton(raw, fee_collector=is_contract)


HEAD_LAG = Gauge("krypton_watcher_head_lag_blocks",
                 "Blocks the chain has made since the watcher last read it to its end "
                 "(measured every 15 s; up to one interval's blocks too high, never too low)",
                 ["chain"])
CLOCK_SKEW = Gauge("krypton_clock_skew_seconds",
                   "The server clock minus the time of the chain's newest block, sampled with the "
                   "head (a few seconds is normal: a block interval or two and the provider's "
                   "delay); far either way, the server clock or the chain's head is wrong",
                   ["chain"])
log = structlog.get_logger()
SAMPLES = 1000  # a few hours of head samples: enough to date any round still of interest
# A process whose chain job began no round for this long lost the job's lease: its figures
# are withdrawn, or they would linger beside the live ones of the process running it now.
STALE_SECONDS = 60.0


class HeadLag:
    """How far each chain's head is ahead of what the watcher has surely read: the head now
    minus the head when the watcher's newest complete round began. Heads are sampled by this
    job (one call per chain) and the round's start dated between samples, taking the sample
    before it: the lag reads up to one interval's blocks high. It runs in every process and
    measures only where the chain job runs: `caught_up` lives in that process's memory.

    The same answers carry each head's time, the chain's clock: it is recorded for the
    decisions judged by chain time (app/chain_time.py) and compared with this process's
    clock (`krypton_clock_skew_seconds`, one warning per episode beyond `skew.limit`)."""

    def __init__(self, watch: ChainWatch, heads: Callable[[], Awaitable[Mapping[str, ChainHead | int]]],
                 clock: Callable[[], float] = time.monotonic, skew: SkewWatch | None = None) -> None:
        self.watch = watch
        self.heads = heads
        self.clock = clock
        self.skew = skew or SkewWatch()
        self.skew_chains: set[str] = set()  # chains with a skew figure exported here
        self.samples: dict[str, deque[tuple[float, int]]] = {}

    async def step(self) -> int:
        now = self.clock()
        began = self.watch.last_round_began
        if began is None or now - began > STALE_SECONDS:
            for chain in self.samples:
                HEAD_LAG.remove(chain)
            for chain in self.skew_chains:
                CLOCK_SKEW.remove(chain)
            self.samples.clear()
            self.skew_chains.clear()
            self.skew.forget()
            return 0
        heads = await self.heads()
        for chain, head in heads.items():
            number = head.number if isinstance(head, ChainHead) else head
            samples = self.samples.setdefault(chain, deque(maxlen=SAMPLES))
            samples.append((now, number))
            HEAD_LAG.labels(chain).set(number - self._head_then(chain, samples))
        await self._clock_skew({c: h.time for c, h in heads.items() if isinstance(h, ChainHead)})
        return 0  # a measurement, not work: the job always rests its interval

    async def _clock_skew(self, times: dict[str, datetime]) -> None:
        """Record the chains' times, then compare this process's clock with them."""
        if not times:
            return
        deps = self.watch.deps
        now = deps.clock.now()  # as close to the answers as it gets
        await chain_time.record(deps, times)
        for skew in self.skew.observe(now, times):
            self.skew_chains.add(skew.chain)
            CLOCK_SKEW.labels(skew.chain).set(skew.seconds)
            if skew.began:
                log.warning("clock_skew", chain=skew.chain, skew_seconds=round(skew.seconds, 1),
                            limit_seconds=self.skew.limit.total_seconds(),
                            hint="the server clock (check NTP) or the chain's head (check the "
                                 "providers) is off; expiry waits for the chain's own time")
            elif skew.ended:
                log.info("clock_skew_over", chain=skew.chain, skew_seconds=round(skew.seconds, 1))

    def _head_then(self, chain: str, samples: deque[tuple[float, int]]) -> int:
        began = self.watch.caught_up.get(chain)
        if began is None:  # no round has finished since this process started measuring
            return samples[0][1]
        before = [head for at, head in samples if at <= began]
        return before[-1] if before else samples[0][1]
