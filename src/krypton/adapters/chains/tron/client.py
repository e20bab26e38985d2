"""TronGrid / node HTTP client: the requests the Tron watcher needs, parsed by trongrid.py."""

from __future__ import annotations

from typing import Any

from krypton.adapters.chains.provider import Priority, ProviderClient, TtlCache
from krypton.adapters.chains.tron import trongrid
from krypton.adapters.chains.tron.transfer import Network

PAGE = 200
HEAD_TTL = 2.0  # seconds; one block is 3 s


class TronGridClient:
    def __init__(self, provider: ProviderClient, usdt_contract: str, network: Network = "mainnet",
                 head_cache: TtlCache[str, int] | None = None) -> None:
        self.provider = provider
        self.usdt = usdt_contract
        self.network = network
        self._heads: TtlCache[str, int] = head_cache or TtlCache(HEAD_TTL)

    async def incoming(self, address: str, min_timestamp: int,
                       fingerprint: str | None = None) -> trongrid.TransferPage:
        """USDT transfers to `address` (discovery; no block numbers, use the receipt)."""
        params: dict[str, Any] = {"only_to": "true", "contract_address": self.usdt,
                                  "min_timestamp": min_timestamp, "limit": PAGE,
                                  "order_by": "block_timestamp,asc"}
        if fingerprint:
            params["fingerprint"] = fingerprint
        body = await self.provider.get_json(f"/v1/accounts/{address}/transactions/trc20",
                                            params=params, priority=Priority.DISCOVERY)
        return trongrid.parse_trc20_transactions(body, self.network)

    async def contract_events(self, min_block_timestamp: int,
                              fingerprint: str | None = None) -> trongrid.TransferPage:
        """Every USDT Transfer event since a time (one request for many open invoices)."""
        params: dict[str, Any] = {"event_name": "Transfer", "min_block_timestamp": min_block_timestamp,
                                  "limit": PAGE, "order_by": "block_timestamp,asc"}
        if fingerprint:
            params["fingerprint"] = fingerprint
        body = await self.provider.get_json(f"/v1/contracts/{self.usdt}/events", params=params,
                                            priority=Priority.DISCOVERY)
        return trongrid.parse_contract_events(body, self.network)

    async def tx_info(self, tx_id: str, *, solid: bool) -> trongrid.TxInfo | None:
        """The receipt; None while unknown (not yet in a block, or not yet solidified)."""
        path = "/walletsolidity/gettransactioninfobyid" if solid else "/wallet/gettransactioninfobyid"
        body = await self.provider.post_json(path, json={"value": tx_id}, priority=Priority.CONFIRM)
        return trongrid.parse_transaction_info(body, self.network)

    async def head(self) -> int:
        return await self._heads.get("head", lambda: self._block("/wallet/getnowblock"))

    async def _block(self, path: str) -> int:
        body = await self.provider.post_json(path, json={}, priority=Priority.CONFIRM)
        return trongrid.parse_block_number(body)
