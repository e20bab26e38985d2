"""Fee-collector contracts read through TON Center v3 ``runGetMethod`` (get_config, get_stats).

The get-methods are contracts/fee_collector.fc's; their stack layouts are documented in
contracts/README.md. An account with nothing deployed cannot run a get-method: TON Center
answers a non-zero exit code or a 4xx, and both mean "not deployed (yet)".
"""

from __future__ import annotations

from typing import Any

from krypton.adapters.chains.provider import ClientError
from krypton.adapters.chains.ton import toncenter
from krypton.adapters.chains.ton.address import parse
from krypton.adapters.chains.ton.client import TonCenterClient
from krypton.app.ports import DeployedCollector
from krypton.domain.collector import CollectorStats
from krypton.domain.errors import Conflict

STATS_FIELDS = 7  # accumulated, collected, withdrawn, count, last withdrawal, min_withdrawal, fee_bps
CONFIG_FIELDS = 6  # owner, destination, fee_bps, min_withdrawal, storage floor, min_net


class TonCenterCollectors:
    def __init__(self, client: TonCenterClient) -> None:
        self.client = client

    async def deployed(self, address: str) -> DeployedCollector | None:
        stack = await self._run(address, "get_config", CONFIG_FIELDS)
        if stack is None:
            return None
        where = "runGetMethod get_config"
        return DeployedCollector(
            owner=toncenter.stack_address(stack[0], where).raw,
            destination=toncenter.stack_address(stack[1], where).raw,
            fee_bps=toncenter.stack_int(stack[2], where),
            min_withdrawal=toncenter.stack_int(stack[3], where))

    async def stats(self, address: str) -> CollectorStats:
        stack = await self._run(address, "get_stats", STATS_FIELDS)
        if stack is None:
            raise Conflict(f"No fee collector is deployed at {address}, so it has no statistics yet.",
                           field="merchant")
        return CollectorStats(*(toncenter.stack_int(e, "runGetMethod get_stats") for e in stack))

    async def _run(self, address: str, method: str, size: int) -> list[Any] | None:
        try:
            payload = await self.client.run_get_method(parse(address, network="testnet"), method)
        except ClientError:
            return None
        exit_code, stack = toncenter.parse_get_method(payload, method)
        if exit_code != 0:
            return None
        if len(stack) != size:
            raise toncenter.PayloadError(f"runGetMethod {method}: expected {size} stack entries, "
                                         f"got {len(stack)}")
        return stack
