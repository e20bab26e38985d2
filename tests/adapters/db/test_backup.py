"""Backups (adapters/db/backup.py): verified before they are kept, private, listed and pruned
by the time in their names, and restored only where nothing would be overwritten."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from krypton.adapters.db import backup as backups
from krypton.adapters.db import migrate
from krypton.adapters.db import tables as t
from krypton.adapters.db.database import Database
from krypton.app import merchants
from krypton.bootstrap import Container
from krypton.config import Settings
from tests.support.servers import PostgresServer

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def store(container: Container, folder: Path) -> backups.Store:
    return backups.Store(container.db, folder, container.settings.data_dir / "secret.key")


async def merchant_names(url: str) -> list[str]:
    db = Database.open(url)
    try:
        async with db.reader.connect() as conn:
            return sorted(r[0] for r in await conn.execute(sa.select(t.merchants.c.name)))
    finally:
        await db.dispose()


async def nothing_at(url: str) -> bool:
    if url.startswith("sqlite"):
        return not backups.sqlite_path(url).exists()
    db = Database.open(url)
    try:
        return await backups.table_names(db) == []
    finally:
        await db.dispose()


def empty_target(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL where nothing is yet: a new SQLite file, or a new empty PostgreSQL database."""
    if settings.db_url.startswith("sqlite"):
        (tmp_path / "restored").mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{tmp_path / 'restored' / 'krypton.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"r{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}")


async def test_a_backup_restores_into_an_empty_database(
        container: Container, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    await merchants.create_merchant(container.deps, name="Before")
    container.secret_keys()  # the key file exists from here on
    ticks: list[tuple[int, int]] = []
    made = await store(container, tmp_path / "b").make(NOW, lambda d, n: ticks.append((d, n)))
    await merchants.create_merchant(container.deps, name="After")

    assert made.name == "krypton-20261207T060000Z" + backups.SUFFIX[made.kind]
    assert made.kind == ("sqlite" if container.db.dialect == "sqlite" else "postgresql")
    assert made.key is not None and made.key.read_bytes() == (tmp_path / "secret.key").read_bytes()
    for path in (made.path, made.key):
        assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o700
    assert ticks and ticks[-1][0] == ticks[-1][1] > 0  # the progress reached its total
    assert [p.name for p in (tmp_path / "b").iterdir() if p.name.endswith(backups.PARTIAL)] == []

    url = empty_target(container.settings, tmp_path, request)
    key = tmp_path / "restored" / "secret.key"
    summary = await backups.restore(url, made.path, key_target=key)
    assert await merchant_names(url) == ["Before"]
    assert summary.counts["merchants"] == 1 and summary.balanced and summary.revision
    assert key.read_bytes() == made.key.read_bytes() and key.stat().st_mode & 0o777 == 0o600

    # Again onto the restored one: refused, unless forced.
    with pytest.raises(backups.BackupError, match="--force"):
        await backups.restore(url, made.path, key_target=key)
    await merchants.create_merchant(container.deps, name="Later")
    newer = await store(container, tmp_path / "b").make(NOW)
    assert newer.name == "krypton-20261207T060000Z-2" + backups.SUFFIX[made.kind]  # same second
    await backups.restore(url, newer.path, key_target=key, force=True)
    assert await merchant_names(url) == ["After", "Before", "Later"]


async def test_a_backup_from_an_older_version_is_migrated_on_restore(
        container: Container, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    head = await migrate.current(container.db)
    older_url = empty_target(container.settings, tmp_path / "older", request)
    older = Database.open(older_url)
    try:
        await migrate.upgrade(older, "0010")
        made = await backups.Store(older, tmp_path / "b", None).make(NOW)
    finally:
        await older.dispose()
    summary = await backups.restore(empty_target(container.settings, tmp_path, request), made.path,
                                    key_target=None)
    assert summary.revision == head != "0010"


async def test_another_key_is_not_replaced_without_force(container: Container, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    container.secret_keys()
    made = await store(container, tmp_path / "b").make(NOW)
    url = empty_target(container.settings, tmp_path, request)
    key = tmp_path / "elsewhere.key"
    key.write_text("another key")
    with pytest.raises(backups.BackupError, match="another secret key"):
        await backups.restore(url, made.path, key_target=key)
    assert key.read_text() == "another key"
    assert await nothing_at(url)


async def test_a_backup_of_the_other_kind_or_no_backup_is_refused(container: Container,
                                                                  tmp_path: Path) -> None:
    other = "pgdump" if container.db.dialect == "sqlite" else "sqlite3"
    wrong = tmp_path / f"krypton-20261207T060000Z.{other}"
    wrong.write_bytes(b"x")
    with pytest.raises(backups.BackupError, match="configured database is"):
        await backups.restore(container.settings.db_url, wrong, key_target=None)
    with pytest.raises(backups.BackupError, match="no backup at"):
        await backups.restore(container.settings.db_url, tmp_path / "missing.sqlite3", key_target=None)
    with pytest.raises(backups.BackupError, match="not a Krypton backup"):
        backups.kind_of(tmp_path / "dump.sql")


async def test_a_garbled_dump_is_refused_before_the_database_is_touched(
        container: Container, tmp_path: Path) -> None:
    if container.db.dialect == "sqlite":
        pytest.skip("PostgreSQL dumps")
    await merchants.create_merchant(container.deps, name="Kept")
    garbled = tmp_path / "krypton-20261207T060000Z.pgdump"
    garbled.write_bytes(b"PGDMP" + os.urandom(200))
    with pytest.raises(backups.BackupError, match="not a readable pg_dump archive"):
        await backups.restore(container.settings.db_url, garbled, key_target=None, force=True)
    assert await merchant_names(container.settings.db_url) == ["Kept"]


def test_pg_target_keeps_the_password_out_of_arguments() -> None:
    target = backups.PgTarget.from_url("postgresql+asyncpg://kr:s3cret@db.internal:5433/pay?ssl=require")
    assert "s3cret" not in " ".join(target.args()) and "s3cret" not in repr(target)
    env = target.env()
    assert (env["PGPASSWORD"], env["PGSSLMODE"]) == ("s3cret", "require")
    assert target.args()[:4] == ["-h", "db.internal", "-p", "5433"]


# ------------------------------------------------------------------ SQLite specifics


def sqlite_db(path: Path, rows: int) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE alembic_version (version_num TEXT)")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("CREATE INDEX ix_items_body ON items (body)")
    conn.executemany("INSERT INTO items (body) VALUES (?)", [(f"item {n:06d}" * 20,) for n in range(rows)])
    conn.commit()
    conn.close()
    return path


def test_the_copy_is_one_snapshot_while_another_connection_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = sqlite_db(tmp_path / "live.sqlite3", 500)
    monkeypatch.setattr(backups, "PAGES_PER_STEP", 5)  # many steps, a write between two
    writer = sqlite3.connect(source, timeout=5)
    ticks: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        ticks.append((done, total))
        if len(ticks) == 2:
            writer.execute("INSERT INTO items (body) VALUES ('written during the backup')")
            writer.commit()
    made = backups.backup_sqlite(source, tmp_path / "b", NOW, key_file=None, progress=progress)
    writer.close()
    # Without the pinned snapshot the write would restart the copy (done would drop back).
    assert [d for d, _ in ticks] == sorted(d for d, _ in ticks)
    copy = sqlite3.connect(made.path)
    assert copy.execute("SELECT count(*) FROM items").fetchone() == (500,)
    assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file
    copy.close()
    assert sqlite3.connect(source).execute("SELECT count(*) FROM items").fetchone() == (501,)


def test_a_copy_failing_the_integrity_check_is_deleted(tmp_path: Path) -> None:
    source = sqlite_db(tmp_path / "live.sqlite3", 2000)
    conn = sqlite3.connect(source)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'ix_items_body'").fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with source.open("r+b") as f:  # scribble over the index's root page
        f.seek((root - 1) * page + 100)
        f.write(os.urandom(page - 200))
    with pytest.raises(backups.BackupError, match="nothing was kept"):
        backups.backup_sqlite(source, tmp_path / "b", NOW, key_file=None)
    assert list((tmp_path / "b").iterdir()) == []


def test_a_sqlite_file_that_is_not_krypton_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "krypton-20261207T060000Z.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
    with pytest.raises(backups.BackupError, match="not a Krypton database"):
        backups.restore_sqlite(other, tmp_path / "data" / "krypton.sqlite3", key_target=None)
    assert not (tmp_path / "data" / "krypton.sqlite3").exists()


def test_prune_keeps_the_newest_by_the_time_in_the_name(tmp_path: Path) -> None:
    source = sqlite_db(tmp_path / "live.sqlite3", 10)
    key = tmp_path / "secret.key"
    key.write_text("k")
    folder = tmp_path / "b"
    made = [backups.backup_sqlite(source, folder, NOW + timedelta(hours=6 * n), key_file=key)
            for n in (2, 0, 3, 1)]
    (folder / "notes.txt").write_text("not a backup")
    assert [b.taken_at for b in backups.list_backups(folder)] == \
        [NOW + timedelta(hours=6 * n) for n in (3, 2, 1, 0)]
    removed = backups.prune(folder, keep=2)
    assert sorted(p.name for p in removed) == sorted(
        [made[1].path.name, made[3].path.name, made[1].path.name.replace(".sqlite3", ".secret.key"),
         made[3].path.name.replace(".sqlite3", ".secret.key")])
    assert [b.path for b in backups.list_backups(folder)] == [made[2].path, made[0].path]
    assert (folder / "notes.txt").exists()
    with pytest.raises(backups.BackupError, match="at least one"):
        backups.prune(folder, keep=0)


async def test_a_restore_skips_the_deposit_indices_handed_out_since_the_backup(
        container: Container, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Indices issued after the backup are lost with the disaster: none is issued again."""
    async with container.deps.uow() as uow:
        before = await uow.counters.next("tron_deposit_index")
        await uow.commit()
    made = await store(container, tmp_path / "b").make(NOW)
    url = empty_target(container.settings, tmp_path, request)
    await backups.restore(url, made.path, key_target=tmp_path / "restored" / "secret.key")
    db = Database.open(url)
    try:
        async with db.writer.connect() as conn:
            await conn.begin()
            if db.dialect == "postgresql":
                after = (await conn.execute(sa.text("SELECT nextval('tron_deposit_index')"))).scalar_one()
            else:
                after = (await conn.execute(sa.select(t.counters.c.value).where(
                    t.counters.c.name == "tron_deposit_index"))).scalar_one()
            await conn.rollback()
    finally:
        await db.dispose()
    assert after >= before + backups.RESTORED_INDEX_GAP
