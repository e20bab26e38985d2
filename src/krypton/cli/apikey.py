"""`krypton apikey ...`: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from krypton.app import merchants
from krypton.bootstrap import Container
from krypton.cli import support
from krypton.cli.support import out

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
def apikey_create(
    merchant: Annotated[str, typer.Option(help="Merchant id (mer_...).")],
    scope: Annotated[list[str] | None, typer.Option(help="Scope to grant; repeat. Default: all.")] = None,
) -> None:
    """Create an API key; its secret is shown once."""
    key = support.run(lambda c: merchants.create_api_key(c.deps, merchant, scope or None))
    out.print(f"Key [bold]{key.id}[/bold] scopes: {', '.join(key.scopes)}")
    out.print(f"Secret (shown once): [bold green]{key.secret}[/bold green]")


@app.command("revoke")
def apikey_revoke(key_id: Annotated[str, typer.Argument(help="Key id (key_...).")]) -> None:
    """Revoke an API key."""
    support.run(lambda c: merchants.revoke_api_key(c.deps, key_id))
    out.print(f"Key {key_id} revoked.")


@app.command("list")
def apikey_list(merchant: Annotated[str, typer.Option(help="Merchant id (mer_...).")]) -> None:
    """List a merchant's keys (prefixes only; secrets are never stored)."""
    async def work(c: Container) -> Any:
        async with c.deps.uow(write=False) as uow:
            return await uow.api_keys.for_merchant(merchant)
    table = support.table("id", "prefix", "scopes", "created", "revoked")
    for k in support.run(work):
        table.add_row(k.id, k.prefix + "…", ", ".join(k.scopes), k.created_at.isoformat(),
                      k.revoked_at.isoformat() if k.revoked_at else "")
    out.print(table)
