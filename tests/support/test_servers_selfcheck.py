"""Self-check: the throw-away servers start, work with the real client libraries, and clean up."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import asyncpg
import pytest
import redis

from .servers import PostgresServer, RedisServer, ServerUnavailable, in_ci


def _start(server):
    """Start `server`; skip if the software is missing -- except on CI, where that fails."""
    try:
        return server.start()
    except ServerUnavailable as exc:
        if in_ci():
            raise
        pytest.skip(str(exc))


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_postgres(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    pg = _start(PostgresServer(tmp_path))
    with pg:
        assert pg.url == f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/krypton"
        other_url = pg.create_database("isolated")
        assert other_url.endswith("/isolated")

        async def check() -> None:
            conn = await asyncpg.connect(pg.dsn)
            try:
                assert await conn.fetchval("SELECT 1") == 1
                await conn.execute("CREATE TABLE t (id int primary key, note text)")
                await conn.execute("INSERT INTO t VALUES (1, 'ok')")
                assert await conn.fetchval("SELECT note FROM t WHERE id = 1") == "ok"
                assert await conn.fetchval("SHOW fsync") == "off"
            finally:
                await conn.close()
            # The second database is separate and empty.
            conn = await asyncpg.connect(pg.dsn_for("isolated"))
            try:
                assert await conn.fetchval("SELECT to_regclass('t')") is None
            finally:
                await conn.close()

        asyncio.run(check())
        pg.drop_database("isolated")
        pid, port, data_dir = pg.pid, pg.port, pg.data_dir
        # start() on a running server is a no-op.
        assert pg.start() is pg and pg.pid == pid
        assert data_dir is not None and data_dir.is_dir()

    assert pid and _process_gone(pid)
    assert not _port_open(port)
    assert not data_dir.exists()
    assert (tmp_path / "postgres.log").exists()
    assert capfd.readouterr() == ("", "")  # all server output went to log files


def test_redis(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    rd = _start(RedisServer(tmp_path))
    with rd:
        assert rd.url == f"redis://127.0.0.1:{rd.port}/0"
        client = redis.Redis.from_url(rd.url)
        try:
            assert client.ping()
            client.set("k", "v")
            assert client.get("k") == b"v"
        finally:
            client.close()
        pid, port = rd.pid, rd.port
        assert rd.start() is rd and rd.pid == pid

    assert pid and _process_gone(pid)
    assert not _port_open(port)
    assert not list(tmp_path.glob("*.rdb"))  # persistence is off
    assert capfd.readouterr() == ("", "")
