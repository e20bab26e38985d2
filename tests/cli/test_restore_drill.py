"""The restore drill, on SQLite and on PostgreSQL, through the real commands.

Krypton takes payments on the devnet and credits them; `krypton backup` copies the live
database; more payments arrive and are credited; the machine is lost. `krypton restore`
fills a fresh data folder (a fresh PostgreSQL database), Krypton starts on it, and its chain
watchers resume from the backup's cursors: what arrived after the backup is credited once,
what was credited before it is not credited again, the ledger balances, the webhook secret
still opens with the restored key, and `krypton replay` rebuilds the same read models.

The chain: the devnet lives in the server's memory, not in the database, so a restore does
not roll it back, just as a real chain is not rolled back. The drill keeps the one devnet
object alive across the "disaster" and hands it to the restored server (same genesis, so
`start_devnet` keeps the restored cursors rather than resetting them).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from krypton.adapters.chains.ton.address import parse
from krypton.adapters.db import backup as backups
from krypton.app import devnet_genesis, invoices, merchants, relay
from krypton.bootstrap import Container, build
from krypton.cli import app as cli
from krypton.config import Settings
from krypton.devnet.devnet import Devnet
from krypton.domain.invoice import Invoice
from krypton.domain.webhooks import Endpoint
from krypton.workers.watch import ChainWatch
from tests.support.clock import ManualClock
from tests.support.devnet_rig import DevnetRig
from tests.support.servers import PostgresServer

TON = 10**9
USDT = 10**6
NONCE = "drill"
HOOK = "whe_drill"


@asynccontextmanager
async def boot(settings: Settings, clock: ManualClock, merchant_id: str | None = None,
               devnet: Devnet | None = None) -> AsyncIterator[DevnetRig]:
    """One server process; `devnet`: the chain as it stands (the restored server's)."""
    container = await build(settings, clock=clock, devnet_nonce=NONCE)
    try:
        if devnet is not None:
            assert container.devnet is not None and container.devnet.genesis == devnet.genesis
            container.devnet = devnet
        await container.start_devnet()
        assert container.devnet is not None
        if merchant_id is None:
            merchant_id = (await merchants.create_merchant(container.deps, name="Drill shop"))[0].id
        chains = container.chains()
        try:
            yield DevnetRig(container, container.devnet, ChainWatch(container.deps, chains), merchant_id)
        finally:
            await chains.aclose()
    finally:
        await container.close()


async def krypton(env: dict[str, str], *args: str) -> tuple[int, str]:
    """The real command line, on a thread of its own (it runs its own event loop) while the
    server keeps running on this one."""
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def env_for(settings: Settings) -> dict[str, str | None]:
    """The settings of one server, as the environment a command is run in."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("KRYPTON_")}
    env["KRYPTON_DATA_DIR"] = str(settings.data_dir)
    env["KRYPTON_DATABASE_URL"] = settings.database_url
    env["COLUMNS"] = "200"  # Rich: one line per row, whatever the terminal
    return env


def due(invoice: Invoice) -> int:
    (option,) = invoice.options
    return option.amount


def pay(rig: DevnetRig, invoice: Invoice) -> None:
    """Pay `invoice` in full on its chain (not yet final: see `finalise`)."""
    if invoice.ton_address is not None:
        rig.devnet.ton.pay_ton("alice", parse(invoice.ton_address, network="testnet"), due(invoice),
                               comment=invoice.memo)
    else:
        assert invoice.tron_address is not None
        rig.devnet.tron.transfer("bob", invoice.tron_address, due(invoice))


def finalise(rig: DevnetRig) -> None:
    rig.devnet.produce("ton")
    rig.devnet.produce("tron", 20)  # solidified: 19 blocks on top


async def payments_of(rig: DevnetRig, invoice: Invoice) -> tuple[str, int, list[str]]:
    deps = rig.container.deps
    now = await invoices.get_invoice(deps, rig.merchant_id, invoice.id)
    async with deps.uow(write=False) as uow:
        payments = [p.status.value for p in await uow.payments.for_invoice(invoice.id)]
    return now.status.value, now.amount_paid, payments


def received(balances: dict[tuple[str, str], int]) -> dict[str, int]:
    """What the platform received from payers, per asset (the external accounts' debit)."""
    return {asset: -v for (account, asset), v in balances.items() if account.startswith("external:")}


async def add_webhook_endpoint(container: Container, merchant_id: str) -> None:
    """An endpoint whose signing secret is sealed with the data folder's key file."""
    sealed = container.webhook_kit().sealer.seal(b"drill-secret", aad=HOOK.encode())
    async with container.deps.uow() as uow:
        await uow.webhooks.add_endpoint(Endpoint(HOOK, merchant_id, "https://shop.example/hook",
                                                 ("*",), True, sealed, container.deps.clock.now()))
        await uow.commit()


@pytest.fixture
def fresh(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Where the restore goes: a fresh data folder, and on PostgreSQL a fresh empty database
    (not the migrated template: the dump brings its own schema)."""
    folder = tmp_path / "restored"
    if settings.database_url is None or settings.database_url.startswith("sqlite"):
        return settings.model_copy(update={"data_dir": folder, "database_url": None})
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.create_database(f"restored_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}")
    return settings.model_copy(update={"data_dir": folder, "database_url": url})


async def test_restore_drill(settings: Settings, fresh: Settings, clock: ManualClock,
                             tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    async with boot(settings, clock) as live:
        merchant_id, chain = live.merchant_id, live.devnet
        await add_webhook_endpoint(live.container, merchant_id)
        before = [await live.invoice("10", "TON", ["ton"]), await live.invoice("50", "USDT", ["usdt_trc20"])]
        after = [await live.invoice("7", "TON", ["ton"]), await live.invoice("30", "USDT", ["usdt_trc20"])]
        for invoice in before:
            pay(live, invoice)
        finalise(live)
        await live.watchers.poll()
        await relay.catch_up(live.container.deps)

        # Online: the server holds its database open while the backup is taken.
        code, output = await krypton(env_for(settings), "backup", "--dir", str(folder))
        assert code == 0, output
        (made,) = backups.list_backups(folder)
        assert made.key is not None and made.key.stat().st_mode & 0o777 == 0o600
        assert made.path.stat().st_mode & 0o777 == 0o600

        # After the backup: two more payments are credited, and one invoice is created and
        # paid that the backup will not know.
        clock.advance(seconds=60)
        lost = await live.invoice("3", "TON", ["ton"])
        for invoice in (*after, lost):
            pay(live, invoice)
        finalise(live)
        await live.watchers.poll()
        for invoice in (*before, *after, lost):
            assert (await payments_of(live, invoice))[0] == "paid"
    # The machine is lost. A fresh folder (database) receives the backup.
    code, output = await krypton(env_for(fresh), "restore", str(made.path))
    assert code == 0, output
    assert "Ledger: balanced" in output and "Restored" in output, output
    assert (fresh.data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
    code, output = await krypton(env_for(fresh), "restore", str(made.path))
    assert code == 2 and "--force" in output, output  # never over a database by accident

    clock.advance(seconds=600)  # the restore took a while
    async with boot(fresh, clock, merchant_id, devnet=chain) as restored:
        deps = restored.container.deps
        async with deps.uow(write=False) as uow:
            assert await uow.cursors.get(devnet_genesis.GENESIS_CURSOR) == chain.genesis
            hook = await uow.webhooks.endpoint(HOOK)
        assert hook is not None
        sealer = restored.container.webhook_kit().sealer
        assert sealer.open(hook.secret, aad=HOOK.encode()) == b"drill-secret"
        # As restored: only what the backup held is paid.
        for invoice in before:
            assert await payments_of(restored, invoice) == ("paid", due(invoice), ["confirmed"])
        for invoice in after:
            assert (await payments_of(restored, invoice))[2] == []

        # The watchers resume from the backup's cursors: the later transfers, once.
        await restored.watchers.poll()
        await restored.watchers.poll()  # a further round finds nothing new to credit
        for invoice in (*before, *after):
            assert await payments_of(restored, invoice) == ("paid", due(invoice), ["confirmed"])
        async with deps.uow(write=False) as uow:
            unmatched = await uow.unmatched.list(10)
        # The invoice made after the backup is gone; its money is kept for the operator.
        assert [(u["amount"], u["memo"]) for u in unmatched] == [(due(lost), lost.memo)]
        balances = await restored.balances()  # sums to zero per asset
        # Credited: the four invoices' payments exactly once; the lost invoice's is unmatched.
        assert received(balances) == {"TON": 17 * TON, "USDT_TRC20": 80 * USDT}, balances
        await relay.catch_up(deps)
        async with deps.uow(write=False) as uow:
            live_models = await uow.read_models.snapshot()
            summary = await uow.read_models.invoice_summary(merchant_id)
        assert summary["paid"] == 4
    code, output = await krypton(env_for(fresh), "replay")
    assert code == 0, output
    async with boot(fresh, clock, merchant_id, devnet=chain) as again, \
            again.container.deps.uow(write=False) as uow:
        assert await uow.read_models.snapshot() == live_models
