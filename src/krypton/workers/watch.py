"""The chain loop's one step: follow every reader, re-check what is not final yet, and look
for newly deployed fee collectors now and then. While the Tron reader scans USDT's events
(many open deposit addresses), its account sweep also polls every open address on its own,
on a slower schedule: at the first scanning round (covering whatever happened while the
process was down) and then every `ScanPolicy.sweep_every`. What a reader found is handed to
the use cases in app/watching.py; this module only decides when and in which order."""

from __future__ import annotations

import time
from datetime import datetime

from krypton.app import collectors, watching
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

    async def poll(self) -> int:
        """One round over every reader; returns how many transactions or transfers moved."""
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
        if tron is None or not tron.scanning:
            return 0
        now = self.deps.clock.now()
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
