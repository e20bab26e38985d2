"""The background jobs, as in-process loops: which jobs there are, how often each runs, and
that each runs only while this process holds its lease (exactly one process cluster-wide
runs a job; the embedded default runs them all beside the API in one process)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sentry_sdk
import structlog

from krypton.app import (
    backups,
    export,
    fee_sweeps,
    fulfilment,
    invoices,
    merchant_bot,
    payouts,
    provider_health,
    refunds,
    relay,
    retention,
    stars_hold,
    stars_reconcile,
    webhooks,
)
from krypton.app.clock_skew import SkewWatch
from krypton.app.ports import Leases, WebhookObjects
from krypton.bootstrap import ChainAdapters, Container
from krypton.workers.watch import ChainWatch, HeadLag

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
# The merchant bot: events become messages and due messages are sent within a second or so.
TELEGRAM_RELAY_BATCH = 500
TELEGRAM_SEND_BATCH = 100
TELEGRAM_REST_SECONDS = 0.5
# Stars money: held Stars released once their hold passed (checked every few minutes; a
# day-scale hold needs no finer grain), refunds left pending by a crash finished, and
# Telegram's history reconciled with the ledger.
STARS_RELEASE_SECONDS = 300.0
STARS_REFUNDS_SECONDS = 30.0
STARS_RECONCILE_SECONDS = 6 * 3600.0
# How often the chain job's process reports its providers' health (stale after 60 s).
PROVIDER_HEALTH_SECONDS = 5.0
# /metrics: the event log's business series within a second or so, every consumer's lag and
# every chain's head lag a few times a minute (a head costs one provider call).
METRICS_BATCH = 500
METRICS_REST_SECONDS = 1.0
CONSUMER_LAG_SECONDS = 5.0
HEAD_LAG_SECONDS = 15.0
# Payouts: waiting ones are looked at every second (sent when a batch fills or the batch
# interval passed); sent ones asked of the signer every few seconds; fee thresholds each minute.
PAYOUT_CHECK_SECONDS = 1.0
PAYOUT_TRACK_SECONDS = 5.0
FEE_SWEEP_SECONDS = 60.0
# Chain refunds: the signer's status asked every few seconds (a TON transfer is final in a
# few seconds), expired claim links failed on the same round.
CHAIN_REFUNDS_SECONDS = 5.0
# The Stars shop: a continuous pool (app/fulfilment.Pool) picks paid orders up within a
# fraction of a second; the lease is asked again every SHOP_SECONDS (each step's length).
SHOP_SECONDS = 1.0
# How often the backup job looks whether a backup is due (they are KRYPTON_BACKUP_INTERVAL
# apart, judged by the newest backup's own time, so a restart does not reset the clock).
BACKUP_CHECK_SECONDS = 60.0
RETENTION_SECONDS = 600.0  # each run deletes a bounded batch: a backlog drains over a few
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
    # Called when the lease is lost and when the runner stops: a job whose step leaves work
    # running between steps (the shop's pool) ends it, as the next holder may start it.
    stop: Callable[[], Awaitable[None]] | None = None


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
        *telegram_jobs(container),
        *stars_jobs(container),
        *chain_refund_jobs(container),
        *backup_jobs(container),
        *retention_jobs(container),
        *payout_jobs(container),
        *shop_jobs(container),
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
        Job("head-lag", HeadLag(watch, chains.heads, skew=SkewWatch(timedelta(
            seconds=container.settings.clock_skew_limit_seconds))).step, HEAD_LAG_SECONDS,
            leased=False),
        Job("metrics", container.business_metrics().step, METRICS_REST_SECONDS,
            full=METRICS_BATCH),
        Job("consumer-lag", container.consumer_lag, CONSUMER_LAG_SECONDS),
    ]


def telegram_jobs(container: Container) -> list[Job]:
    """The merchant bot's relay and sender, and the job bringing updates in (the poller in
    polling mode, the webhook's registration in webhook mode), each under its lease."""
    kit = container.merchant_bot()
    if kit is None:
        return []
    deps = container.deps
    intake = container.telegram_intake()
    return [
        Job("telegram-relay", lambda: merchant_bot.relay(deps, kit, TELEGRAM_RELAY_BATCH),
            TELEGRAM_REST_SECONDS, full=TELEGRAM_RELAY_BATCH),
        Job("telegram-sender", lambda: merchant_bot.send_due(deps, kit, TELEGRAM_SEND_BATCH),
            TELEGRAM_REST_SECONDS, full=TELEGRAM_SEND_BATCH),
        *([] if intake is None else [Job(intake.name, intake.step, intake.idle)]),
    ]


def stars_jobs(container: Container) -> list[Job]:
    """Releasing held Stars, finishing pending refunds and reconciling, each under its lease."""
    deps = container.deps
    books = container.stars_books()
    hold = container.stars_hold()
    jobs_ = [Job("stars-release", lambda: stars_hold.release_held(deps, books, hold),
                 STARS_RELEASE_SECONDS, full=200)]
    bot = container.stars_bot()
    if bot is None:
        return jobs_
    kit = container.refund_kit()

    async def reconcile() -> int:
        await stars_reconcile.reconcile(deps, books, bot)
        return 0  # always rest between runs

    return [*jobs_,
            Job("stars-refunds", lambda: refunds.resolve_pending(deps, kit), STARS_REFUNDS_SECONDS,
                full=50),
            Job("stars-reconcile", reconcile, STARS_RECONCILE_SECONDS)]


def payout_jobs(container: Container) -> list[Job]:
    """Payouts to the signer in batches, their tracking, and the fee sweeps, each under its
    lease. Only where a signer is reachable (KRYPTON_SIGNER_SOCKET, or devnet's default
    socket): elsewhere nothing could be sent, and Stars sweeps, which need no signer, still
    run."""
    deps = container.deps
    sweeps = container.sweep_kit()
    kit = container.payout_kit()
    sweep = Job("fee-sweeps", lambda: fee_sweeps.sweep_due(deps, sweeps), FEE_SWEEP_SECONDS)
    if kit.signer is None:
        return [sweep]
    batching = container.payout_batching()
    last_sent: list[datetime] = []

    async def dispatch() -> int:
        # Sent when a batch is full, or payout_batch_seconds after the previous one.
        sent = await payouts.dispatch_due(deps, kit, batching, last_sent[0] if last_sent else None)
        if sent:
            last_sent[:] = [deps.clock.now()]
        return 0  # always rest a little: the batch interval is the pace

    return [sweep,
            Job("payouts", dispatch, PAYOUT_CHECK_SECONDS),
            Job("payout-tracking", lambda: payouts.track(deps, kit), PAYOUT_TRACK_SECONDS)]


def shop_jobs(container: Container) -> list[Job]:
    """The Stars shop's orchestrator (app/fulfilment.py) under its lease, where the shop is on:
    paid invoices make orders paid, then suppliers are paid and followed until delivered."""
    kit = container.shop()
    if kit is None:
        return []
    # A continuous pool: each step runs it for a slice and it rests on its own (full=0: the
    # runner never rests between steps); the orders in flight are cancelled with the lease.
    pool = fulfilment.Pool(container.deps, kit, slice_seconds=SHOP_SECONDS)
    return [Job("shop", pool.step, SHOP_SECONDS, full=0, stop=pool.stop)]


def chain_refund_jobs(container: Container) -> list[Job]:
    """Pending chain refunds moved on under their lease: expired claims failed, claimed ones
    sent through the signer, sent ones settled from the signer's status."""
    deps = container.deps
    kit = container.refund_kit()
    return [Job("chain-refunds", lambda: refunds.resolve_chain(deps, kit), CHAIN_REFUNDS_SECONDS,
                full=50)]


def backup_jobs(container: Container) -> list[Job]:
    """The scheduled backup (KRYPTON_BACKUP_INTERVAL, 0: none), under its lease."""
    settings = container.settings
    if settings.backup_interval == 0:
        return []
    store = container.backups()
    schedule = backups.Schedule(timedelta(seconds=settings.backup_interval), settings.backup_keep)

    async def back_up() -> int:
        await backups.run_due(store, container.deps.clock.now(), schedule)
        return 0  # always rest between looks

    return [Job("backup", back_up, BACKUP_CHECK_SECONDS)]


def retention_jobs(container: Container) -> list[Job]:
    """Pruning of finished bookkeeping (KRYPTON_RETENTION_DAYS, 0: none), under its lease."""
    configured = container.retention()
    if configured is None:
        return []
    pruner, policy = configured

    async def prune() -> int:
        deleted = await retention.prune(container.deps, pruner, policy)
        if any(deleted.values()):
            log.info("retention.pruned", **deleted)
        return 0  # always rest between runs

    return [Job("retention", prune, RETENTION_SECONDS)]


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
    try:
        await _forever(job, leases, sleep)
    finally:
        if job.stop is not None:
            await job.stop()


async def _forever(job: Job, leases: Leases, sleep: Sleep) -> None:
    holding = False
    while True:
        if job.leased and not await leases.try_acquire(job.name):
            if holding:
                log.warning("job_lease_lost", job=job.name)
                holding = False
                if job.stop is not None:
                    await job.stop()
            await sleep(LEASE_RETRY_SECONDS)
            continue
        if job.leased and not holding:
            log.info("job_lease_acquired", job=job.name)
            holding = True
        try:
            done = await job.step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("worker_step_failed", worker=job.name)
            sentry_sdk.capture_exception(exc)  # nothing without KRYPTON_SENTRY_DSN
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
