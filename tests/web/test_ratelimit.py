"""Rate limits per key (create and read tiers), per client IP (public) and global; counters in
process memory or shared through a real Redis server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from typer.testing import CliRunner

from krypton.adapters.db import tables
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.cli import app as cli_app
from krypton.config import Settings
from krypton.web.app import create_app
from tests.conftest import auth
from tests.support.servers import RedisServer, running
from tests.web.helpers import API, count_rows, create_invoice, error_of

ROOMY = {"rate_limit_global": "100000/hour", "rate_limit_invoice_create": "100000/hour",
         "rate_limit_reads": "100000/hour", "rate_limit_public": "100000/hour"}
BODY = {"amount": "1", "currency": "TON"}


async def limited_app(container: Container, *, fresh: bool = True, **limits: str) -> FastAPI:
    """A separate app instance over the same database, with its own limits (hour windows, so a
    window boundary never falls inside a test)."""
    settings: Settings = container.settings.model_copy(update={**ROOMY, **limits})
    app = create_app(Container(settings, container.db, container.deps), run_workers=False)
    if fresh:
        await app.state.limiter.reset()  # Redis outlives a test; memory starts empty anyway
    return app


@asynccontextmanager
async def client_for(app: FastAPI, ip: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@asynccontextmanager
async def limited_api(container: Container, *, fresh: bool = True,
                      **limits: str) -> AsyncIterator[httpx.AsyncClient]:
    app = await limited_app(container, fresh=fresh, **limits)
    try:
        async with client_for(app) as client:
            yield client
    finally:
        await app.state.limiter.close()  # what the app's shutdown does (ASGITransport skips lifespan)


def assert_rate_limited(response: httpx.Response) -> int:
    error = error_of(response, 429, "rate_limited")
    retry = response.headers["Retry-After"]
    assert retry.isdigit(), retry
    assert 1 <= int(retry) <= 3600
    assert f"retry after {retry} seconds" in error["message"]
    return int(retry)


async def test_fourth_create_in_the_window_is_429_and_writes_nothing(
        container: Container, merchant: IssuedKey) -> None:
    async with limited_api(container, rate_limit_invoice_create="3/hour") as api:
        for _ in range(3):
            await create_invoice(api, merchant)
        response = await api.post(f"{API}/invoices", json=BODY, headers=auth(merchant))
        assert_rate_limited(response)
        assert await count_rows(container, tables.invoices) == 3
        # Reads are a separate tier and still work.
        listed = await api.get(f"{API}/invoices", headers=auth(merchant))
        assert listed.status_code == 200 and len(listed.json()["data"]) == 3


async def test_create_limit_is_per_key(container: Container, merchant: IssuedKey,
                                       other: IssuedKey) -> None:
    async with limited_api(container, rate_limit_invoice_create="1/hour") as api:
        await create_invoice(api, merchant)
        assert_rate_limited(await api.post(f"{API}/invoices", json=BODY, headers=auth(merchant)))
        await create_invoice(api, other)


async def test_reads_limit(container: Container, merchant: IssuedKey) -> None:
    async with limited_api(container, rate_limit_reads="2/hour") as api:
        for path in ("/invoices", "/balances"):
            assert (await api.get(API + path, headers=auth(merchant))).status_code == 200
        assert_rate_limited(await api.get(f"{API}/events", headers=auth(merchant)))
        # The create tier is separate.
        await create_invoice(api, merchant)


async def test_rejected_requests_do_not_use_up_the_limit(container: Container, merchant: IssuedKey,
                                                         other: IssuedKey) -> None:
    async with limited_api(container, rate_limit_reads="1/hour") as api:
        for _ in range(3):
            error_of(await api.get(f"{API}/invoices", headers=auth("kr_bogus")), 401, "unauthorized")
        assert (await api.get(f"{API}/invoices", headers=auth(merchant))).status_code == 200


async def test_public_limit_is_per_client_ip(container: Container, merchant: IssuedKey) -> None:
    app = await limited_app(container, rate_limit_public="2/hour")
    async with client_for(app, "10.0.0.1") as payer, client_for(app, "10.0.0.2") as another_payer:
        invoice = await create_invoice(payer, merchant)
        url = f"{API}/public/invoice/{invoice['id']}"
        assert [(await payer.get(url)).status_code for _ in range(2)] == [200, 200]
        assert_rate_limited(await payer.get(url))
        assert (await another_payer.get(url)).status_code == 200
        # The merchant's key is not limited by the payer's IP budget.
        assert (await payer.get(f"{API}/invoices/{invoice['id']}", headers=auth(merchant))).status_code == 200


async def test_global_limit_covers_every_key_and_tier(container: Container, merchant: IssuedKey,
                                                      other: IssuedKey) -> None:
    async with limited_api(container, rate_limit_global="3/hour") as api:
        await create_invoice(api, merchant)
        assert (await api.get(f"{API}/invoices", headers=auth(merchant))).status_code == 200
        assert (await api.get(f"{API}/balances", headers=auth(other))).status_code == 200
        assert_rate_limited(await api.get(f"{API}/events", headers=auth(other)))
        assert_rate_limited(await api.post(f"{API}/invoices", json=BODY, headers=auth(merchant)))
        assert await count_rows(container, tables.invoices) == 1


@pytest.fixture
def redis_settings(container: Container, redis_server: RedisServer) -> Container:
    """The test's container, but with rate-limit counters in a real Redis server."""
    settings = container.settings.model_copy(update={"redis_url": redis_server.url})
    return Container(settings, container.db, container.deps)


async def test_redis_create_limit(redis_settings: Container, merchant: IssuedKey) -> None:
    async with limited_api(redis_settings, rate_limit_invoice_create="3/hour") as api:
        for _ in range(3):
            await create_invoice(api, merchant)
        assert_rate_limited(await api.post(f"{API}/invoices", json=BODY, headers=auth(merchant)))
        assert (await api.get(f"{API}/invoices", headers=auth(merchant))).status_code == 200
        assert await count_rows(redis_settings, tables.invoices) == 3


async def test_redis_reads_public_and_global_limits(redis_settings: Container,
                                                    merchant: IssuedKey) -> None:
    async with limited_api(redis_settings, rate_limit_reads="1/hour") as api:
        invoice = await create_invoice(api, merchant)
        assert (await api.get(f"{API}/invoices", headers=auth(merchant))).status_code == 200
        assert_rate_limited(await api.get(f"{API}/invoices", headers=auth(merchant)))
    async with limited_api(redis_settings, rate_limit_public="1/hour") as api:
        assert (await api.get(f"{API}/public/invoice/{invoice['id']}")).status_code == 200
        assert_rate_limited(await api.get(f"{API}/public/invoice/{invoice['id']}"))
    async with limited_api(redis_settings, rate_limit_global="2/hour") as api:
        for _ in range(2):
            assert (await api.get(f"{API}/balances", headers=auth(merchant))).status_code == 200
        assert_rate_limited(await api.get(f"{API}/balances", headers=auth(merchant)))


async def test_two_app_instances_share_counters_through_redis(redis_settings: Container,
                                                              merchant: IssuedKey) -> None:
    async with limited_api(redis_settings, rate_limit_invoice_create="3/hour") as one, \
            limited_api(redis_settings, rate_limit_invoice_create="3/hour", fresh=False) as two:
        await create_invoice(one, merchant)
        await create_invoice(two, merchant)
        await create_invoice(one, merchant)
        assert_rate_limited(await two.post(f"{API}/invoices", json=BODY, headers=auth(merchant)))
        assert_rate_limited(await one.post(f"{API}/invoices", json=BODY, headers=auth(merchant)))
    assert await count_rows(redis_settings, tables.invoices) == 3


async def test_instances_with_memory_counters_do_not_share(container: Container,
                                                           merchant: IssuedKey) -> None:
    # The contrast to the Redis case: without Redis each process counts on its own.
    async with limited_api(container, rate_limit_invoice_create="1/hour") as one, \
            limited_api(container, rate_limit_invoice_create="1/hour") as two:
        await create_invoice(one, merchant)
        await create_invoice(two, merchant)
        assert_rate_limited(await one.post(f"{API}/invoices", json=BODY, headers=auth(merchant)))


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisServer]:
    """A real, one-node Redis Cluster (every slot on one node)."""
    with running(RedisServer(tmp_path / "redis-cluster", cluster=True), "redis-server") as server:
        yield server


async def test_two_app_instances_share_counters_through_a_redis_cluster(
        container: Container, merchant: IssuedKey, redis_cluster: RedisServer) -> None:
    assert redis_cluster.url.startswith("redis+cluster://")
    settings = container.settings.model_copy(update={"redis_url": redis_cluster.url})
    clustered = Container(settings, container.db, container.deps)
    async with limited_api(clustered, rate_limit_invoice_create="2/hour") as one, \
            limited_api(clustered, rate_limit_invoice_create="2/hour", fresh=False) as two:
        await create_invoice(one, merchant)
        await create_invoice(two, merchant)
        assert_rate_limited(await one.post(f"{API}/invoices", json=BODY, headers=auth(merchant)))
    assert await count_rows(container, tables.invoices) == 2


@pytest.mark.parametrize("url", ["redis+sentinel://127.0.0.1:26379/mymaster", "http://cache:6379",
                                 "unix:///run/redis.sock"])
def test_an_unsupported_redis_url_is_refused_with_a_sentence(url: str) -> None:
    with pytest.raises(ValidationError, match="use a redis://, rediss://, redis\\+unix:// or "
                                              "redis\\+cluster:// URL"):
        Settings(redis_url=url)


def test_serve_with_a_sentinel_url_is_exit_2_with_a_sentence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KRYPTON_DATABASE_URL", raising=False)
    monkeypatch.setenv("KRYPTON_REDIS_URL", "redis+sentinel://127.0.0.1:26379/mymaster")
    result = CliRunner().invoke(cli_app, ["serve"])
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 2, text
    assert "KRYPTON_REDIS_URL" in text and "redis+cluster://" in text and "Traceback" not in text
