"""The background jobs of a process, as in-process loops (the embedded default runs them
beside the API in one process)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from krypton.app import invoices, relay
from krypton.bootstrap import ChainAdapters, Container
from krypton.workers.watch import ChainWatch

log = structlog.get_logger()
PROJECTION_BATCH = 100
CHECKPOINT_SECONDS = 1.0
EXPIRY_SECONDS = 5.0
PROJECTIONS_REST_SECONDS = 0.5


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


@dataclass
class Running:
    tasks: list[asyncio.Task[None]]
    chains: ChainAdapters

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.chains.aclose()


def start(container: Container) -> Running:
    deps = container.deps
    chains = container.chains()
    watch = ChainWatch(deps, chains)

    async def fold_wal() -> int:
        await container.db.checkpoint()
        return 0  # always rest between checkpoints

    jobs = [
        _forever("expiry", lambda: invoices.expire_due(deps), EXPIRY_SECONDS),
        # Small batches: on SQLite a batch runs without yielding the event loop. Under a
        # steady load a partial batch means it caught up: rest rather than poll again.
        _forever("projections", lambda: relay.run_projections(deps, PROJECTION_BATCH),
                 PROJECTIONS_REST_SECONDS, full=PROJECTION_BATCH),
        _forever("checkpoint", fold_wal, CHECKPOINT_SECONDS),
        _forever("chains", watch.poll, container.settings.watch_interval_seconds),
        *(run() for run in container.background()),
    ]
    return Running([asyncio.create_task(job) for job in jobs], chains)
