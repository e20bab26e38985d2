"""`krypton stars ...`: reconcile the bot's Stars with the ledger, see and finish refunds."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from krypton.app import refunds as refund_use
from krypton.app import stars_reconcile
from krypton.app.stars_book import Report
from krypton.bootstrap import Container
from krypton.cli import support
from krypton.cli.support import out
from krypton.domain.refund import Refund

app = typer.Typer(help="Telegram Stars money: reconciliation and refunds.", no_args_is_help=True)


@app.command("reconcile")
def reconcile(
    last: Annotated[bool, typer.Option("--last", help="Show the last stored report instead of "
                                       "asking Telegram now.")] = False,
) -> None:
    """Compare Telegram's Stars transactions (getStarTransactions) with the ledger and show
    every difference; exit code 1 when there is any."""
    async def work(c: Container) -> Report | None:
        if last:
            return await stars_reconcile.latest(c.deps, c.stars_books())
        bot = c.stars_bot()
        if bot is None:
            raise support.fail("Telegram Stars has no bot: set KRYPTON_TELEGRAM_BOT_TOKEN.")
        return await stars_reconcile.reconcile(c.deps, c.stars_books(), bot)
    report = support.run(work)
    if report is None:
        out.print("No reconciliation has run yet.")
        return
    out.print(f"Reconciliation {report.id} at {report.created_at.isoformat()}: "
              f"{report.transactions} Telegram transactions, "
              f"{len(report.differences)} differences.")
    if report.clean:
        return
    table = support.table("charge id", "difference", "kind", "telegram", "ledger", "date")
    for d in report.differences:
        table.add_row(d["charge_id"], d["difference"], d["kind"], d.get("telegram_amount") or "",
                      d.get("ledger_amount") or "", d.get("date") or "")
    out.print(table)
    raise typer.Exit(1)


@app.command("refunds")
def refunds(
    invoice: Annotated[str | None, typer.Option(help="This invoice's refunds (inv_...).")] = None,
    resolve: Annotated[bool, typer.Option("--resolve", help="Finish refunds left pending "
                                          "(asks Telegram again; never refunds twice).")] = False,
) -> None:
    """An invoice's refunds, or finish the pending ones."""
    async def work(c: Container) -> list[Refund] | int:
        kit = c.refund_kit()
        if resolve:
            return await refund_use.resolve_pending(c.deps, kit, older_than=timedelta(0))
        if invoice is None:
            raise support.fail("Give --invoice inv_... to list its refunds, or --resolve.")
        async with c.deps.uow(write=False) as uow:
            found = await uow.invoices.get(invoice)
        if found is None:
            raise support.fail(f"No invoice '{invoice}'.")
        return await refund_use.list_refunds(c.deps, kit, found.merchant_id, invoice)
    result = support.run(work)
    if isinstance(result, int):
        out.print(f"{result} pending refunds resolved.")
        return
    if not result:
        out.print("No refunds.")
        return
    table = support.table("refund", "payment", "amount", "status", "failure", "created")
    for r in result:
        table.add_row(r.id, r.payment_id, f"{r.amount} {r.asset}", r.status.value, r.failure or "",
                      r.created_at.isoformat())
    out.print(table)
