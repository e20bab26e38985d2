"""Builds the chain watchers from settings: real providers, or the in-process devnet."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from krypton.adapters.chains.devnet.devnet import Devnet
from krypton.adapters.chains.devnet.http import create_devnet_app
from krypton.adapters.chains.provider import Endpoint, ProviderClient
from krypton.adapters.chains.rails import ton_network
from krypton.adapters.chains.ton.address import parse
from krypton.adapters.chains.ton.client import TonCenterClient
from krypton.adapters.chains.ton.collector_chain import TonCenterCollectors
from krypton.adapters.chains.tron.client import TronGridClient
from krypton.adapters.chains.tron.transfer import MAINNET_USDT, NILE_USDT
from krypton.app import collectors
from krypton.app.deps import Deps
from krypton.config import Settings
from krypton.domain.assets import USDT_TON
from krypton.workers.ton_watcher import TonWatcher
from krypton.workers.tron_watcher import TronWatcher

DEVNET_BASE = "http://devnet"
# How often pending fee collectors are looked up on chain (one get-method call each).
COLLECTOR_CHECK_SECONDS = 15.0


@dataclass
class ChainWatchers:
    ton: TonWatcher | None
    tron: TronWatcher | None
    clients: list[ProviderClient] = field(default_factory=list)
    http: list[httpx.AsyncClient] = field(default_factory=list)
    # Merchants' own TON receiving addresses and fee-collector contracts, one watcher each.
    merchant_ton: dict[str, TonWatcher] = field(default_factory=dict)
    next_collector_check: float = 0.0

    async def poll(self) -> int:
        moved = 0
        if self.ton is not None:
            await self._activate_collectors(self.ton)
            await self._follow_merchant_addresses(self.ton)
            for watcher in (self.ton, *self.merchant_ton.values()):
                moved += await watcher.poll()
        if self.tron is not None:
            moved += await self.tron.poll()
        return moved

    async def _activate_collectors(self, platform: TonWatcher) -> None:
        """Start using a merchant's fee collector once its deploy shows on chain."""
        if time.monotonic() < self.next_collector_check:
            return
        self.next_collector_check = time.monotonic() + COLLECTOR_CHECK_SECONDS
        await collectors.activate_deployed(platform.deps, TonCenterCollectors(platform.client))

    async def _follow_merchant_addresses(self, platform: TonWatcher) -> None:
        async with platform.deps.uow(write=False) as uow:
            merchants = await uow.merchants.list()
        wallets = {m.ton_address for m in merchants if m.ton_address}
        contracts = {m.ton_collector for m in merchants if m.ton_collector}
        for raw in (wallets | contracts) - set(self.merchant_ton) - {platform.account.raw}:
            is_contract = raw in contracts
            # No jettons at a collector: it cannot pass them on (the deploy docs say so).
            self.merchant_ton[raw] = TonWatcher(
                platform.deps, platform.client, parse(raw, network="testnet"),
                {} if is_contract else platform.masters, fee_collector=is_contract)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        for http in self.http:
            await http.aclose()


def _endpoints(name: str, urls: list[str], key_header: str, key: str | None,
               throttle_statuses: frozenset[int] = frozenset({429})) -> list[Endpoint]:
    headers = {key_header: key} if key else {}
    # TON Center: 1 request/s without a key, 10 with the smallest plan (CHAINS.md).
    rate = 10.0 if key else 1.0
    return [Endpoint(f"{name}-{i}", url, headers=headers, rate_per_second=rate,
                     throttle_statuses=throttle_statuses) for i, url in enumerate(urls)]


def ton_endpoints(settings: Settings) -> list[Endpoint]:
    """TON Center for a process without the devnet in it (the CLI): on devnet, the one the
    running server mounts at /devnet."""
    if settings.network == "devnet":
        return [Endpoint("devnet-toncenter", f"{settings.public_url.rstrip('/')}/devnet/toncenter/api/v3",
                         rate_per_second=100)]
    return _endpoints("toncenter", settings.toncenter_urls, "X-API-Key", settings.toncenter_api_key)


def build(settings: Settings, deps: Deps, devnet: Devnet | None = None) -> ChainWatchers:
    """Watchers for the configured network; on devnet they talk to `devnet` in process."""
    if settings.network == "devnet":
        if devnet is None:
            raise ValueError("the devnet network needs a Devnet instance")
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_devnet_app(devnet)),
                                 base_url=DEVNET_BASE)
        ton_points = [Endpoint("devnet-toncenter", f"{DEVNET_BASE}/toncenter/api/v3",
                               rate_per_second=1000, burst=100)]
        tron_points = [Endpoint("devnet-trongrid", f"{DEVNET_BASE}/trongrid",
                                rate_per_second=1000, burst=100)]
    else:
        http = httpx.AsyncClient()
        ton_points = ton_endpoints(settings)
        # TronGrid answers an exceeded quota with 429 or 403.
        tron_points = _endpoints("trongrid", settings.trongrid_urls, "TRON-PRO-API-KEY",
                                 settings.trongrid_api_key, frozenset({429, 403}))
    timeout = settings.provider_timeout_seconds
    ton_provider = ProviderClient(ton_points, http=http, timeout=timeout)
    tron_provider = ProviderClient(tron_points, http=http, timeout=timeout)
    watchers = ChainWatchers(None, None, [ton_provider, tron_provider], [http])
    if settings.ton_receiving_address:
        account = parse(settings.ton_receiving_address, network=ton_network(settings.network))
        master = parse(USDT_TON.contract or "", network="mainnet")
        watchers.ton = TonWatcher(deps, TonCenterClient(ton_provider), account,
                                  {master: USDT_TON.code})
    if settings.tron_account_xpub:
        testnet = settings.network == "testnet"
        watchers.tron = TronWatcher(deps, TronGridClient(
            tron_provider, NILE_USDT if testnet else MAINNET_USDT,
            "testnet" if testnet else "mainnet"))
    return watchers

