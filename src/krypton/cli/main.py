"""The `krypton` command line (Typer + Rich): the root command and its groups."""

from __future__ import annotations

import typer

from krypton.cli import (
    apikey,
    backup,
    contract,
    devnet,
    doctor,
    fees,
    keys,
    merchant,
    operations,
    server,
    signer,
    stars,
    telegram,
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
merchant.app.command("telegram-link")(telegram.telegram_link)
app.add_typer(telegram.app, name="telegram")
app.add_typer(apikey.app, name="apikey")
app.add_typer(contract.app, name="contract")
app.add_typer(devnet.app, name="devnet")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(stars.app, name="stars")
app.add_typer(keys.app, name="keys")
app.add_typer(user.app, name="user")
app.add_typer(signer.app, name="signer")
app.add_typer(backup.app, name="backup")
app.command()(backup.restore)
app.command()(fees.fees)
