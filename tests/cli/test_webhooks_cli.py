"""`krypton webhooks listen|deliveries|endpoints` and `krypton keys rotate`, against a fresh
data folder: the listener runs as a real process and receives real signed deliveries."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from krypton.adapters.secrets.envelope import load_key_file
from krypton.app import invoices, merchants, webhooks
from krypton.bootstrap import build
from krypton.cli import app
from krypton.config import Settings
from krypton.web.api.schemas import WebhookObjects
from tests.support.servers import free_port

runner = CliRunner()
OBJECTS = WebhookObjects("http://127.0.0.1:8000", testnet=False)


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in [n for n in os.environ if n.startswith("KRYPTON_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KRYPTON_WEBHOOKS_ALLOW_LOOPBACK", "1")
    return tmp_path / "data"


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, webhooks_allow_loopback=True)


async def _merchant_and_endpoint(data_dir: Path, url: str) -> str:
    container = await build(_settings(data_dir))
    try:
        merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
        await webhooks.create_endpoint(container.deps, container.webhook_kit(), merchant.id, url, ["*"])
        return merchant.id
    finally:
        await container.close()


async def _invoice_and_send(data_dir: Path, merchant_id: str) -> int:
    container = await build(_settings(data_dir))
    try:
        await invoices.create_invoice(container.deps, merchant_id,
                                      invoices.InvoiceRequest(amount="1.5", currency="TON"))
        while await webhooks.relay(container.deps, OBJECTS):
            pass
        return await webhooks.deliver_due(container.deps, container.webhook_kit())
    finally:
        await container.close()


@pytest.fixture
def listener(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    """`krypton webhooks listen` as a real process, for the one merchant there is."""
    merchant_id = asyncio.run(_merchant_and_endpoint(data_dir, "http://127.0.0.1:9/unused"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "krypton.cli", "webhooks", "listen", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # ready once it says so
            if "Waiting for events" in line:
                break
        else:
            raise AssertionError("the listener stopped before it was ready")
        yield proc, port, merchant_id
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


def test_listen_registers_an_endpoint_verifies_what_arrives_and_removes_it(
        listener: tuple[subprocess.Popen[str], int, str], data_dir: Path) -> None:
    proc, port, merchant_id = listener
    listed = runner.invoke(app, ["webhooks", "endpoints"], env={"COLUMNS": "250"})
    assert f"http://127.0.0.1:{port}/webhooks" in listed.output
    assert asyncio.run(_invoice_and_send(data_dir, merchant_id)) == 2  # to the listener; the other
    # endpoint (port 9) refuses the connection and is retried later
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=30)
    assert "✓ verified invoice.created" in output and "amount=1.5" in output
    assert "removed" in output
    listed = runner.invoke(app, ["webhooks", "endpoints"], env={"COLUMNS": "250"})
    assert f"127.0.0.1:{port}" not in listed.output
    deliveries = runner.invoke(app, ["webhooks", "deliveries"], env={"COLUMNS": "250"})
    assert deliveries.exit_code == 0 and "invoice.created" in deliveries.output
    assert "pending" in deliveries.output  # the one to port 9, waiting for its retry


def test_listen_with_a_secret_refuses_a_forged_delivery(data_dir: Path) -> None:
    port = free_port()
    secret = "whsec_" + "A" * 43 + "="
    proc = subprocess.Popen([sys.executable, "-m", "krypton.cli", "webhooks", "listen", "--port", str(port),
                             "--secret", secret], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import httpx
        for _ in range(300):
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/webhooks", content=b"{}", headers={
                    "webhook-id": "evt_forged", "webhook-timestamp": str(int(time.time())),
                    "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl"})
                break
            except httpx.ConnectError:
                time.sleep(0.05)  # not listening yet: the limit only stops a hung test
        assert answer.status_code == 400
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert "refused" in output and "evt_forged" in output


def test_listen_on_a_port_in_use_says_so_and_registers_nothing(data_dir: Path) -> None:
    asyncio.run(_merchant_and_endpoint(data_dir, "http://127.0.0.1:9/hooks"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = runner.invoke(app, ["webhooks", "listen", "--port", str(taken.getsockname()[1])])
    assert result.exit_code == 2 and "choose another --port" in result.output
    listed = runner.invoke(app, ["webhooks", "endpoints"], env={"COLUMNS": "250"})
    assert listed.output.count("whe_") == 1  # only the one made above


def test_listen_with_a_bad_secret_or_unknown_merchant_says_what_to_fix(data_dir: Path) -> None:
    result = runner.invoke(app, ["webhooks", "listen", "--secret", "nope"])
    assert result.exit_code == 2 and "whsec_" in result.output
    result = runner.invoke(app, ["webhooks", "listen", "--merchant", "mer_missing"])
    assert result.exit_code == 2 and "No merchant 'mer_missing'" in result.output


def test_keys_rotate_reseals_every_secret_and_prune_drops_the_old_key(data_dir: Path) -> None:
    asyncio.run(_merchant_and_endpoint(data_dir, "http://127.0.0.1:9/hooks"))
    before = load_key_file(data_dir / "secret.key", create=False)
    result = runner.invoke(app, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 1 secret(s)" in result.output
    rotated = load_key_file(data_dir / "secret.key", create=False)
    assert rotated.key_ids == (rotated.current_id, before.current_id)
    pruned = runner.invoke(app, ["keys", "rotate", "--prune"])
    assert pruned.exit_code == 0 and before.current_id in pruned.output
    assert load_key_file(data_dir / "secret.key", create=False).key_ids == (rotated.current_id,)
    # Every secret still opens: deliveries are signed as before.
    assert asyncio.run(_invoice_and_send(data_dir, _only_merchant(data_dir))) >= 0


def _only_merchant(data_dir: Path) -> str:
    async def find() -> str:
        container = await build(_settings(data_dir))
        try:
            async with container.deps.uow(write=False) as uow:
                (merchant,) = await uow.merchants.list()
                (endpoint,) = await uow.webhooks.all_endpoints()
            ring = container.webhook_kit().sealer
            assert ring.open(endpoint.secret, aad=endpoint.id.encode()).startswith(b"whsec_")
            return merchant.id
        finally:
            await container.close()
    return asyncio.run(find())


def test_a_key_file_others_can_read_is_refused_at_start(data_dir: Path) -> None:
    asyncio.run(_merchant_and_endpoint(data_dir, "http://127.0.0.1:9/hooks"))
    (data_dir / "secret.key").chmod(0o644)
    result = runner.invoke(app, ["keys", "rotate"])
    assert result.exit_code == 2 and "chmod 600" in result.output
