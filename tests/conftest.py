"""Shared fixtures. Storage and API tests run once per database: SQLite and a real
PostgreSQL server started for the run (tests/support/servers.py). In CI (CI=true) a
PostgreSQL that cannot start fails the run; elsewhere its tests are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from krypton.adapters.db import migrate
from krypton.adapters.db.database import Database
from krypton.app import merchants
from krypton.bootstrap import Container, build
from krypton.config import Settings
from tests.support.clock import ManualClock
from tests.support.servers import NatsServer, PostgresServer, RedisServer, running

# Fixtures of the fake Bot API (`fake`, `fake_url`, `bot`): a module overrides them by name.
pytest_plugins = ("tests.support.fake_bot",)

# No scheduled backups in the servers tests start (they would each back up at once): the
# backup tests ask for them.
os.environ.setdefault("KRYPTON_BACKUP_INTERVAL", "0")
DATABASES = os.environ.get("KRYPTON_TEST_DATABASES", "sqlite,postgresql").split(",")
_names = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    # The deterministic simulator (tests/simulation): replay one seed, or run more of them.
    parser.addoption("--sim-seed", type=int, default=None,
                     help="replay this simulation seed exactly (tests/simulation)")
    parser.addoption("--sim-seeds", type=int, default=None,
                     help="how many simulation seeds to run per database (default 200 on "
                          "SQLite, 50 on PostgreSQL)")
    parser.addoption("--sim-first-seed", type=int, default=0,
                     help="the first simulation seed of the run (a soak starts elsewhere)")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with running(PostgresServer(tmp_path_factory.mktemp("pg")), "PostgreSQL") as server:
        # Migrate once into a template; each test clones it (much faster than migrating).
        server.create_database("krypton_template")
        db = Database.open(server.url_for("krypton_template"))

        async def prepare() -> None:
            await migrate.upgrade(db)
            await db.dispose()
        asyncio.run(prepare())
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running(RedisServer(tmp_path_factory.mktemp("redis")), "redis-server") as server:
        yield server


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    with running(NatsServer(tmp_path / "nats"), "nats-server") as server:
        yield server


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'krypton.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"t{os.getpid()}_{next(_names)}", template="krypton_template")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=db_url, api_key_cache_seconds=0,
                    rate_limit_global="100000/second", rate_limit_invoice_create="100000/hour",
                    rate_limit_reads="100000/hour", rate_limit_public="100000/minute")


@pytest.fixture
async def container(settings: Settings, clock: ManualClock) -> AsyncIterator[Container]:
    c = await build(settings, clock=clock)
    yield c
    await c.close()


@pytest.fixture
async def merchant(container: Container) -> merchants.IssuedKey:
    _, key = await merchants.create_merchant(container.deps, name="Test shop")
    return key


@pytest.fixture
async def api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    from krypton.web.app import create_app

    app = create_app(container, run_workers=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def auth(key: merchants.IssuedKey | str) -> dict[str, str]:
    secret = key if isinstance(key, str) else key.secret
    return {"Authorization": f"Bearer {secret}"}
