"""Builds the chain watchers from settings: real providers, or the in-process devnet."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from krypton.adapters.chains.devnet.devnet import Devnet
from krypton.adapters.chains.devnet.http import create_devnet_app
from krypton.adapters.chains.provider import Endpoint, ProviderClient
from krypton.adapters.chains.rails import ton_network
from krypton.adapters.chains.ton.address import parse
from krypton.adapters.chains.ton.client import TonCenterClient
from krypton.adapters.chains.tron.client import TronGridClient
from krypton.adapters.chains.tron.transfer import MAINNET_USDT, NILE_USDT
from krypton.app.deps import Deps
from krypton.config import Settings
from krypton.domain.assets import USDT_TON
from krypton.workers.ton_watcher import TonWatcher
from krypton.workers.tron_watcher import TronWatcher

DEVNET_BASE = "http://devnet"


@dataclass
class ChainWatchers:
    ton: TonWatcher | None
    tron: TronWatcher | None
    clients: list[ProviderClient] = field(default_factory=list)
    http: list[httpx.AsyncClient] = field(default_factory=list)
    # Merchants' own TON receiving addresses (e.g. fee-collector contracts), one watcher each.
    merchant_ton: dict[str, TonWatcher] = field(default_factory=dict)

    async def poll(self) -> int:
        moved = 0
        if self.ton is not None:
            await self._follow_merchant_addresses(self.ton)
            for watcher in (self.ton, *self.merchant_ton.values()):
                moved += await watcher.poll()
        if self.tron is not None:
            moved += await self.tron.poll()
        return moved

    async def _follow_merchant_addresses(self, platform: TonWatcher) -> None:
        async with platform.deps.uow(write=False) as uow:
            addresses = {m.ton_address for m in await uow.merchants.list() if m.ton_address}
        for raw in addresses - set(self.merchant_ton) - {platform.account.raw}:
            self.merchant_ton[raw] = TonWatcher(platform.deps, platform.client,
                                                parse(raw, network="testnet"), platform.masters)

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
        ton_points = _endpoints("toncenter", settings.toncenter_urls, "X-API-Key",
                                settings.toncenter_api_key)
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

