"""A server restart mid-demo: the new process's devnet is a new chain on the same database.

Each boot's devnet has its own genesis (bootstrap draws a nonce; these tests fix it), so no
id repeats across boots, and the stored chain cursors, written against the old chain, are
reset when the genesis changes. Payments credited before the restart stay credited once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from krypton.adapters.chains.ton.address import parse
from krypton.adapters.chains.ton.reader import cursor_name
from krypton.app import invoices, merchants
from krypton.app.devnet_genesis import GENESIS_CURSOR, DevnetDatabase
from krypton.bootstrap import build
from krypton.cli import app as cli
from krypton.config import Settings
from krypton.domain.invoice import Invoice
from krypton.workers.watch import ChainWatch
from tests.support.clock import ManualClock
from tests.support.devnet_rig import DevnetRig

TON = 10**9
USDT = 10**6


@asynccontextmanager
async def boot(settings: Settings, clock: ManualClock, nonce: str,
               merchant_id: str | None = None) -> AsyncIterator[DevnetRig]:
    """One server process: a container with its devnet recorded as the chain, and watchers."""
    container = await build(settings, clock=clock, devnet_nonce=nonce)
    try:
        await container.start_devnet()
        assert container.devnet is not None
        if merchant_id is None:
            merchant_id = (await merchants.create_merchant(container.deps, name="Demo shop"))[0].id
        chains = container.chains()
        try:
            yield DevnetRig(container, container.devnet, ChainWatch(container.deps, chains), merchant_id)
        finally:
            await chains.aclose()
    finally:
        await container.close()


def due(invoice: Invoice) -> int:
    (option,) = invoice.options
    return option.amount


async def pay_both(rig: DevnetRig, ton_invoice: Invoice, tron_invoice: Invoice) -> None:
    """Pay one invoice on TON and one with USDT on Tron, and make both final."""
    assert ton_invoice.ton_address is not None and tron_invoice.tron_address is not None
    rig.devnet.ton.pay_ton("alice", parse(ton_invoice.ton_address, network="testnet"),
                           due(ton_invoice), comment=ton_invoice.memo)
    rig.devnet.tron.transfer("bob", tron_invoice.tron_address, due(tron_invoice))
    rig.devnet.produce("ton")
    rig.devnet.produce("tron", 20)  # solidified: 19 blocks on top
    await rig.watchers.poll()


async def paid_once(rig: DevnetRig, invoice: Invoice) -> None:
    deps = rig.container.deps
    now = await invoices.get_invoice(deps, rig.merchant_id, invoice.id)
    async with deps.uow(write=False) as uow:
        payments = [p.status.value for p in await uow.payments.for_invoice(invoice.id)]
    assert (now.status.value, now.amount_paid, payments) == ("paid", due(invoice), ["confirmed"])


async def test_payments_after_a_restart_mid_demo_are_credited_once(settings: Settings,
                                                                   clock: ManualClock) -> None:
    async with boot(settings, clock, "boot-1") as first:
        before = (await first.invoice("10", "TON", ["ton"]),
                  await first.invoice("50", "USDT", ["usdt_trc20"]))
        after = (await first.invoice("7", "TON", ["ton"]),
                 await first.invoice("30", "USDT", ["usdt_trc20"]))
        await pay_both(first, *before)
        for invoice in before:
            await paid_once(first, invoice)
        merchant_id = first.merchant_id
    clock.advance(seconds=30)  # the restart takes a while
    async with boot(settings, clock, "boot-2", merchant_id) as second:
        await pay_both(second, *after)
        await second.watchers.poll()  # a further round finds nothing new to credit
        for invoice in (*before, *after):
            await paid_once(second, invoice)
        balances = await second.balances()  # sums to zero per asset
        async with second.container.deps.uow(write=False) as uow:
            assert await uow.unmatched.list(10) == []
    received = {asset: -v for (account, asset), v in balances.items() if account.startswith("external:")}
    assert received == {"TON": 17 * TON, "USDT_TRC20": 80 * USDT}, balances


async def test_the_same_genesis_keeps_the_cursors_a_new_one_resets_them(settings: Settings,
                                                                        clock: ManualClock) -> None:
    ours = cursor_name(parse(settings.ton_receiving_address or "", network="testnet"))
    async with boot(settings, clock, "boot-1") as first:
        async with first.container.deps.uow() as uow:
            await uow.cursors.set(ours, "1000007:abc")
            await uow.commit()
        genesis = first.devnet.genesis
    # The same chain again: nothing to reset.
    async with boot(settings, clock, "boot-1") as again, again.container.deps.uow(write=False) as uow:
        assert await uow.cursors.get(ours) == "1000007:abc"
        assert await uow.cursors.get(GENESIS_CURSOR) == genesis
    async with boot(settings, clock, "boot-2") as other, other.container.deps.uow(write=False) as uow:
        assert await uow.cursors.get(ours) is None
        assert await uow.cursors.get(GENESIS_CURSOR) == other.devnet.genesis != genesis


async def test_a_devnet_database_is_refused_on_a_real_network(settings: Settings,
                                                              clock: ManualClock) -> None:
    mainnet = settings.model_copy(update={"network": "mainnet", "rates": "static"})
    container = await build(mainnet, clock=clock)  # never used with the devnet: fine
    await container.close()
    async with boot(settings, clock, "boot-1"):
        pass
    with pytest.raises(DevnetDatabase, match="used with the devnet"):
        await build(mainnet, clock=clock)


def test_the_cli_refuses_a_devnet_database_on_mainnet(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    async def demo() -> None:
        async with boot(Settings(data_dir=tmp_path), ManualClock(), "boot-1"):
            pass
    asyncio.run(demo())
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KRYPTON_NETWORK", "mainnet")
    monkeypatch.delenv("KRYPTON_DATABASE_URL", raising=False)
    migrate = CliRunner().invoke(cli, ["migrate"])
    # `serve` in its own process: it configures the process's logging for good.
    serve = subprocess.run([sys.executable, "-m", "krypton.cli", "serve"], env=dict(os.environ),
                           capture_output=True, text=True, timeout=120)
    for code, text in ((migrate.exit_code, migrate.output), (serve.returncode, serve.stderr)):
        assert code == 2, text
        assert "used with the devnet" in text and "Traceback" not in text, text
