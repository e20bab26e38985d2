"""Fee sweeps on SQLite and PostgreSQL: Stars moved to the owner's account in the ledger at
their threshold; an on-chain asset sent to the treasury by the real signer on the devnet and
put back when the signer refuses; `krypton fees` printing the figures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from krypton.adapters.db.payouts import sweep_book
from krypton.app import fee_sweeps
from krypton.app.fee_sweeps import SweepKit, SweepStatus
from krypton.bootstrap import Container, build
from krypton.cli.main import app
from krypton.config import Settings
from krypton.domain import ledger
from krypton.domain.ledger import JournalEntry, Posting
from tests.app.test_payouts import Rig, rig, socket_dir  # noqa: F401 - the signer rig fixtures
from tests.support.clock import ManualClock

TON = 10**9
TREASURY = "0:" + "7e" * 32


async def fees_in(container: Container, asset: str, amount: int) -> None:
    """Platform fees booked, as settlements book them."""
    now = container.deps.clock.now()
    async with container.deps.uow() as uow:
        await uow.ledger.post(JournalEntry("test_fee", container.deps.ids.new("fee"), (
            Posting(ledger.external(asset), asset, -amount),
            Posting(ledger.fees(asset), asset, amount))), now)
        await uow.commit()


async def balance(container: Container, account: str, asset: str) -> int:
    async with container.deps.uow(write=False) as uow:
        return (await uow.ledger.balances(account)).get((account, asset), 0)


async def test_stars_fees_are_swept_in_the_ledger_at_the_threshold(container: Container) -> None:
    kit = SweepKit(sweep_book, None, {"XTR": 1_000}, None)
    await fees_in(container, "XTR", 999)
    assert await fee_sweeps.sweep_due(container.deps, kit) == 0  # below the threshold
    await fees_in(container, "XTR", 1)

    assert await fee_sweeps.sweep_due(container.deps, kit) == 1
    assert await balance(container, ledger.fees("XTR"), "XTR") == 0
    assert await balance(container, ledger.owner("XTR"), "XTR") == 1_000
    [line] = await fee_sweeps.report(container.deps, kit, ["XTR"])
    assert (line.accumulated, line.held, line.swept, line.pending) == (1_000, 0, 1_000, 0)
    assert await fee_sweeps.sweep_due(container.deps, kit) == 0  # nothing left to sweep


async def test_an_on_chain_sweep_waits_without_a_treasury(container: Container) -> None:
    kit = SweepKit(sweep_book, None, {"USDT_TON": 10}, None)
    await fees_in(container, "USDT_TON", 50)
    assert await fee_sweeps.sweep_due(container.deps, kit) == 0
    assert await balance(container, ledger.fees("USDT_TON"), "USDT_TON") == 50


async def test_fees_are_swept_to_the_treasury_through_the_signer(rig: Rig) -> None:  # noqa: F811
    container = rig.container
    kit = SweepKit(sweep_book, rig.kit.signer, {"TON": 5 * TON}, TREASURY)
    await fees_in(container, "TON", 7 * TON)

    assert await fee_sweeps.sweep_due(container.deps, kit) >= 1  # booked and sent
    async with container.deps.uow(write=False) as uow:
        [sweep] = await sweep_book(uow).in_status(list(SweepStatus), 10)
    assert (sweep.status, sweep.amount, sweep.destination) == (SweepStatus.SENT, 7 * TON, TREASURY)
    assert await balance(container, ledger.fees("TON"), "TON") == 0

    await rig.land()
    assert await fee_sweeps.sweep_due(container.deps, kit) == 1
    async with container.deps.uow(write=False) as uow:
        done = await sweep_book(uow).get(sweep.id)
    assert done is not None and done.status is SweepStatus.SWEPT
    [line] = await fee_sweeps.report(container.deps, kit, ["TON"])
    assert (line.accumulated, line.held, line.swept, line.pending) == (7 * TON, 0, 7 * TON, 0)


async def test_a_sweep_the_signer_refuses_puts_the_fees_back(rig: Rig) -> None:  # noqa: F811
    container = rig.container
    kit = SweepKit(sweep_book, rig.kit.signer, {"TON": TON}, TREASURY)
    await fees_in(container, "TON", 500 * TON)  # over the rig's 100 TON per-transfer limit
    await fee_sweeps.sweep_due(container.deps, kit)
    async with container.deps.uow(write=False) as uow:
        [sweep] = await sweep_book(uow).in_status(list(SweepStatus), 10)
    assert sweep.status is SweepStatus.FAILED and "over_transfer_limit" in (sweep.failure or "")
    assert await balance(container, ledger.fees("TON"), "TON") == 500 * TON


def test_krypton_fees_prints_accumulated_swept_and_pending(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        fee_sweep_thresholds={"XTR": 100, "USDT_TON": 10**9})

    async def prepare() -> None:
        container = await build(settings, clock=ManualClock())
        try:
            await fees_in(container, "XTR", 150)
            await fee_sweeps.sweep_due(container.deps, container.sweep_kit())
            await fees_in(container, "XTR", 20)
            await fees_in(container, "USDT_TON", 2_500_000)
        finally:
            await container.close()
    asyncio.run(prepare())
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KRYPTON_DATABASE_URL", db_url)
    monkeypatch.setenv("KRYPTON_FEE_SWEEP_THRESHOLDS", json.dumps({"XTR": 100, "USDT_TON": 10**9}))

    runner = CliRunner()
    shown = runner.invoke(app, ["fees", "--no-contracts", "--json"])
    assert shown.exit_code == 0, shown.output
    figures = {a["asset"]: a for a in json.loads(shown.output)["assets"]}
    assert figures["XTR"] == {"asset": "XTR", "accumulated": "170", "held": "20", "swept": "150",
                              "pending_sweep": "0", "threshold": "100"}
    assert figures["USDT_TON"]["held"] == "2.5" and figures["USDT_TON"]["threshold"] == "1000"

    table = runner.invoke(app, ["fees", "--no-contracts"])
    assert table.exit_code == 0, table.output
    row = next(line for line in table.output.splitlines() if "XTR" in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]] == ["XTR", "170", "20", "150", "0", "100"]
    assert "asset" in table.output  # the header (the others wrap in a narrow terminal)
