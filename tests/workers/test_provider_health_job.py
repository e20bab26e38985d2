"""The provider-health job (workers/loops.py): in the process running the chain job it
reports the providers of the very chain adapters that job uses, failures included; a
process where the chain job does not run reports nothing. On both databases, against the
devnet."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator

import pytest

from krypton.adapters.chains.provider import ProviderError
from krypton.app import provider_health
from krypton.bootstrap import ChainAdapters, Container
from krypton.devnet.faults import Fault
from krypton.web.api.schemas import WebhookObjects
from krypton.workers import loops
from tests.support.clock import ManualClock

OBJECTS = WebhookObjects("http://127.0.0.1:8000", testnet=False)


@pytest.fixture
async def chains(container: Container) -> AsyncIterator[ChainAdapters]:
    adapters = container.chains()
    yield adapters
    await adapters.aclose()


def job_steps(container: Container, chains: ChainAdapters) -> dict[str, loops.Job]:
    return {job.name: job for job in loops.jobs(container, chains, OBJECTS)}


async def test_it_reports_the_chain_jobs_providers(container: Container, chains: ChainAdapters,
                                                   clock: ManualClock) -> None:
    deps = container.deps
    jobs = job_steps(container, chains)
    report = jobs["provider-health"]
    assert not report.leased and report.idle == loops.PROVIDER_HEALTH_SECONDS

    assert await report.step() == 0
    assert await provider_health.latest(deps) == []  # the chain job has not run in this process

    await jobs["chains"].step()
    await report.step()
    rows = {s.snapshot.name: s for s in await provider_health.latest(deps)}
    assert set(rows) == {"devnet-toncenter", "devnet-trongrid"}  # the devnet's TON and Tron readers
    for status in rows.values():
        snapshot = status.snapshot
        assert (snapshot.host, snapshot.state, snapshot.failures, snapshot.last_error) == (
            "devnet", "closed", 0, None)
        assert status.report.process == f"{socket.gethostname()}:{os.getpid()}"
        assert status.report.updated_at == clock.now() and not status.stale
    # The round read the platform's TON account; with no deposit address open, Tron had
    # nothing to ask yet (no traffic: no success rate).
    assert rows["devnet-toncenter"].snapshot.success_rate == 1.0
    assert rows["devnet-toncenter"].snapshot.latency_ms is not None
    assert rows["devnet-trongrid"].snapshot.success_rate is None

    # No chain round since: nothing new to say (the chain job runs elsewhere now, maybe).
    clock.advance(seconds=30)
    await report.step()
    assert {s.age_s for s in await provider_health.latest(deps)} == {30}


async def test_failures_show_with_their_error_and_no_url(container: Container, chains: ChainAdapters,
                                                         clock: ManualClock) -> None:
    assert container.devnet is not None
    jobs = job_steps(container, chains)
    # Every attempt of the round's first TON Center call fails: the round gives up.
    container.devnet.faults.inject("toncenter", Fault("status", status=500), count=4)
    with pytest.raises(ProviderError):
        await jobs["chains"].step()
    await jobs["provider-health"].step()
    rows = {s.snapshot.name: s.snapshot for s in await provider_health.latest(container.deps)}
    ton = rows["devnet-toncenter"]
    assert (ton.state, ton.failures, ton.consecutive_failures, ton.success_rate) == ("closed", 4, 4, 0.0)
    assert ton.last_error is not None and "HTTP 500" in ton.last_error
    assert "http://" not in ton.last_error and ton.last_error_age_s == 0
    assert rows["devnet-trongrid"].failures == 0  # the round stopped before Tron


async def test_a_process_not_running_the_chain_job_reports_nothing(container: Container,
                                                                   chains: ChainAdapters) -> None:
    jobs = job_steps(container, chains)
    for _ in range(3):
        await jobs["provider-health"].step()
    assert await provider_health.latest(container.deps) == []
