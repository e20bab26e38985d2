"""The `krypton` command line (Typer + Rich): the root command and its groups."""

from __future__ import annotations

import typer

from krypton.cli import (
    apikey,
    contract,
    devnet,
    doctor,
    keys,
    merchant,
    operations,
    server,
    user,
    webhooks,
    worker,
)

app = typer.Typer(help="Krypton: payments in TON, USDT and Telegram Stars.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
for command in (server.serve, worker.worker, server.demo, server.migrate, operations.unmatched,
                operations.replay, doctor.doctor):
    app.command()(command)
app.add_typer(merchant.app, name="merchant")
app.add_typer(apikey.app, name="apikey")
app.add_typer(contract.app, name="contract")
app.add_typer(devnet.app, name="devnet")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(keys.app, name="keys")
app.add_typer(user.app, name="user")
