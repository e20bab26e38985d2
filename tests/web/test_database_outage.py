"""A database that fails while the server runs: 503 with Retry-After (not 500), /healthz says
what is down, and once PostgreSQL is back the next request is served (a real PostgreSQL
server of this test's own, killed and started again)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from krypton.app import merchants
from krypton.bootstrap import build
from krypton.config import Settings
from krypton.web.app import create_app
from tests.conftest import auth
from tests.support.clock import ManualClock
from tests.support.servers import PostgresServer, running
from tests.web.helpers import API, error_of


@pytest.fixture
def own_pg(tmp_path: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test alone: the session's is shared and must stay up."""
    with running(PostgresServer(tmp_path / "pg"), "PostgreSQL") as server:
        yield server


@pytest.fixture
async def outage_api(own_pg: PostgresServer, tmp_path: Path
                     ) -> AsyncIterator[tuple[httpx.AsyncClient, merchants.IssuedKey]]:
    url = own_pg.create_database(f"outage_{os.getpid()}")
    container = await build(Settings(data_dir=tmp_path, database_url=url, api_key_cache_seconds=0),
                            clock=ManualClock())
    try:
        _, key = await merchants.create_merchant(container.deps, name="Shop")
        app = create_app(container, run_workers=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as client:
            yield client, key
    finally:
        await container.close()


async def test_postgres_down_is_503_and_back_is_served_at_once(
        own_pg: PostgresServer, outage_api: tuple[httpx.AsyncClient, merchants.IssuedKey]) -> None:
    api, key = outage_api
    # Warm the pool: these connections die with the server.
    for _ in range(3):
        assert (await api.get(f"{API}/invoices", headers=auth(key))).status_code == 200
    assert (await api.get("/healthz")).status_code == 200

    own_pg.kill()
    down = await api.get(f"{API}/invoices", headers=auth(key))
    error = error_of(down, 503, "database_unavailable")
    assert down.headers["retry-after"] == "5" and "Retry" in error["message"]
    created = await api.post(f"{API}/invoices", json={"amount": "1", "currency": "TON"},
                             headers=auth(key))
    error_of(created, 503, "database_unavailable")
    health = await api.get("/healthz")
    assert health.status_code == 503 and health.headers["retry-after"] == "5"
    assert health.json()["status"] == "unavailable" and health.json()["down"] == ["database"]

    own_pg.revive()
    for _ in range(3):
        assert (await api.get(f"{API}/invoices", headers=auth(key))).status_code == 200
    created = await api.post(f"{API}/invoices", json={"amount": "1", "currency": "TON"},
                             headers=auth(key))
    assert created.status_code == 201, created.text
    assert (await api.get("/healthz")).status_code == 200


async def test_after_a_restart_unseen_the_first_request_is_served(
        own_pg: PostgresServer, outage_api: tuple[httpx.AsyncClient, merchants.IssuedKey]) -> None:
    """PostgreSQL restarts between two requests: every pooled connection is dead, and nothing
    has told the pool. Each is checked before use and replaced, so the first request after the
    restart is served (before: each dead connection failed one request first)."""
    api, key = outage_api
    for _ in range(3):
        assert (await api.get(f"{API}/invoices", headers=auth(key))).status_code == 200
    own_pg.kill()
    own_pg.revive()
    for _ in range(3):
        response = await api.get(f"{API}/invoices", headers=auth(key))
        assert response.status_code == 200, response.text


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB file system of its own (a tmpfs), to fill while the server runs."""
    target = tmp_path / "disk"
    target.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(target)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


async def test_a_full_disk_under_sqlite_is_503_not_500(small_disk: Path) -> None:
    container = await build(Settings(data_dir=small_disk, api_key_cache_seconds=0),
                            clock=ManualClock())
    try:
        _, key = await merchants.create_merchant(container.deps, name="Shop")
        app = create_app(container, run_workers=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as api:
            body = {"amount": "1", "currency": "TON", "metadata": {"pad": "x" * 3000}}
            assert (await api.post(f"{API}/invoices", json=body, headers=auth(key))).status_code == 201
            try:  # fill the disk to its last block
                with (small_disk / "filler").open("wb") as filler:
                    while True:
                        filler.write(b"\0" * 65_536)
                        filler.flush()
            except OSError:
                pass
            statuses = set()
            for _ in range(20):  # the log may have room for a few more pages first
                response = await api.post(f"{API}/invoices", json=body, headers=auth(key))
                statuses.add(response.status_code)
                if response.status_code != 201:
                    error_of(response, 503, "database_unavailable")
                    assert response.headers["retry-after"] == "5"
                    break
            assert 503 in statuses, statuses
    finally:
        await container.close()
