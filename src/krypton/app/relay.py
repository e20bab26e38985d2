"""Consumers of the event log: read in order, apply, store the position in the same transaction."""

from __future__ import annotations

from collections.abc import Callable

from krypton.app.deps import Deps

PROJECTIONS = "projections"


async def run_projections(deps: Deps, batch: int = 500) -> int:
    """Apply the next batch of events to the read models; returns how many were applied."""
    async with deps.uow() as uow:
        position = await uow.events.consumer_position(PROJECTIONS)
        stored = await uow.events.read(position, batch)
        await uow.read_models.apply_batch(stored)
        if stored:
            await uow.events.set_consumer_position(PROJECTIONS, (stored[-1].txid, stored[-1].seq))
        await uow.commit()
    return len(stored)


async def catch_up(deps: Deps, batch: int = 500) -> int:
    total = 0
    while n := await run_projections(deps, batch):
        total += n
    return total


async def rebuild(deps: Deps, progress: Callable[[int], None] | None = None,
                  batch: int = 1000) -> int:
    """Throw the read models away and replay the whole log into them."""
    async with deps.uow() as uow:
        await uow.read_models.reset()
        await uow.events.set_consumer_position(PROJECTIONS, (0, 0))
        await uow.commit()
    total = 0
    while n := await run_projections(deps, batch):
        total += n
        if progress:
            progress(n)
    return total
