"""Block production on a timer, for a devnet that runs next to `krypton serve`.

Tests never use this with real time: they produce blocks by hand, or pass a fake `sleep`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from krypton.devnet.devnet import Devnet

Sleep = Callable[[float], Awaitable[object]]
TON_INTERVAL = 1.0  # a masterchain block about every second
TRON_INTERVAL = 3.0


async def run_block_timer(devnet: Devnet, ton_interval: float = TON_INTERVAL,
                          tron_interval: float = TRON_INTERVAL, *, sleep: Sleep = asyncio.sleep) -> None:
    """Produce a TON block every `ton_interval` seconds and a Tron block every `tron_interval`
    seconds, until cancelled."""
    for name, value in (("ton_interval", ton_interval), ("tron_interval", tron_interval)):
        if not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")

    async def every(interval: float, produce: Callable[[], object]) -> None:
        while True:
            await sleep(interval)
            produce()

    async with asyncio.TaskGroup() as group:
        group.create_task(every(ton_interval, devnet.ton.produce_block))
        group.create_task(every(tron_interval, devnet.tron.produce_block))
