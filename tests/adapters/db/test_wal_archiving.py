"""PostgreSQL point-in-time recovery as docs/operations/postgresql-pitr.md sets it up: WAL
segments land in the archive, and a base backup (pg_basebackup) plus the archive recover the
database to a chosen point, with nothing after it.

The recovery target is a named restore point (pg_create_restore_point) rather than a time,
so the test does not depend on the wall clock; recovery_target_time works the same way."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg

from tests.support.servers import PostgresServer, find_pg_bin, running

WAIT_SECONDS = 60.0  # only stops a hung test: it measures nothing


def sql(server: PostgresServer, *statements: str) -> list[Any]:
    """Run each statement on its own (ALTER SYSTEM refuses a transaction); the last one's rows."""
    async def run() -> list[Any]:
        conn = await asyncpg.connect(server.dsn)
        try:
            rows: list[Any] = []
            for statement in statements:
                rows = await conn.fetch(statement)
            return rows
        finally:
            await conn.close()
    return asyncio.run(run())


def until(what: str, done: Any) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def chown_tree(root: Path, uid: int, gid: int) -> None:
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            os.chown(Path(folder) / name, uid, gid)
    os.chown(root, uid, gid)


def test_wal_is_archived_and_recovers_to_a_restore_point(tmp_path: Path) -> None:
    with running(PostgresServer(tmp_path / "pg"), "PostgreSQL") as server:
        assert server.data_dir is not None and server.port is not None
        data = server.data_dir
        archive = data.parent / "wal-archive"  # a folder the server's OS user may write
        # As in the guide: never overwrite an archived segment; archive at least every 60 s.
        command = f"mkdir -p {archive} && test ! -f {archive}/%f && cp %p {archive}/%f"
        sql(server, "ALTER SYSTEM SET archive_mode = 'on'",
            f"ALTER SYSTEM SET archive_command = '{command}'",
            "ALTER SYSTEM SET archive_timeout = '60s'")
        server.kill()  # archive_mode takes a restart
        server.revive()
        assert sql(server, "SHOW archive_mode")[0][0] == "on"

        sql(server, "CREATE TABLE drill (id serial PRIMARY KEY, note text)",
            "INSERT INTO drill (note) VALUES ('in the base backup')")
        base = tmp_path / "base"
        subprocess.run([str(find_pg_bin() / "pg_basebackup"), "-h", server.host, "-p", str(server.port),
                        "-U", server.superuser, "-D", str(base), "-X", "stream", "--checkpoint=fast"],
                       check=True, capture_output=True)
        sql(server, "INSERT INTO drill (note) VALUES ('before the target')",
            "SELECT pg_create_restore_point('drill')",
            "INSERT INTO drill (note) VALUES ('after the target')")
        segment = sql(server, "SELECT pg_walfile_name(pg_switch_wal())")[0][0]
        until(f"{segment} in the archive", lambda: (archive / segment).is_file())
        failed = sql(server, "SELECT failed_count FROM pg_stat_archiver")[0][0]
        assert failed == 0

        # The disaster: the data folder is lost. Recovery: the base backup, then the archive
        # replayed up to the restore point, then promotion.
        server.kill()
        owner = data.stat()
        shutil.rmtree(data)
        shutil.copytree(base, data)
        with (data / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"restore_command = 'cp {archive}/%f %p'\n"
                       "recovery_target_name = 'drill'\n"
                       "recovery_target_action = 'promote'\n")
        (data / "recovery.signal").touch()
        chown_tree(data, owner.st_uid, owner.st_gid)
        data.chmod(0o700)
        server.revive()
        until("the end of recovery", lambda: sql(server, "SELECT pg_is_in_recovery()")[0][0] is False)
        notes = [r[0] for r in sql(server, "SELECT note FROM drill ORDER BY id")]
        assert notes == ["in the base backup", "before the target"]
