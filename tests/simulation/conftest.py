"""Seeds and databases for the simulator: `--sim-seed N` replays one seed, `--sim-seeds
COUNT` runs COUNT seeds per database (default 200 on SQLite, 50 on PostgreSQL) from
`--sim-first-seed`. A world's database is a copy of one migrated template (SQLite) or a
clone of the migrated template database (PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from krypton.adapters.db import migrate
from krypton.adapters.db.database import Database

DEFAULT_SEEDS = {"sqlite": 200, "postgresql": 50}
NewDatabase = Callable[[Path], tuple[str, Callable[[], None]]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sim_seed" not in metafunc.fixturenames:
        return
    config = metafunc.config
    databases = os.environ.get("KRYPTON_TEST_DATABASES", "sqlite,postgresql").split(",")
    replay = config.getoption("--sim-seed")
    count, first = config.getoption("--sim-seeds"), config.getoption("--sim-first-seed")
    cases = []
    for database in databases:
        seeds = [replay] if replay is not None else range(
            first, first + (count if count is not None else DEFAULT_SEEDS.get(database, 50)))
        cases += [pytest.param(database, seed, id=f"{database}-{seed}") for seed in seeds]
    metafunc.parametrize(("sim_database", "sim_seed"), cases)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim-template") / "template.sqlite3"
    db = Database.open(f"sqlite:///{path}")

    async def prepare() -> None:
        await migrate.upgrade(db)
        await db.dispose()
    asyncio.run(prepare())
    return path


@pytest.fixture
def new_database(request: pytest.FixtureRequest, sim_database: str) -> NewDatabase:
    if sim_database == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")

        def sqlite(tmp: Path) -> tuple[str, Callable[[], None]]:
            shutil.copyfile(template, tmp / "krypton.sqlite3")
            return f"sqlite:///{tmp / 'krypton.sqlite3'}", lambda: None
        return sqlite
    from tests.support.servers import PostgresServer

    server: PostgresServer = request.getfixturevalue("pg_server")
    names = itertools.count()

    def postgresql(_tmp: Path) -> tuple[str, Callable[[], None]]:
        name = f"sim{os.getpid()}_{next(names)}"
        return (server.create_database(name, template="krypton_template"),
                lambda: server.drop_database(name))
    return postgresql
