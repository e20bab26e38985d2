"""/healthz says what each dependency is doing and answers 503 when payments cannot be
taken: no process runs the chain watcher, or every provider of a chain is refused by its
breaker; /readyz only asks whether this process can serve."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from krypton.app import provider_health
from krypton.app.ports import ProviderSnapshot
from krypton.bootstrap import Container
from krypton.web.app import create_app
from krypton.web.health import WATCHER_JOB


def snapshot(name: str, state: str) -> ProviderSnapshot:
    return ProviderSnapshot(name=name, host="h", state=state, success_rate=None, latency_ms=None,
                            failures=5, throttled=0, consecutive_failures=5, last_error=None,
                            last_error_age_s=None)


@pytest.fixture
async def cluster_api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """The API of a process beside `krypton worker`s (role api): jobs run elsewhere."""
    container.settings = container.settings.model_copy(update={"role": "api"})
    app = create_app(container, run_workers=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client


async def test_an_app_without_its_jobs_checks_the_database_only(api: httpx.AsyncClient) -> None:
    health = await api.get("/healthz")
    assert health.status_code == 200
    assert health.json()["checks"] == {"database": {"status": "ok"}}
    assert (await api.get("/readyz")).json()["status"] == "ok"


async def test_no_watcher_anywhere_is_503_until_one_runs(
        cluster_api: httpx.AsyncClient, container: Container) -> None:
    health = await cluster_api.get("/healthz")
    assert health.status_code == 503 and health.headers["retry-after"]
    body = health.json()
    assert body["down"] == ["watcher"] and "payments would go unseen" in body["reason"]
    # Serving still works: a load balancer keeps sending requests here.
    assert (await cluster_api.get("/readyz")).status_code == 200
    leases = container.leases()
    assert await leases.try_acquire(WATCHER_JOB)
    try:
        health = await cluster_api.get("/healthz")
        assert health.status_code == 200 and health.json()["checks"]["watcher"] == {"status": "ok"}
    finally:
        await leases.release(WATCHER_JOB)


async def test_every_provider_of_a_chain_refused_is_503(
        cluster_api: httpx.AsyncClient, container: Container) -> None:
    leases = container.leases()
    assert await leases.try_acquire(WATCHER_JOB)
    try:
        await provider_health.record(container.deps, [
            snapshot("toncenter-0", "open"), snapshot("toncenter-1", "half_open"),
            snapshot("trongrid-0", "closed"), snapshot("coingecko-0", "open")], "host:1")
        health = await cluster_api.get("/healthz")
        assert health.status_code == 200
        checks = health.json()["checks"]
        assert checks["ton_providers"] == checks["tron_providers"] == {"status": "ok"}
        assert "coingecko_providers" not in checks  # prices have fallbacks of their own

        await provider_health.record(container.deps, [snapshot("toncenter-1", "open")], "host:1")
        health = await cluster_api.get("/healthz")
        assert health.status_code == 503 and health.json()["down"] == ["ton_providers"]
    finally:
        await leases.release(WATCHER_JOB)
