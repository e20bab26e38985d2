"""The product brief's topology from real binaries, as deploy/compose.yaml wires it: the API
(`krypton serve --role api`) and a `krypton worker`, on PostgreSQL, Redis and NATS
JetStream, with the compose file's own KRYPTON_* settings (service hosts swapped for this
machine's servers). A smoke test: ready, healthy, an invoice paid on the devnet end to end,
its events in JetStream, and both processes' /metrics showing their own series."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest
import yaml
from typer.testing import CliRunner

from krypton.adapters.events.nats import STREAM
from krypton.cli import app as cli
from tests.support.servers import NatsServer, PostgresServer, RedisServer, free_port
from tests.test_cli_contract import _answers, _wait

ROOT = Path(__file__).parents[2]
KRYPTON = str(Path(sys.executable).parent / "krypton")


def compose_env(service: str) -> dict[str, str]:
    """A compose service's KRYPTON_* environment, as the file gives it."""
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    return {k: str(v) for k, v in compose["services"][service]["environment"].items()}


def local(env: dict[str, str], pg: str, redis: str, nats_url: str) -> dict[str, str]:
    """The compose hosts (postgres, redis, nats) replaced by this machine's servers."""
    swapped = dict(env)
    swapped["KRYPTON_DATABASE_URL"] = pg
    swapped["KRYPTON_REDIS_URL"] = redis
    swapped["KRYPTON_NATS_URL"] = nats_url
    swapped.pop("KRYPTON_SIGNER_SOCKET", None)  # no signer in this smoke test
    return swapped


@pytest.fixture
def topology(pg_server: PostgresServer, redis_server: RedisServer, nats_server: NatsServer,
             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    db_url = pg_server.create_database(f"topo{os.getpid()}", template="krypton_template")
    port, metrics_port = free_port(), free_port()
    base = {**os.environ, "KRYPTON_DATA_DIR": str(tmp_path), "KRYPTON_NETWORK": "devnet",
            "KRYPTON_PUBLIC_URL": f"http://127.0.0.1:{port}", "KRYPTON_WATCH_INTERVAL_SECONDS": "0.2",
            "KRYPTON_DEVNET_TON_BLOCK_SECONDS": "0.2"}
    for name in ("KRYPTON_ROLE", "KRYPTON_DEVNET_URL"):
        base.pop(name, None)
    api_env = {**base, **local(compose_env("api"), db_url, redis_server.url, nats_server.url)}
    worker_env = {**base, **local(compose_env("worker"), db_url, redis_server.url, nats_server.url),
                  "KRYPTON_METRICS_PORT": str(metrics_port)}
    for name in ("KRYPTON_DATA_DIR", "KRYPTON_PUBLIC_URL", "KRYPTON_DATABASE_URL", "KRYPTON_NETWORK"):
        monkeypatch.setenv(name, api_env[name])
    processes = []
    try:
        for name, env, args in (("api", api_env, ["serve", "--role", "api", "--port", str(port)]),
                                ("worker", worker_env, ["worker"])):
            with (tmp_path / f"{name}.log").open("wb") as log:
                processes.append(subprocess.Popen([KRYPTON, *args], env=env, stdout=log, stderr=log))
        yield {"url": f"http://127.0.0.1:{port}", "metrics": f"http://127.0.0.1:{metrics_port}/metrics",
               "nats": nats_server.url, "logs": str(tmp_path)}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _stream_messages(url: str) -> int:
    async def count() -> int:
        client = await nats.connect(url)
        try:
            info = await client.jetstream().stream_info(STREAM)
            return int(info.state.messages)
        except Exception:
            return 0
        finally:
            await client.close()
    return asyncio.run(count())


def test_the_compose_topology_takes_a_payment(topology: dict[str, str]) -> None:
    try:
        _take_a_payment(topology)
    except AssertionError as failure:
        tails = {name: (Path(topology["logs"]) / f"{name}.log").read_text()[-3000:]
                 for name in ("api", "worker")}
        raise AssertionError(f"{failure}\n--- api.log ---\n{tails['api']}\n"
                             f"--- worker.log ---\n{tails['worker']}") from failure


def _take_a_payment(topology: dict[str, str]) -> None:
    url = topology["url"]
    _wait(lambda: _answers(f"{url}/readyz"), "the API to serve", attempts=1200)
    _wait(lambda: _answers(f"{url}/healthz"), "a worker to run the chain watcher", attempts=1200)
    checks = httpx.get(f"{url}/healthz").json()["checks"]
    assert checks["database"] == checks["redis"] == checks["watcher"] == {"status": "ok"}

    runner = CliRunner()
    merchant = json.loads(runner.invoke(cli, ["merchant", "create", "--name", "Smoke", "--json"]).output)
    headers = {"Authorization": f"Bearer {merchant['api_key']}"}
    invoice = httpx.post(f"{url}/api/v1/invoices", headers=headers,
                         json={"amount": "2", "currency": "TON", "methods": ["ton"]}).json()
    paid = runner.invoke(cli, ["devnet", "pay", invoice["id"], "--method", "ton"])
    assert paid.exit_code == 0, paid.output
    # Polled with the merchant's key: ten a second would pass the public per-IP limit.
    _wait(lambda: httpx.get(f"{url}/api/v1/invoices/{invoice['id']}", headers=headers).json()
          .get("status") == "paid", "the payment to be credited", attempts=600)

    # The worker exported the events to JetStream and counts what it did in its own /metrics.
    _wait(lambda: _stream_messages(topology["nats"]) >= 4, "events in JetStream", attempts=600)
    _wait(lambda: 'krypton_settlement_attempts_total{outcome="settled"} 1.0'
          in httpx.get(topology["metrics"]).text, "the worker's business series", attempts=600)
    api_metrics = httpx.get(f"{url}/metrics").text
    assert 'route="/api/v1/invoices"' in api_metrics
    # Both write JSON lines (the compose file's KRYPTON_LOG_FORMAT), and the API one per request.
    api_log = (Path(topology["logs"]) / "api.log").read_text().splitlines()
    requests = [json.loads(line) for line in api_log if line.startswith("{") and '"request"' in line]
    assert any(r["route"] == "/api/v1/invoices" and r["status"] == 201 for r in requests)
