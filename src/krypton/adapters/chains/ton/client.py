"""TON Center API v3 client: the requests the watcher needs, parsed by toncenter.py."""

from __future__ import annotations

from typing import Any

from krypton.adapters.chains.provider import ClientError, Priority, ProviderClient
from krypton.adapters.chains.ton import toncenter
from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import address_cell, cell_to_boc

PAGE = 100


class TonCenterClient:
    def __init__(self, provider: ProviderClient) -> None:
        self.provider = provider

    async def transactions(self, account: TonAddress, start_lt: int | None,
                           limit: int = PAGE) -> dict[str, Any]:
        """Oldest first from `start_lt` (inclusive: the page repeats the cursor's transaction)."""
        params: dict[str, Any] = {"account": account.raw, "limit": limit, "offset": 0, "sort": "asc"}
        if start_lt is not None:
            params["start_lt"] = start_lt
        payload = await self.provider.get_json("/transactions", params=params,
                                               priority=Priority.DISCOVERY)
        if not isinstance(payload, dict):
            raise toncenter.PayloadError("/transactions did not answer with an object")
        return payload

    async def masterchain_seqno(self) -> int:
        payload = await self.provider.get_json("/masterchainInfo", priority=Priority.CONFIRM)
        return toncenter.parse_masterchain_info(payload)

    async def jetton_wallet(self, owner: TonAddress, master: TonAddress) -> TonAddress:
        """Our jetton wallet for `master`, asked of the master itself (get_wallet_address):
        the indexer lists a jetton wallet only after it first received jettons."""
        payload = await self.run_get_method(
            master, "get_wallet_address", [{"type": "slice", "value": cell_to_boc(address_cell(owner))}])
        return toncenter.parse_wallet_address(payload)

    async def jetton_wallet_data(self, wallet: TonAddress) -> tuple[TonAddress, TonAddress] | None:
        """(owner, master) that `wallet` reports through get_wallet_data; None when it is no
        jetton wallet (the method does not run, or nothing runs at the address)."""
        try:
            payload = await self.run_get_method(wallet, "get_wallet_data")
        except ClientError:
            return None
        return toncenter.parse_wallet_data(payload)

    async def run_get_method(self, account: TonAddress, method: str,
                             stack: list[dict[str, str]] | None = None) -> Any:
        """``POST /runGetMethod``; the answer is parsed by toncenter.parse_get_method."""
        return await self.provider.post_json("/runGetMethod", json={
            "address": account.raw, "method": method, "stack": stack or []},
            priority=Priority.CONFIRM)
