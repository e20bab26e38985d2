"""Two `krypton worker` processes on one PostgreSQL database send webhooks side by side: the
sender job runs in both (it claims its own work with FOR UPDATE SKIP LOCKED), and no
delivery is sent twice."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

from krypton.app import invoices, merchants, webhooks
from krypton.bootstrap import build
from krypton.config import Settings
from krypton.domain.webhooks import DeliveryStatus
from tests.support.receiver import Receiver
from tests.support.servers import PostgresServer

_names = itertools.count()
KRYPTON = str(Path(sys.executable).parent / "krypton")
INVOICES = 300


async def _prepare(settings: Settings, url: str) -> str:
    container = await build(settings)
    try:
        merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
        endpoint, _ = await webhooks.create_endpoint(container.deps, container.webhook_kit(), merchant.id,
                                                     url, ["invoice.created"])
        for _ in range(INVOICES):
            await invoices.create_invoice(container.deps, merchant.id,
                                          invoices.InvoiceRequest(amount="1", currency="TON"))
        return endpoint.id
    finally:
        await container.close()


async def _statuses(settings: Settings, endpoint_id: str) -> list[tuple[DeliveryStatus, int]]:
    container = await build(settings)
    try:
        async with container.deps.uow(write=False) as uow:
            page, _ = await uow.webhooks.deliveries_page(endpoint_id, limit=INVOICES + 10,
                                                         starting_after=None)
        return [(d.status, d.attempts) for d in page]
    finally:
        await container.close()


def test_two_worker_processes_never_send_a_delivery_twice(pg_server: PostgresServer, tmp_path: Path) -> None:
    db_url = pg_server.create_database(f"senders{os.getpid()}_{next(_names)}", template="krypton_template")
    # Testnet with static rates and TON Center on a closed local port: no provider is reached.
    ton = "0:" + "d3" * 32
    settings = Settings(data_dir=tmp_path, database_url=db_url, network="testnet", rates="static",
                        ton_address=ton, webhooks_allow_loopback=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KRYPTON_")},
           "KRYPTON_DATA_DIR": str(tmp_path), "KRYPTON_DATABASE_URL": db_url,
           "KRYPTON_NETWORK": "testnet", "KRYPTON_RATES": "static", "KRYPTON_TON_ADDRESS": ton,
           "KRYPTON_TONCENTER_URLS": '["http://127.0.0.1:9"]',
           "KRYPTON_WEBHOOKS_ALLOW_LOOPBACK": "1", "KRYPTON_WEBHOOK_TIMEOUT_SECONDS": "10"}
    with Receiver() as hooks:
        hooks.delay = 0.02  # slow enough that both senders hold claims at the same time
        endpoint_id = asyncio.run(_prepare(settings, hooks.url))
        workers = [subprocess.Popen([KRYPTON, "worker"], env=env, stdout=(tmp_path / f"w{i}.log").open("wb"),
                                    stderr=subprocess.STDOUT) for i in range(2)]
        try:
            for _ in range(1200):  # the limit only stops a hung test
                if len(hooks.received) >= INVOICES:
                    break
                time.sleep(0.05)
            time.sleep(0.5)  # anything sent twice would arrive by now
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=30)
        ids = [r.headers["webhook-id"] for r in hooks.received]
    logs = "\n".join((tmp_path / f"w{i}.log").read_text(errors="replace")[-2000:] for i in range(2))
    assert len(ids) == INVOICES, logs
    assert len(set(ids)) == INVOICES  # none twice
    statuses = asyncio.run(_statuses(settings, endpoint_id))
    assert statuses == [(DeliveryStatus.SUCCEEDED, 1)] * INVOICES
