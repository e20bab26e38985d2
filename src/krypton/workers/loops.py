"""The background jobs, as in-process loops: which jobs there are, how often each runs, and
that each runs only while this process holds its lease (exactly one process cluster-wide
runs a job; the embedded default runs them all beside the API in one process)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from krypton.app import export, invoices, provider_health, relay, webhooks
from krypton.app.ports import Leases, WebhookObjects
from krypton.bootstrap import ChainAdapters, Container
from krypton.workers.watch import ChainWatch

log = structlog.get_logger()
PROJECTION_BATCH = 100
CHECKPOINT_SECONDS = 1.0
EXPIRY_SECONDS = 5.0
PROJECTIONS_REST_SECONDS = 0.5
EXPORT_BATCH = 500
EXPORT_REST_SECONDS = 0.5
# Webhooks: events become deliveries, and due deliveries are sent, within a fraction of a
# second (the lag target is 1 s at p95).
WEBHOOK_RELAY_BATCH = 500
WEBHOOK_SEND_BATCH = 200
WEBHOOK_REST_SECONDS = 0.1
# How often the chain job's process reports its providers' health (stale after 60 s).
PROVIDER_HEALTH_SECONDS = 5.0
# How often a process without a job's lease asks for it again: when the holder dies,
# another process takes the job over within about this long.
LEASE_RETRY_SECONDS = 2.0

Sleep = Callable[[float], Awaitable[None]]
Adapt = Callable[[list["Job"]], list["Job"]]


@dataclass(frozen=True)
class Job:
    """One background job: `step` does a round and says how many items it did; under `full`
    the job rests `idle` seconds (its fixed cost is then paid once per rest)."""

    name: str
    step: Callable[[], Awaitable[int]]
    idle: float
    full: int = 1
    # Under a lease: one process in the cluster runs it. A job whose step claims its own work
    # (the webhook sender) runs in every process instead, so more processes send more.
    leased: bool = True


def jobs(container: Container, chains: ChainAdapters, objects: WebhookObjects) -> list[Job]:
    deps = container.deps
    kit = container.webhook_kit()
    watch = ChainWatch(deps, chains)
    rounds = ChainRounds(watch.poll)
    process = f"{socket.gethostname()}:{os.getpid()}"

    async def report_providers() -> int:
        if rounds.ran_since_last_look():
            await provider_health.record(deps, chains.provider_stats(), process)
        return 0  # always rest between reports

    async def fold_wal() -> int:
        await container.db.checkpoint()
        return 0  # always rest between checkpoints

    sink = container.event_sink
    exporting = [] if sink is None else [
        Job("export", lambda: export.export_events(deps, sink, EXPORT_BATCH), EXPORT_REST_SECONDS,
            full=EXPORT_BATCH)]
    return [
        *exporting,
        Job("expiry", lambda: invoices.expire_due(deps), EXPIRY_SECONDS),
        # Small batches: on SQLite a batch runs without yielding the event loop. Under a
        # steady load a partial batch means it caught up: rest rather than poll again.
        Job("projections", lambda: relay.run_projections(deps, PROJECTION_BATCH),
            PROJECTIONS_REST_SECONDS, full=PROJECTION_BATCH),
        Job("checkpoint", fold_wal, CHECKPOINT_SECONDS),
        Job("webhook-relay", lambda: webhooks.relay(deps, objects, WEBHOOK_RELAY_BATCH),
            WEBHOOK_REST_SECONDS, full=WEBHOOK_RELAY_BATCH),
        Job("webhook-sender", lambda: webhooks.deliver_due(deps, kit, WEBHOOK_SEND_BATCH),
            WEBHOOK_REST_SECONDS, full=WEBHOOK_SEND_BATCH, leased=False),
        Job("chains", rounds.run, container.settings.watch_interval_seconds),
        # In every process, but only the one running the chain job has anything to report:
        # its own lease could land in another process than the chain job's.
        Job("provider-health", report_providers, PROVIDER_HEALTH_SECONDS, leased=False),
    ]


class ChainRounds:
    """The chain job's rounds in this process, so that only the process running the chain
    job reports provider health: elsewhere the providers sit idle, and their zeros would
    overwrite the live figures."""

    def __init__(self, poll: Callable[[], Awaitable[int]]) -> None:
        self._poll = poll
        self._started = 0
        self._running = False
        self._looked_at = 0

    async def run(self) -> int:
        self._started += 1
        self._running = True
        try:
            return await self._poll()
        finally:
            self._running = False

    def ran_since_last_look(self) -> bool:
        """Whether a round started since the last call, or one is running (a round that
        waits on failing providers for long is when their health matters most)."""
        ran = self._running or self._started != self._looked_at
        self._looked_at = self._started
        return ran


async def forever(job: Job, leases: Leases, sleep: Sleep = asyncio.sleep) -> None:
    """Run `job` until cancelled, each step only while holding its lease; without the lease,
    ask again every LEASE_RETRY_SECONDS."""
    holding = False
    while True:
        if job.leased and not await leases.try_acquire(job.name):
            if holding:
                log.warning("job_lease_lost", job=job.name)
                holding = False
            await sleep(LEASE_RETRY_SECONDS)
            continue
        if job.leased and not holding:
            log.info("job_lease_acquired", job=job.name)
            holding = True
        try:
            done = await job.step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker_step_failed", worker=job.name)
            done = 0
        if done < job.full:
            await sleep(job.idle)


@dataclass
class Running:
    tasks: list[asyncio.Task[None]]
    chains: ChainAdapters
    leases: Leases

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.leases.close()  # another process takes the jobs over at once
        await self.chains.aclose()


def start(container: Container, objects: WebhookObjects, *, sleep: Sleep = asyncio.sleep,
          adapt: Adapt = lambda js: js) -> Running:
    """Start this process's job runner; `objects` renders what webhooks carry (the web
    layer's shapes); `adapt` lets a caller adapt the job list (tests record which runner ran
    what)."""
    chains = container.chains()
    leases = container.leases()
    tasks = [asyncio.create_task(forever(job, leases, sleep))
             for job in adapt(jobs(container, chains, objects))]
    return Running(tasks, chains, leases)
