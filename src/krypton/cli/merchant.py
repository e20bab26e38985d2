"""`krypton merchant ...`: create and list merchants."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from krypton.app import merchants
from krypton.bootstrap import Container
from krypton.cli import support
from krypton.cli.support import out

app = typer.Typer(help="Create and list merchants.", no_args_is_help=True)


@app.command("create")
def merchant_create(
    name: Annotated[str, typer.Option(help="Display name.")],
    fee_bps: Annotated[int | None, typer.Option(help="Platform fee in basis points (100 = 1 %).")] = None,
    ton_address: Annotated[str | None, typer.Option(
        help="Where its TON payments go (default: the platform address).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {\"id\", \"api_key\"} as JSON.")] = False,
) -> None:
    """Create a merchant and its first API key."""
    merchant, key = support.run(lambda c: merchants.create_merchant(
        c.deps, name=name, fee_bps=fee_bps, ton_address=ton_address))
    if as_json:
        typer.echo(json.dumps({"id": merchant.id, "api_key": key.secret}))
    else:
        out.print(f"Merchant [bold]{merchant.id}[/bold] created.")
        out.print(f"API key (shown once): [bold green]{key.secret}[/bold green]")


@app.command("list")
def merchant_list() -> None:
    """List merchants."""
    async def work(c: Container) -> Any:
        async with c.deps.uow(write=False) as uow:
            return await uow.merchants.list()
    table = support.table("id", "name", "fee (bps)", "methods", "TON fee collector")
    for m in support.run(work):
        table.add_row(m.id, m.name, str(m.fee_bps), ", ".join(m.methods), m.ton_collector or "")
    out.print(table)
