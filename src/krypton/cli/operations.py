"""`krypton unmatched` and `krypton replay`: what the operator looks after."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from krypton.app import relay
from krypton.bootstrap import Container
from krypton.cli import support
from krypton.cli.support import out


def unmatched(limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=1000)] = 50,
              ) -> None:
    """Transfers that paid no invoice (unknown memo or address, wrong asset, too late,
    counterfeit token): kept for the operator, never credited elsewhere."""
    async def work(c: Container) -> Any:
        async with c.deps.uow(write=False) as uow:
            return await uow.unmatched.list(limit)
    rows = support.run(work)
    if not rows:
        out.print("No unmatched transfers.")
        return
    table = support.table("tx", "chain", "asset", "amount", "to", "memo", "reason", "invoice", "seen")
    for u in rows:
        table.add_row(u["tx_id"], u["chain"], u["asset"], str(u["amount"]), u["destination"],
                      u["memo"] or "", u["reason"], u["invoice_id"] or "", u["observed_at"].isoformat())
    out.print(table)


def replay() -> None:
    """Rebuild every read model from the event log."""
    async def work(c: Container) -> int:
        async with c.deps.uow(write=False) as uow:
            total = await uow.events.count()
        with Progress(TextColumn("Replaying events"), BarColumn(), MofNCompleteColumn(),
                      console=out) as bar:
            task = bar.add_task("replay", total=total)
            return await relay.rebuild(c.deps, progress=lambda n: bar.advance(task, n))
    out.print(f"Rebuilt read models from {support.run(work)} events.")
