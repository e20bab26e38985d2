"""`krypton contract ...`: a merchant's fee-collector contract (contracts/fee_collector.fc)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from krypton.adapters.chains.provider import ProviderError
from krypton.app import collectors
from krypton.app.ports import CollectorChain
from krypton.bootstrap import Container
from krypton.cli import support
from krypton.cli.support import out
from krypton.domain import money
from krypton.domain.assets import TON

app = typer.Typer(help="Deploy and inspect merchants' fee-collector contracts.", no_args_is_help=True)
T = TypeVar("T")

MerchantOption = Annotated[str, typer.Option("--merchant", help="Merchant id (mer_...).")]


def _fmt(units: int) -> str:
    return money.format_units(units, TON.decimals)


def _ton(text: str, field: str, *, positive: bool = True) -> int:
    return money.parse_units(text, TON.decimals, field=field, positive=positive)


@app.command("deploy-info")
def deploy_info(
    merchant: MerchantOption,
    destination: Annotated[str | None, typer.Option(
        help="The merchant's TON wallet that receives each payment minus the fee "
        "(needed the first time).")] = None,
    min_withdrawal: Annotated[str | None, typer.Option(
        help="TON: fees are sent to the owner once they reach this (default 10, or as "
        "prepared before).")] = None,
    amount: Annotated[str, typer.Option(help="TON sent with the deploy; stays as the "
                                        "contract's storage reserve (at least 0.06).")] = "0.06",
    as_json: Annotated[bool, typer.Option("--json", help="Print it all as JSON.")] = False,
) -> None:
    """Print the merchant's collector: address, state init and a deploy deep link.

    Open the link in the OWNER's wallet (KRYPTON_FEE_COLLECTOR_OWNER, default the platform
    TON address). Once the deploy is on chain, `krypton serve` activates the collector
    within seconds (or run `krypton contract activate`) and new invoices offer TON at it."""
    async def work(c: Container) -> Any:
        return await collectors.prepare(
            c.deps, merchant, destination=destination,
            min_withdrawal=_ton(min_withdrawal, "min_withdrawal", positive=False)
            if min_withdrawal is not None else None,
            deploy_amount=_ton(amount, "amount"))
    collector, plan = support.run(work)
    fields = {
        "merchant_id": collector.merchant_id, "status": collector.status.value,
        "address": plan.address_friendly, "address_raw": plan.address, "owner": plan.owner,
        "destination": plan.destination, "fee_bps": plan.fee_bps,
        "min_withdrawal": _fmt(plan.min_withdrawal), "deploy_amount": _fmt(plan.deploy_amount),
        "state_init": plan.state_init, "deploy_link": plan.deploy_link,
    }
    if as_json:
        typer.echo(json.dumps(fields))
        return
    table = support.table("field", "value")
    for name, value in fields.items():
        table.add_row(name, str(value))
    out.print(table)
    if collector.status.value == "pending":
        out.print("Open the deploy link in the owner's wallet; TON payments go to the contract "
                  "once it is deployed and activated.")


def _with_chain(work: Callable[[Container, CollectorChain], Awaitable[T]]) -> T:
    """Run `work` with a TON Center reader (on devnet: the running server's devnet)."""
    async def main(c: Container) -> T:
        chain, close = c.collectors_of_server()
        try:
            return await work(c, chain)
        except ProviderError as exc:
            where = "the running Krypton server's devnet (start `make demo` first)" \
                if c.settings.network == "devnet" else "TON Center"
            raise support.fail(f"Could not read the contract from {where}: {exc}") from None
        finally:
            await close()
    return support.run(main)


@app.command()
def activate(merchant: MerchantOption) -> None:
    """Check the merchant's collector is deployed and start using it now."""
    collector = _with_chain(lambda c, chain: collectors.activate(c.deps, chain, merchant))
    out.print(f"Fee collector {collector.address} is {collector.status.value}.")


@app.command()
def stats(merchant: MerchantOption,
          as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """The contract's get_stats next to what Krypton's ledger booked."""
    report = _with_chain(lambda c, chain: collectors.report(c.deps, chain, merchant))
    if as_json:
        s = report.stats
        typer.echo(json.dumps({
            "address": report.collector.address, "status": report.collector.status.value,
            "accumulated": str(s.accumulated), "total_collected": str(s.total_collected),
            "total_withdrawn": str(s.total_withdrawn), "payment_count": s.payment_count,
            "last_withdrawal_time": s.last_withdrawal_time, "min_withdrawal": str(s.min_withdrawal),
            "fee_bps": s.fee_bps, "ledger_fees": str(report.ledger_fees),
            "ledger_forwarded": str(report.ledger_forwarded)}))
        return
    s = report.stats
    table = support.table("figure", "value")
    for label, value in [
        ("accumulated (in the contract, not yet flushed)", _fmt(s.accumulated)),
        ("total fees collected (contract)", _fmt(s.total_collected)),
        ("total fees flushed to the owner (contract)", _fmt(s.total_withdrawn)),
        ("payments (contract)", str(s.payment_count)),
        ("fees booked by the ledger (settled invoices)", _fmt(report.ledger_fees)),
        ("net forwarded, booked by the ledger", _fmt(report.ledger_forwarded)),
        ("fee_bps / min_withdrawal", f"{s.fee_bps} / {_fmt(s.min_withdrawal)}"),
    ]:
        table.add_row(label, value)
    out.print(f"Fee collector {report.collector.address} ({report.collector.status.value})")
    out.print(table)
