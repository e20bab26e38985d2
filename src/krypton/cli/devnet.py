"""`krypton devnet ...`: drive the devnet of a running `krypton serve` / `krypton demo`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer

from krypton.app import collectors
from krypton.bootstrap import Container
from krypton.cli import support
from krypton.cli.support import out
from krypton.config import Settings
from krypton.domain import money
from krypton.domain.assets import METHODS, Chain
from krypton.domain.errors import DomainError

app = typer.Typer(help="Pay invoices and make blocks on the local devnet (network=devnet).",
                  no_args_is_help=True)
def _call(settings: Settings, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """One request to a running server, which `settings` locate like `krypton serve`'s."""
    if settings.network != "devnet":
        raise support.fail(f"The network is '{settings.network}'; devnet commands need network=devnet.")
    try:
        return httpx.post(url, json=body, timeout=10) if body is not None else httpx.get(url, timeout=10)
    except httpx.HTTPError:
        server = url.split("/api/", 1)[0].split("/devnet/", 1)[0]
        raise support.fail(f"No Krypton server answers at {server}; start it with "
                           "`make demo` or `krypton serve` first.") from None


def _answer(response: httpx.Response) -> Any:
    try:
        payload = response.json()
    except ValueError:
        raise support.fail(f"The server answered {response.status_code} without JSON.") from None
    if response.status_code >= 400:
        raise support.fail(payload.get("error", {}).get("message", response.text))
    return payload


def _control(settings: Settings, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the control API of the process hosting the devnet (KRYPTON_DEVNET_URL, else the
    public URL: with several processes only one hosts it)."""
    return _answer(_call(settings, f"{settings.devnet_base}/control{path}", body))


def _payment(settings: Settings, invoice_id: str, method: str, amount: str | None) -> dict[str, Any]:
    """What to send for one of the invoice's options, as the server shows it to payers: the
    command needs no database of its own, so it works from any folder."""
    invoice = _answer(_call(settings, f"{settings.public_url.rstrip('/')}/api/v1/public/invoice/"
                                      f"{quote(invoice_id, safe='')}"))
    option = next((o for o in invoice["payment_options"] if o["method"] == method), None)
    if option is None:
        raise support.fail(f"Invoice {invoice_id} cannot be paid with {method}; it offers "
                           f"{', '.join(o['method'] for o in invoice['payment_options'])}.")
    asset = METHODS[method]
    try:
        units = money.parse_units(amount if amount is not None else option["amount"], asset.decimals)
    except DomainError as error:
        raise support.fail(f"--amount: {error.message}") from None
    body: dict[str, Any] = {"asset": method, "to": option["address"], "amount": units}
    if asset.chain is Chain.TON:
        body["comment"] = option["memo"]
    return body


@app.command()
def pay(
    invoice_id: Annotated[str, typer.Argument(help="Invoice id (inv_...).")],
    method: Annotated[str, typer.Option(help="ton, usdt_ton, usdt_trc20 or stars.")] = "ton",
    amount: Annotated[str | None, typer.Option(help="Decimal amount; default: exactly what is due.")] = None,
    payer: Annotated[str | None, typer.Option("--from", help="Devnet payer (alice, bob, carol).")] = None,
    counterfeit: Annotated[bool, typer.Option(help="Send a counterfeit USDT instead.")] = False,
) -> None:
    """Pay an invoice from a funded devnet wallet, or in Telegram Stars through the devnet's
    fake Bot API (the server's own webhook credits it)."""
    if method not in ("ton", "usdt_ton", "usdt_trc20", "stars"):
        raise support.fail("--method must be ton, usdt_ton, usdt_trc20 or stars.")
    settings = support.settings()
    if method == "stars":
        _pay_stars(settings, invoice_id, amount)
        return
    body = _payment(settings, invoice_id, method, amount)
    if payer:
        body["from"] = payer
    if counterfeit:
        body["counterfeit"] = True
    sent = _control(settings, "/pay", body)
    out.print(f"Sent {sent['amount']} {method} to {sent['to']} ({sent.get('tx_id') or sent.get('tx_hash')}); "
              "it is final after the next block(s). Watch: "
              f"{settings.public_url.rstrip('/')}/api/v1/public/invoice/{invoice_id}")


def _pay_stars(settings: Settings, invoice_id: str, amount: str | None) -> None:
    body: dict[str, Any] = {"invoice": invoice_id}
    if amount is not None:
        try:  # Stars are whole: 0 decimals
            body["amount"] = money.parse_units(amount, METHODS["stars"].decimals)
        except DomainError as error:
            raise support.fail(f"--amount: {error.message}") from None
    paid = _answer(_call(settings, f"{settings.devnet_base}/control/stars/pay", body))
    out.print(f"Paid invoice {invoice_id} in Telegram Stars (charge {paid['charge_id']}). Watch: "
              f"{settings.public_url.rstrip('/')}/api/v1/public/invoice/{invoice_id}")


@app.command()
def blocks(chain: Annotated[str, typer.Option(help="ton or tron.")] = "tron",
           count: Annotated[int, typer.Option(help="How many blocks.", min=1, max=1000)] = 1) -> None:
    """Produce blocks now instead of waiting for the timer."""
    result = _control(support.settings(), "/blocks", {"chain": chain, "count": count})
    out.print(result)


@app.command()
def reorg(n: Annotated[int, typer.Argument(help="How many unsolidified Tron blocks to drop.")]) -> None:
    """Reorganise away the last N not-yet-solidified Tron blocks."""
    out.print(_control(support.settings(), "/reorg", {"n": n}))


@app.command()
def state() -> None:
    """Heads, payer wallets and balances."""
    out.print(_control(support.settings(), "/state"))


@app.command()
def deploy(merchant: Annotated[str, typer.Option("--merchant", help="Merchant id (mer_...).")]) -> None:
    """Deploy the merchant's fee collector (prepared by `krypton contract deploy-info`)."""
    settings = support.settings()

    async def work(c: Container) -> Any:
        return await collectors.prepare(c.deps, merchant, destination=None)
    _, plan = support.run(work)
    result = _control(settings, "/ton/deploy", {"state_init": plan.state_init,
                                                "amount": str(plan.deploy_amount)})
    out.print(f"Deployed the fee collector at {result['address_bounceable']}; the server "
              "activates it within 15 s (or run `krypton contract activate`).")
