"""Backups of Krypton's database, each verified before it is kept, and their restore.

SQLite: sqlite3's online backup API, page by page, inside one read transaction on the
source, so the copy is one consistent snapshot even while the server writes (in WAL mode a
held read transaction pins its snapshot; without it every write would restart the copy),
then `PRAGMA integrity_check` on the copy. PostgreSQL: `pg_dump -Fc`, checked by
`pg_restore --list`. A backup is written under a `.partial` name and renamed only once it is
verified, so a listed backup is always a whole one.

The secret key file (data_dir/secret.key) seals webhook signing secrets: a database without
it cannot sign a webhook again. When the keys come from that file it is copied beside the
backup as `krypton-<ts>.secret.key`; both files are mode 0600 in a 0700 folder. When they
come from KRYPTON_SECRET_KEY, nothing is copied: that value must be kept in the operator's
secret store (`Backup.key` is then None and the CLI says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from krypton.adapters.db import migrate
from krypton.adapters.db import tables as t
from krypton.adapters.db.database import Database

Kind = Literal["sqlite", "postgresql"]
# (done, total): pages for SQLite, tables for PostgreSQL.
Progress = Callable[[int, int], None]
SUFFIX: dict[Kind, str] = {"sqlite": ".sqlite3", "postgresql": ".pgdump"}
KEY_SUFFIX = ".secret.key"
PARTIAL = ".partial"
NAME = re.compile(r"^krypton-(\d{8}T\d{6}Z)(?:-(\d+))?(\.sqlite3|\.pgdump)$")
# Pages copied per step of the SQLite backup: 1024 pages of 4 KiB, a progress tick per 4 MiB.
PAGES_PER_STEP = 1024
# The table every Krypton database has: a file without it is not a Krypton backup.
VERSION_TABLE = "alembic_version"
PG_CONNECT_TIMEOUT = "10"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says what to do."""


@dataclass(frozen=True)
class Backup:
    path: Path
    kind: Kind
    taken_at: datetime
    size: int
    key: Path | None  # the secret key file beside it, if one was copied

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Restored:
    kind: Kind
    key_restored: bool


# ------------------------------------------------------------------ names and files


def _stem(now: datetime) -> str:
    return "krypton-" + now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _free_name(directory: Path, now: datetime, kind: Kind) -> str:
    """`krypton-<UTC time>.<ext>`, with -2, -3, … when one was taken in the same second."""
    stem, n = _stem(now), 1
    while True:
        name = f"{stem}{'' if n == 1 else f'-{n}'}{SUFFIX[kind]}"
        if not (directory / name).exists() and not (directory / (name + PARTIAL)).exists():
            return name
        n += 1


def key_path_of(backup: Path) -> Path:
    """Where a backup's secret key file lies: beside it, same stem."""
    return backup.with_name(backup.name.rsplit(".", 1)[0] + KEY_SUFFIX)


def kind_of(path: Path) -> Kind:
    for kind, suffix in SUFFIX.items():
        if path.name.endswith(suffix):
            return kind
    raise BackupError(f"{path.name} is not a Krypton backup: the name must end in .sqlite3 "
                      "(SQLite) or .pgdump (PostgreSQL).")


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 (whatever the umask), replacing a stale one."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _copy_private(source: Path, target: Path) -> None:
    """Copy a key file to `target` with mode 0600, atomically (never a half-written key)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + PARTIAL)
    _private_file(partial)
    with source.open("rb") as src, partial.open("wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(partial, target)


def list_backups(directory: Path) -> list[Backup]:
    """The verified backups in `directory`, newest first (by the time in the name)."""
    if not directory.is_dir():
        return []
    found: list[tuple[str, int, Backup]] = []
    for path in directory.iterdir():
        match = NAME.match(path.name)
        if match is None or not path.is_file():
            continue
        taken = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        key = key_path_of(path)
        backup = Backup(path, kind_of(path), taken, path.stat().st_size, key if key.is_file() else None)
        found.append((match.group(1), int(match.group(2) or 1), backup))
    found.sort(key=lambda f: (f[0], f[1]), reverse=True)
    return [b for _, _, b in found]


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups (with their key files); returns what went."""
    if keep < 1:
        raise BackupError("keep at least one backup (KRYPTON_BACKUP_KEEP >= 1).")
    removed: list[Path] = []
    for old in list_backups(directory)[keep:]:
        for path in (old.path, old.key):
            if path is not None:
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


# ------------------------------------------------------------------ SQLite


def sqlite_path(url: str) -> Path:
    """The file of a sqlite:/// URL."""
    database = make_url(url).database
    if not database:
        raise BackupError(f"{url} names no SQLite file.")
    return Path(database)


def check_sqlite(path: Path) -> None:
    """`PRAGMA integrity_check` passes and the file is a Krypton database, or BackupError."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path.name} cannot be opened as SQLite: {exc}.") from None
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if rows != ["ok"]:
            raise BackupError(f"{path.name} fails PRAGMA integrity_check: {'; '.join(rows[:5])}.")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path.name} fails PRAGMA integrity_check: {exc}.") from None
    finally:
        conn.close()
    if VERSION_TABLE not in tables:
        raise BackupError(f"{path.name} is a SQLite file but not a Krypton database "
                          f"(it has no {VERSION_TABLE} table).")


def _copy_sqlite(source: Path, target: Path, progress: Progress | None, *, snapshot: bool) -> None:
    """Page-by-page copy through the online backup API into `target` (created 0600)."""
    _private_file(target)
    src = sqlite3.connect(source, isolation_level=None, timeout=30)
    dst = sqlite3.connect(target)
    try:
        if snapshot:  # pin one snapshot for the whole copy (see the module's docstring)
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()

        def step(_status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(total - remaining, total)
        src.backup(dst, pages=PAGES_PER_STEP, progress=step)
        if snapshot:
            src.execute("ROLLBACK")
        # The copy inherits WAL mode from the source's header: one self-contained file
        # instead (Krypton switches a restored database back to WAL when it opens it).
        dst.execute("PRAGMA journal_mode=DELETE").fetchone()
    finally:
        dst.close()
        src.close()


def backup_sqlite(source: Path, directory: Path, now: datetime, *, key_file: Path | None,
                  progress: Progress | None = None) -> Backup:
    """Back the live SQLite database at `source` up into `directory`, verified; the key file
    is copied beside it when given and present. A copy that fails the check is deleted."""
    if not source.is_file():
        raise BackupError(f"There is no database at {source}: nothing to back up.")
    _private_dir(directory)
    name = _free_name(directory, now, "sqlite")
    final = directory / name
    partial = directory / (name + PARTIAL)
    try:
        _copy_sqlite(source, partial, progress, snapshot=True)
        check_sqlite(partial)
    except (sqlite3.Error, BackupError) as exc:
        partial.unlink(missing_ok=True)
        message = str(exc) if isinstance(exc, BackupError) else f"the copy failed: {exc}."
        raise BackupError(f"Backup of {source} failed, nothing was kept: "
                          f"{message.replace(partial.name, 'the copy')}") from None
    key = _copy_key(key_file, final)
    os.replace(partial, final)
    return Backup(final, "sqlite", now, final.stat().st_size, key)


def _copy_key(key_file: Path | None, backup: Path) -> Path | None:
    if key_file is None or not key_file.is_file():
        return None
    target = key_path_of(backup)
    _copy_private(key_file, target)
    return target


def _check_key_target(backup: Path, key_target: Path | None, force: bool) -> Path | None:
    """The backup's key file to restore, after refusing to replace a different key."""
    key = key_path_of(backup)
    if key_target is None or not key.is_file():
        return None
    if key_target.exists() and key_target.read_bytes() != key.read_bytes() and not force:
        raise BackupError(f"{key_target} already holds another secret key; restore into a fresh "
                          "data folder, or pass --force to replace it (secrets sealed with the "
                          "current key can then no longer be opened).")
    return key


def restore_sqlite(backup: Path, target: Path, *, key_target: Path | None, force: bool = False,
                   progress: Progress | None = None) -> Restored:
    """Restore a verified SQLite backup to the database file `target` (refusing to replace
    an existing database unless `force`), and its key file to `key_target`."""
    check_sqlite(backup)
    present = [p for p in (target, _sidecar(target, "-wal")) if p.exists()]
    if present and not force:
        raise BackupError(f"{target.parent} already holds a database ({present[0].name}); restore "
                          "into a fresh data folder (KRYPTON_DATA_DIR), or pass --force to "
                          "replace it. Stop Krypton first either way.")
    key = _check_key_target(backup, key_target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + PARTIAL)
    try:
        _copy_sqlite(backup, partial, progress, snapshot=False)
        check_sqlite(partial)
    except (sqlite3.Error, BackupError) as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"Restoring {backup.name} failed, the data folder is unchanged: {exc}") \
            from None
    for stale in ("-wal", "-shm"):  # the old database's log must not be applied to the new one
        _sidecar(target, stale).unlink(missing_ok=True)
    os.replace(partial, target)
    if key is not None and key_target is not None:
        _copy_private(key, key_target)
    return Restored("sqlite", key is not None)


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


# ------------------------------------------------------------------ PostgreSQL


@dataclass(frozen=True)
class PgTarget:
    """Where the pg tools connect; the password only ever goes to a child's PGPASSWORD."""

    host: str
    port: int
    user: str | None
    password: str | None
    database: str
    sslmode: str | None = None

    @classmethod
    def from_url(cls, url: str) -> PgTarget:
        parsed = make_url(url)
        if not parsed.database:
            raise BackupError("KRYPTON_DATABASE_URL names no database.")
        ssl = parsed.query.get("ssl") or parsed.query.get("sslmode")
        return cls(parsed.host or "localhost", parsed.port or 5432, parsed.username,
                   parsed.password, parsed.database, ssl if isinstance(ssl, str) else None)

    def args(self) -> list[str]:
        user = ["-U", self.user] if self.user else []
        return ["-h", self.host, "-p", str(self.port), *user, "--no-password"]

    def env(self) -> dict[str, str]:
        # The operator's PG* variables must not point the tools at another server.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = PG_CONNECT_TIMEOUT
        if self.password:
            env["PGPASSWORD"] = self.password
        if self.sslmode:
            env["PGSSLMODE"] = self.sslmode
        return env

    def __repr__(self) -> str:  # never the password
        return f"PgTarget({self.user}@{self.host}:{self.port}/{self.database})"


def pg_bin(server_major: int, tool: str = "pg_dump") -> Path:
    """The client tool matching the server's major version (Debian keeps one set per version
    under /usr/lib/postgresql/<v>/bin); else the oldest newer one; else PATH's if new enough
    (pg_dump refuses a server newer than itself)."""
    root = Path("/usr/lib/postgresql")
    versions = sorted(int(d.name) for d in root.glob("*") if d.name.isdigit()) if root.is_dir() else []
    for version in [v for v in versions if v == server_major] + [v for v in versions if v > server_major]:
        found = root / str(version) / "bin" / tool
        if found.is_file():
            return found
    on_path = shutil.which(tool)
    if on_path is not None:
        out = subprocess.run([on_path, "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"(\d+)", out)
        if match and int(match.group(1)) >= server_major:
            return Path(on_path)
    raise BackupError(f"No {tool} for PostgreSQL {server_major} or newer: install postgresql-client-"
                      f"{server_major} (Debian: apt-get install postgresql-client-{server_major}).")


def _run_counting(cmd: list[str], env: dict[str, str], marker: str, total: int,
                  progress: Progress | None) -> tuple[int, str]:
    """Run a pg tool with --verbose, a progress tick per stderr line holding `marker`;
    returns (exit code, the last stderr lines without the verbose chatter)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    done, problems = 0, []
    for line in proc.stderr:
        if marker in line:
            done += 1
            if progress is not None:
                progress(min(done, total), total)
        elif "error" in line.lower() or "fatal" in line.lower() or "warning" in line.lower():
            problems.append(line.strip())
    code = proc.wait()
    return code, "\n".join(problems[-5:])


def pg_list(dump: Path, server_major: int) -> list[str]:
    """The table of contents of a custom-format dump; BackupError if it is not one, or not
    of a Krypton database."""
    result = subprocess.run([str(pg_bin(server_major, "pg_restore")), "--list", str(dump)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{dump.name} is not a readable pg_dump archive: "
                          f"{result.stderr.strip() or 'pg_restore --list failed'}.")
    entries = [line for line in result.stdout.splitlines() if line and not line.startswith(";")]
    if not any(f"TABLE DATA public {VERSION_TABLE}" in line for line in entries):
        raise BackupError(f"{dump.name} is a pg_dump archive but not of a Krypton database "
                          f"(no {VERSION_TABLE} table).")
    return entries


def backup_postgresql(target: PgTarget, server_major: int, tables: int, directory: Path,
                      now: datetime, *, key_file: Path | None,
                      progress: Progress | None = None) -> Backup:
    """`pg_dump -Fc` of the database into `directory`, verified by `pg_restore --list`;
    `tables` (the count in the public schema) sizes the progress."""
    _private_dir(directory)
    name = _free_name(directory, now, "postgresql")
    final, partial = directory / name, directory / (name + PARTIAL)
    try:
        _private_file(partial)
        cmd = [str(pg_bin(server_major)), *target.args(), "--format=custom", "--verbose",
               f"--file={partial}", target.database]
        code, problems = _run_counting(cmd, target.env(), "dumping contents of table", tables,
                                       progress)
        if code != 0:
            raise BackupError(f"pg_dump exited with {code}: {problems or 'no message'}")
        pg_list(partial, server_major)
    except BackupError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"Backup of {target.database} failed, nothing was kept: "
                          f"{str(exc).replace(partial.name, 'the dump')}") from None
    key = _copy_key(key_file, final)
    os.replace(partial, final)
    return Backup(final, "postgresql", now, final.stat().st_size, key)


def restore_postgresql(backup: Path, target: PgTarget, server_major: int, *,
                       key_target: Path | None, force: bool = False,
                       progress: Progress | None = None) -> Restored:
    """`pg_restore --clean --if-exists --no-owner` in one transaction (all or nothing) into
    `target`, which the caller has checked is empty or emptied (`force`)."""
    entries = pg_list(backup, server_major)
    key = _check_key_target(backup, key_target, force)
    total = sum(1 for e in entries if " TABLE DATA " in e)
    cmd = [str(pg_bin(server_major, "pg_restore")), *target.args(), "--clean", "--if-exists",
           "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", "--verbose",
           f"--dbname={target.database}", str(backup)]
    code, problems = _run_counting(cmd, target.env(), "processing data for table", total, progress)
    if code != 0:
        raise BackupError(f"pg_restore exited with {code}, nothing was restored (it runs in one "
                          f"transaction): {problems or 'no message'}")
    if key is not None and key_target is not None:
        _copy_private(key, key_target)
    return Restored("postgresql", key is not None)


# ------------------------------------------------------------------ through the database


async def server_major(db: Database) -> int:
    async with db.reader.connect() as conn:
        value = (await conn.execute(sa.text("SHOW server_version_num"))).scalar_one()
    return int(value) // 10000


async def table_names(db: Database) -> list[str]:
    """The tables in the database (public schema on PostgreSQL)."""
    if db.dialect == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    async with db.reader.connect() as conn:
        return [str(r[0]) for r in await conn.execute(sa.text(query))]


async def empty_schema(db: Database) -> None:
    """Drop everything in the public schema (restore --force onto a used database)."""
    async with db.writer.connect() as conn:
        await conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        await conn.execute(sa.text("CREATE SCHEMA public"))
        await conn.commit()


@dataclass(frozen=True)
class Summary:
    revision: str | None
    counts: dict[str, int]
    # Sum of every posting per asset: all zero when the ledger balances.
    ledger: dict[str, int]

    @property
    def balanced(self) -> bool:
        return all(v == 0 for v in self.ledger.values())


SUMMARY_TABLES = (t.merchants, t.invoices, t.payments, t.settlements, t.unmatched_transfers,
                  t.events, t.webhook_endpoints)


async def summary(db: Database) -> Summary:
    """What a restored database holds, and whether its ledger balances."""
    revision = await migrate.current(db)
    async with db.reader.connect() as conn:
        counts = {table.name: int((await conn.execute(
            sa.select(sa.func.count()).select_from(table))).scalar_one()) for table in SUMMARY_TABLES}
        c = t.postings.c
        ledger = {str(a): int(s) for a, s in await conn.execute(
            sa.select(c.asset, sa.func.sum(c.amount)).group_by(c.asset))}
    return Summary(revision, counts, ledger)


@dataclass(frozen=True)
class Store:
    """Backups of one configured database: what the CLI and the scheduled job use."""

    db: Database
    directory: Path
    # The key file to copy beside each backup; None when the keys come from the environment.
    key_file: Path | None

    @property
    def kind(self) -> Kind:
        return "sqlite" if self.db.dialect == "sqlite" else "postgresql"

    async def make(self, now: datetime, progress: Progress | None = None) -> Backup:
        if self.kind == "sqlite":
            source = sqlite_path(self.db.url)
            return await asyncio.to_thread(backup_sqlite, source, self.directory, now,
                                           key_file=self.key_file, progress=progress)
        major = await server_major(self.db)
        tables = len(await table_names(self.db))
        return await asyncio.to_thread(backup_postgresql, PgTarget.from_url(self.db.url), major,
                                       tables, self.directory, now, key_file=self.key_file,
                                       progress=progress)

    async def latest(self) -> datetime | None:
        found = await asyncio.to_thread(list_backups, self.directory)
        return found[0].taken_at if found else None

    async def prune(self, keep: int) -> int:
        return len([p for p in await asyncio.to_thread(prune, self.directory, keep)
                    if NAME.match(p.name)])

    def list(self) -> list[Backup]:
        return list_backups(self.directory)


async def restore(url: str, backup: Path, *, key_target: Path | None, force: bool = False,
                  progress: Progress | None = None) -> Summary:
    """Restore `backup` into the database at `url`, migrate it to head (a backup from an
    older Krypton) and summarise it."""
    if not await asyncio.to_thread(backup.is_file):
        raise BackupError(f"There is no backup at {backup}.")
    kind = kind_of(backup)
    configured: Kind = "sqlite" if url.startswith("sqlite") else "postgresql"
    if kind != configured:
        raise BackupError(f"{backup.name} is a {kind} backup but the configured database is "
                          f"{configured}: restore it into a {kind} database.")
    _check_key_target(backup, key_target, force)  # before anything is replaced
    if kind == "sqlite":
        await asyncio.to_thread(restore_sqlite, backup, sqlite_path(url), key_target=key_target,
                                force=force, progress=progress)
    else:
        await _restore_postgresql(url, backup, key_target=key_target, force=force,
                                  progress=progress)
    db = Database.open(url)
    try:
        await migrate.upgrade(db)
        await skip_deposit_indices(db, RESTORED_INDEX_GAP)
        return await summary(db)
    finally:
        await db.dispose()


# Tron deposit addresses handed out between the backup and the disaster are unknown to the
# restored database: were their indices issued again, a late payment meant for a lost
# invoice would pay a new one. The counter jumps past any such index instead (derivation
# from the xpub costs nothing per index skipped).
RESTORED_INDEX_GAP = 100_000


async def skip_deposit_indices(db: Database, gap: int) -> None:
    async with db.writer.connect() as conn:
        await conn.begin()
        if db.dialect == "postgresql":
            await conn.execute(sa.text(
                "SELECT setval('tron_deposit_index', nextval('tron_deposit_index') + :gap)"),
                {"gap": gap})
        else:
            await conn.execute(t.counters.update().where(t.counters.c.name == "tron_deposit_index")
                               .values(value=t.counters.c.value + gap))
        await conn.commit()


async def _restore_postgresql(url: str, backup: Path, *, key_target: Path | None, force: bool,
                              progress: Progress | None) -> None:
    db = Database.open(url)
    try:
        present = await table_names(db)
        if present and not force:
            raise BackupError(f"The database already holds {len(present)} tables; restore into an "
                              "empty database, or pass --force to drop everything in it first. "
                              "Stop Krypton first either way.")
        major = await server_major(db)
        await asyncio.to_thread(pg_list, backup, major)  # a bad file must not cost the data
        if present:
            await empty_schema(db)
    finally:
        await db.dispose()
    await asyncio.to_thread(restore_postgresql, backup, PgTarget.from_url(url), major,
                            key_target=key_target, force=force, progress=progress)
