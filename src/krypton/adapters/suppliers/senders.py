"""Where a TON payment came from (app/ports.PaymentSender), asked of TON Center: the shop
refunds a failed order to the wallet that paid it. Krypton stores the transfer (hash, the
account it arrived at, when it was seen), not its sender, so the sender is read back from
the account's transactions around that moment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from krypton.adapters.chains.provider import Priority, ProviderClient
from krypton.adapters.chains.provider.errors import ProviderError
from krypton.adapters.chains.ton.address import Network, parse
from krypton.domain.payment import Payment

# A payment is seen after its block: look back this far from `detected_at`, and a little past
# it (the clocks of the chain and of this server differ by seconds).
LOOK_BACK = timedelta(hours=1)
LOOK_AHEAD = timedelta(minutes=5)
PAGE = 256


class TonSenders:
    def __init__(self, provider: ProviderClient, network: str) -> None:
        self._provider = provider
        self._network: Network = "mainnet" if network == "mainnet" else "testnet"

    async def sender_of(self, payment: Payment) -> str | None:
        if payment.chain.value != "ton":
            return None
        account = parse(payment.destination, network=self._network)
        params: dict[str, Any] = {
            "account": account.raw, "limit": PAGE, "offset": 0, "sort": "desc",
            "start_utime": int((payment.detected_at - LOOK_BACK).timestamp()),
            "end_utime": int((payment.detected_at + LOOK_AHEAD).timestamp())}
        try:
            answer = await self._provider.get_json("/transactions", params=params,
                                                   priority=Priority.DISCOVERY)
        except ProviderError:
            return None  # asked again on the order's next round
        for tx in answer.get("transactions", []) if isinstance(answer, dict) else []:
            if isinstance(tx, dict) and tx.get("hash") == payment.tx_id:
                source = (tx.get("in_msg") or {}).get("source")
                return parse(str(source), network=self._network).raw if source else None
        return None
