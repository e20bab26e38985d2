"""In-process background loops for the embedded default (one server, no extra processes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from krypton.app import invoices, relay
from krypton.app.deps import Deps

log = structlog.get_logger()


async def _forever(name: str, step: Callable[[], Awaitable[int]], idle: float) -> None:
    """Run `step` until cancelled; sleep `idle` seconds when it found nothing to do."""
    while True:
        try:
            done = await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker_step_failed", worker=name)
            done = 0
        if not done:
            await asyncio.sleep(idle)


def start(deps: Deps) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(_forever("expiry", lambda: invoices.expire_due(deps), 5.0)),
        asyncio.create_task(_forever("projections", lambda: relay.run_projections(deps), 0.5)),
    ]


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
