"""In-process background loops for the embedded default (one server, no extra processes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from krypton.adapters.chains.devnet.devnet import Devnet
from krypton.adapters.chains.devnet.timer import run_block_timer
from krypton.app import invoices, relay
from krypton.app.deps import Deps
from krypton.config import Settings
from krypton.workers.chains import ChainWatchers

log = structlog.get_logger()
PROJECTION_BATCH = 100
CHECKPOINT_SECONDS = 1.0


async def _forever(name: str, step: Callable[[], Awaitable[int]], idle: float,
                   full: int = 1) -> None:
    """Run `step` until cancelled; sleep `idle` seconds when it did less than `full` items
    (a step's fixed cost is then paid once per `idle`, not once per handful of items)."""
    while True:
        try:
            done = await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker_step_failed", worker=name)
            done = 0
        if done < full:
            await asyncio.sleep(idle)


def start(deps: Deps, watchers: ChainWatchers | None = None, devnet: Devnet | None = None,
          settings: Settings | None = None,
          checkpoint: Callable[[], Awaitable[object]] | None = None) -> list[asyncio.Task[None]]:
    tasks = [
        asyncio.create_task(_forever("expiry", lambda: invoices.expire_due(deps), 5.0)),
        # Small batches: on SQLite a batch runs without yielding the event loop. Under a
        # steady load a partial batch means it caught up: rest rather than poll again.
        asyncio.create_task(_forever("projections",
                                     lambda: relay.run_projections(deps, PROJECTION_BATCH), 0.5,
                                     full=PROJECTION_BATCH)),
    ]
    if checkpoint is not None:
        async def fold_wal() -> int:
            await checkpoint()
            return 0  # always rest between checkpoints
        tasks.append(asyncio.create_task(_forever("checkpoint", fold_wal, CHECKPOINT_SECONDS)))
    interval = settings.watch_interval_seconds if settings else 2.0
    if watchers is not None:
        tasks.append(asyncio.create_task(_forever("chains", watchers.poll, interval)))
    if devnet is not None and settings is not None:
        tasks.append(asyncio.create_task(run_block_timer(
            devnet, settings.devnet_ton_block_seconds, settings.devnet_tron_block_seconds)))
    return tasks


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
