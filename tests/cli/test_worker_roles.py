"""Roles on PostgreSQL, as real processes: `krypton serve --role api` (the API, hosting the
devnet) and two `krypton worker` processes reading the devnet through it. Kill -9 the
worker that runs the chain watcher: the other takes the job over and payments made on the
devnet are still credited. And on SQLite, the embedded single-process default, the roles
are refused with a sentence."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from typer.testing import CliRunner

from krypton.adapters.db.leases import lease_key
from krypton.cli import app
from tests.support.servers import PostgresServer, free_port
from tests.test_cli_contract import _answers, _ok, _wait

runner = CliRunner()
_names = itertools.count()
KRYPTON = str(Path(sys.executable).parent / "krypton")


class Cluster:
    def __init__(self, url: str, dsn: str, env: dict[str, str], logs: Path) -> None:
        self.url, self.dsn, self.env, self.logs = url, dsn, env, logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen([KRYPTON, *args], env=self.env, stdout=log, stderr=log)
        log.close()
        self.processes.append(process)
        return process

    def holder(self, job: str) -> int | None:
        """The process id of the worker holding `job`'s lease (its connection's name says it)."""
        async def ask() -> int | None:
            conn = await asyncpg.connect(self.dsn)
            try:
                rows = await conn.fetch(
                    "SELECT l.classid, l.objid, a.application_name FROM pg_locks l"
                    " JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted")
            finally:
                await conn.close()
            key = lease_key(job) & (2**64 - 1)
            for row in rows:
                if (int(row["classid"]) << 32) | int(row["objid"]) == key:
                    return int(row["application_name"].rsplit("=", 1)[1])
            return None
        return asyncio.run(ask())

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            process.wait(timeout=30)


@pytest.fixture
def cluster(pg_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    name = f"roles{os.getpid()}_{next(_names)}"
    db_url = pg_server.create_database(name, template="krypton_template")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "KRYPTON_DATA_DIR": str(tmp_path), "KRYPTON_PUBLIC_URL": url,
           "KRYPTON_DATABASE_URL": db_url, "KRYPTON_DEVNET_TON_BLOCK_SECONDS": "0.2",
           "KRYPTON_WATCH_INTERVAL_SECONDS": "0.2"}
    env.pop("KRYPTON_ROLE", None)
    env.pop("KRYPTON_DEVNET_URL", None)
    for setting in ("KRYPTON_DATA_DIR", "KRYPTON_PUBLIC_URL", "KRYPTON_DATABASE_URL"):
        monkeypatch.setenv(setting, env[setting])
    cluster = Cluster(url, pg_server.dsn_for(name), env, tmp_path)
    try:
        cluster.spawn("api", "serve", "--role", "api", "--port", str(port))
        _wait(lambda: _answers(f"{url}/livez"), "the API to start")
        cluster.spawn("worker1", "worker")
        cluster.spawn("worker2", "worker")
        yield cluster
    finally:
        cluster.stop()


def _pay_and_see_it_credited(cluster: Cluster, headers: dict[str, str]) -> None:
    created = httpx.post(f"{cluster.url}/api/v1/invoices", headers=headers,
                         json={"amount": "1.5", "currency": "TON", "methods": ["ton"]}).json()
    _ok(["devnet", "pay", created["id"], "--method", "ton"])
    _wait(lambda: httpx.get(f"{cluster.url}/api/v1/public/invoice/{created['id']}").json()["status"]
          == "paid", "the payment to be credited", attempts=600)


def test_killing_the_watching_worker_hands_its_jobs_to_the_other(cluster: Cluster) -> None:
    merchant = json.loads(_ok(["merchant", "create", "--name", "Shop", "--json"]))
    headers = {"Authorization": f"Bearer {merchant['api_key']}"}
    workers = {p.pid for p in cluster.processes[1:]}
    _wait(lambda: cluster.holder("chains") in workers, "a worker to take the chain watcher")
    # The workers read the chains of the devnet the API process hosts: a payment made
    # there (through the server's control API) is seen by whichever worker watches.
    _pay_and_see_it_credited(cluster, headers)

    holder = cluster.holder("chains")
    assert holder is not None
    os.kill(holder, signal.SIGKILL)
    (survivor,) = workers - {holder}
    _wait(lambda: cluster.holder("chains") == survivor, "the other worker to take over")
    _pay_and_see_it_credited(cluster, headers)
    assert {cluster.holder(job) for job in ("expiry", "projections", "checkpoint")} == {survivor}


@pytest.mark.parametrize(("args", "words"), [
    (["serve", "--workers", "2"], ("--workers 2 needs PostgreSQL", "single-process")),
    (["serve", "--role", "api"], ("krypton worker", "needs PostgreSQL")),
    (["worker"], ("krypton worker needs PostgreSQL", "single-process")),
], ids=["serve workers", "serve role api", "worker"])
def test_on_sqlite_the_roles_are_refused(args: list[str], words: tuple[str, ...], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("KRYPTON_DATABASE_URL", raising=False)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for word in words:
        assert word in text, text
    assert list(tmp_path.iterdir()) == []  # refused before anything was made


def test_an_unknown_role_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["serve", "--role", "worker"])
    assert result.exit_code == 2 and "KRYPTON_ROLE" in result.output, result.output


def _children(pid: int) -> list[str]:
    """The command lines of `pid`'s child processes."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent = entry.name.isdigit() and (entry / "stat").read_text().rsplit(") ", 1)[1].split()[1]
            if parent == str(pid):
                found.append((entry / "cmdline").read_text().replace("\0", " "))
        except OSError:  # gone meanwhile
            continue
    return found


def test_serve_runs_several_api_processes_on_postgresql(pg_server: PostgresServer, tmp_path: Path) -> None:
    db_url = pg_server.create_database(f"apis{os.getpid()}_{next(_names)}", template="krypton_template")
    port = free_port()
    env = {**os.environ, "KRYPTON_DATA_DIR": str(tmp_path), "KRYPTON_DATABASE_URL": db_url,
           "KRYPTON_NETWORK": "testnet"}
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen([KRYPTON, "serve", "--workers", "2", "--role", "api", "--port", str(port)],
                                   env=env, stdout=log, stderr=log)
    try:
        # Generous limits: they only stop a hung test (two processes importing everything
        # on a busy 2-core machine took over 30 s once).
        _wait(lambda: len([c for c in _children(process.pid) if "spawn_main" in c]) == 2,
              "two API processes", attempts=1200)
        # /readyz: these API processes serve; /healthz would say 503, as no worker runs the
        # chain watcher beside them.
        _wait(lambda: _answers(f"http://127.0.0.1:{port}/readyz"), "the API to answer", attempts=1200)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["down"] == ["watcher"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "/readyz" not in (tmp_path / "serve.log").read_text()  # probes are never logged


def test_several_api_processes_cannot_each_host_the_devnet(pg_server: PostgresServer, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KRYPTON_DATABASE_URL", pg_server.url)
    result = runner.invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2 and "devnet lives in one process" in " ".join(result.output.split())
