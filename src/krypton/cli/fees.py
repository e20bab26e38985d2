"""`krypton fees`: the platform's fees per asset (accumulated, swept, pending sweep) and, for
TON, the fee-collector contracts' get_stats beside them."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from krypton.app import fee_sweeps
from krypton.bootstrap import Container
from krypton.cli import support
from krypton.cli.support import out
from krypton.domain import money
from krypton.domain.assets import ASSETS, TON

# The rails whose fees the ledger holds (TON's sit in the contracts; TON here is what the
# ledger booked outside them, e.g. the network fees the platform paid for payouts).
FEE_ASSETS = ("TON", "USDT_TON", "USDT_TRC20", "XTR")


def _fmt(units: int, asset: str) -> str:
    return money.format_units(units, ASSETS[asset].decimals)


def fees(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    contracts: Annotated[bool, typer.Option(
        "--contracts/--no-contracts", help="Read each active fee collector's get_stats "
        "(through TON Center; on devnet, the running server's devnet).")] = True,
) -> None:
    """Platform fees per asset: accumulated, held (not yet swept), swept to the owner, and
    pending sweep; the threshold that triggers a sweep; and TON's fee collectors' get_stats.

    Stars (XTR) are swept in the ledger only (to owner:XTR): no chain carries them."""
    async def work(c: Container) -> tuple[list[fee_sweeps.FeeLine], list[fee_sweeps.CollectorLine]]:
        lines = await fee_sweeps.report(c.deps, c.sweep_kit(), FEE_ASSETS)
        if not contracts:
            return lines, []
        chain, close = c.collectors_of_server()
        try:
            return lines, await fee_sweeps.collector_lines(c.deps, chain)
        finally:
            await close()
    lines, collectors = support.run(work)
    if as_json:
        typer.echo(json.dumps(_json(lines, collectors)))
        return
    table = support.table("asset", "accumulated", "held", "swept", "pending sweep", "threshold")
    for line in lines:
        threshold = "-" if line.threshold is None else _fmt(line.threshold, line.asset)
        table.add_row(line.asset, *(_fmt(v, line.asset) for v in (
            line.accumulated, line.held, line.swept, line.pending)), threshold)
    out.print(table)
    if not contracts:
        return
    if not collectors:
        out.print("TON: no active fee-collector contract.")
        return
    stats = support.table("fee collector (TON)", "merchant", "accumulated", "collected", "flushed")
    for c in collectors:
        if c.stats is None:
            stats.add_row(c.address, c.merchant_id, f"unreadable: {c.error}", "", "")
            continue
        stats.add_row(c.address, c.merchant_id, *(money.format_units(v, TON.decimals) for v in (
            c.stats.accumulated, c.stats.total_collected, c.stats.total_withdrawn)))
    out.print(stats)


def _json(lines: list[fee_sweeps.FeeLine],
          collectors: list[fee_sweeps.CollectorLine]) -> dict[str, Any]:
    return {
        "assets": [{"asset": x.asset, "accumulated": _fmt(x.accumulated, x.asset),
                    "held": _fmt(x.held, x.asset), "swept": _fmt(x.swept, x.asset),
                    "pending_sweep": _fmt(x.pending, x.asset),
                    "threshold": None if x.threshold is None else _fmt(x.threshold, x.asset)}
                   for x in lines],
        "collectors": [{"address": c.address, "merchant_id": c.merchant_id,
                        "accumulated": None if c.stats is None else _fmt(c.stats.accumulated, "TON"),
                        "total_collected": None if c.stats is None
                        else _fmt(c.stats.total_collected, "TON"),
                        "total_withdrawn": None if c.stats is None
                        else _fmt(c.stats.total_withdrawn, "TON"),
                        "error": c.error} for c in collectors],
    }
