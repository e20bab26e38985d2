"""`krypton signer`: the hot-wallet signer, the one process that holds the wallet's key."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import typer

from krypton.adapters.chains.ton.address import parse
from krypton.adapters.signer import keystore
from krypton.adapters.signer.server import SocketServer
from krypton.adapters.signer.wallet import HotWallet, WalletVersion
from krypton.bootstrap import Container
from krypton.cli.support import err, fail, open_container, out, run, settings, table
from krypton.config import Settings

app = typer.Typer(help="The hot-wallet signer: keystore, socket server, audit log.", no_args_is_help=True)


def _keystore_path(chosen: Settings) -> Path:
    return chosen.data_dir / keystore.FILE_NAME


def _prompt_new() -> str:
    first = typer.prompt("New passphrase (12 characters or more)", hide_input=True)
    if typer.prompt("The passphrase again", hide_input=True) != first:
        raise fail("The two passphrases differ; nothing was created.")
    return str(first)


@app.command()
def init() -> None:
    """Create the hot wallet: a new 24-word mnemonic, sealed with your passphrase in
    signer.key in the data folder (mode 0600). Prints the address only; back up the file
    and the passphrase."""
    chosen = settings()
    path = _keystore_path(chosen)
    if path.exists():
        raise fail(f"{path} already exists; the hot wallet is {keystore.read_header(path).address}.")
    try:
        passphrase = keystore.passphrase_from(chosen.network, _prompt_new)
        words = keystore.generate_mnemonic()
        wallet = HotWallet(keystore.private_key(words), WalletVersion(chosen.signer_wallet_version),
                           network=chosen.network)
        address = wallet.address.friendly(bounceable=False, testnet=chosen.network != "mainnet")
        keystore.create(path, words, passphrase, address=address, version=wallet.version.value)
    except keystore.KeystoreError as exc:
        raise fail(str(exc)) from None
    out.print(address)
    err.print(f"Sealed in {path}. Set KRYPTON_SIGNER_ADDRESS={address} for the devnet to fund it.")


@app.command()
def address() -> None:
    """The hot wallet's address (no passphrase needed)."""
    chosen = settings()
    try:
        out.print(keystore.read_header(_keystore_path(chosen)).address)
    except keystore.KeystoreError as exc:
        raise fail(str(exc)) from None


@app.command("run")
def run_signer() -> None:
    """Open the keystore (passphrase from the prompt or KRYPTON_SIGNER_PASSPHRASE_FILE) and
    serve the signer's Unix socket until stopped."""
    chosen = settings()
    path = _keystore_path(chosen)
    try:
        header = keystore.read_header(path)
        passphrase = keystore.passphrase_from(
            chosen.network, lambda: str(typer.prompt("Passphrase", hide_input=True)))
        key = keystore.private_key(keystore.open_words(path, passphrase))
    except keystore.KeystoreError as exc:
        raise fail(str(exc)) from None
    wallet = HotWallet(key, WalletVersion(header.version), network=chosen.network)
    del key, passphrase
    if wallet.address != parse(header.address, network="testnet"):
        # v5r1's wallet id includes the network: a devnet keystore is another wallet on mainnet.
        raise fail(f"The keystore's wallet {header.address} is not this key's wallet on {chosen.network} "
                   f"({wallet.address.raw}); was it created for another network?")

    async def main() -> None:
        container = await open_container(chosen, host_devnet=False)
        signer, close = container.signer(wallet)
        server = SocketServer(signer, chosen.signer_socket_path)
        await server.start()
        err.print(f"Signer for {header.address} listening on {chosen.signer_socket_path}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sender = asyncio.create_task(signer.run())
        try:
            await stop.wait()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            await server.close()
            await close()
            await container.close()
    asyncio.run(main())


@app.command()
def audit(limit: int = typer.Option(20, min=1, max=1000, help="How many signatures to show.")) -> None:
    """The most recent signatures, with the request that caused each."""
    async def work(container: Container) -> None:
        rows = await container.signer_audit(limit)
        shown = table("transfer", "signed at", "seqno", "kind", "amount", "destination", "message hash")
        for row in rows:
            request = row.request
            shown.add_row(row.transfer_id, row.signed_at.isoformat(timespec="seconds"), str(row.seqno),
                          str(request.get("kind")), f"{request.get('amount')} {request.get('asset')}",
                          str(request.get("destination")), row.message_hash)
        out.print(shown)
    run(work)
