"""GET /pay/{id}/ton-connect: the transaction a TON Connect wallet is asked to send, on both
databases, against the devnet's jetton master (get_wallet_address through the provider
layer)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from krypton.adapters.chains.ton.address import parse
from krypton.adapters.chains.ton.cells import cell_from_boc
from krypton.adapters.chains.ton.comments import text_comment
from krypton.adapters.chains.ton.wallet_messages import JETTON_TRANSFER_TON, parse_jetton_transfer
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.config import Settings
from krypton.domain.assets import USDT_TON
from krypton.web.api.instructions import _friendly
from krypton.web.pages import checkout
from tests.web.helpers import create_invoice, error_of

PAYER = "0:" + "a1" * 32


async def test_ton_is_the_exact_amount_to_our_address_with_the_memo(api: httpx.AsyncClient,
                                                                    merchant: IssuedKey) -> None:
    invoice = await create_invoice(api, merchant, amount="1.5", currency="TON")
    ton = next(o for o in invoice["payment_options"] if o["method"] == "ton")
    answer = await api.get(f"/pay/{invoice['id']}/ton-connect", params={"method": "ton"})
    assert answer.status_code == 200, answer.text
    (message,) = answer.json()["messages"]
    assert (message["address"], message["amount"]) == (ton["address"], "1500000000")
    assert text_comment(cell_from_boc(message["payload"])) == ton["memo"]
    assert answer.json()["validUntil"] > 0


async def test_usdt_goes_to_the_payers_own_jetton_wallet_with_the_memo_forwarded(
        api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    from krypton.devnet.ton import jetton_wallet_address

    invoice = await create_invoice(api, merchant, amount="5", currency="USDT", methods=["usdt_ton"])
    (option,) = invoice["payment_options"]
    answer = await api.get(f"/pay/{invoice['id']}/ton-connect", params={"method": "usdt_ton", "owner": PAYER})
    assert answer.status_code == 200, answer.text
    (message,) = answer.json()["messages"]
    owner = parse(PAYER, network="mainnet")
    wallet = jetton_wallet_address(owner, parse(USDT_TON.contract or "", network="mainnet"))
    assert message["address"] == _friendly(wallet.raw, bounceable=True, testnet=False)
    assert message["amount"] == str(JETTON_TRANSFER_TON)
    transfer = parse_jetton_transfer(cell_from_boc(message["payload"]))
    assert transfer is not None
    assert transfer.amount == 5_000_000 and transfer.comment == option["memo"]
    assert transfer.destination == parse(option["address"], network="mainnet")
    assert transfer.response_destination == owner  # the leftover gas goes back to the payer


@pytest.mark.parametrize(("params", "field"), [
    ({"method": "usdt_ton", "owner": "not an address"}, "owner"),
    ({"method": "usdt_ton"}, "owner"),
    ({"method": "usdt_trc20"}, "method"),
    ({"method": "stars"}, "method"),
])
async def test_what_a_wallet_cannot_pay_is_a_sentence(api: httpx.AsyncClient, merchant: IssuedKey,
                                                      params: dict[str, str], field: str) -> None:
    invoice = await create_invoice(api, merchant, amount="9.99", currency="USD")  # every method
    error = error_of(await api.get(f"/pay/{invoice['id']}/ton-connect", params=params), 422,
                     "invalid_request")
    assert error["field"] == field


def _wallet_options(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="wallet-config">(.*?)</script>', page)
    assert found is not None, "the page has no TON Connect options"
    parsed: dict[str, object] = json.loads(html.unescape(found.group(1)))
    return parsed


@pytest.mark.parametrize("link", [None, "https://t.me/KryptonPayBot/pay"])
async def test_inside_telegram_a_wallet_returns_to_the_mini_app_when_its_link_is_set(
        api: httpx.AsyncClient, merchant: IssuedKey, container: Container,
        monkeypatch: pytest.MonkeyPatch, link: str | None) -> None:
    # The wallet library is served off the devnet: a testnet server with it installed.
    monkeypatch.setattr(checkout, "TONCONNECT", Path(__file__))
    settings = container.settings.model_copy(update={"network": "testnet", "telegram_miniapp_link": link})
    invoice = await create_invoice(api, merchant, amount="1", currency="TON")
    app = cast(Any, api._transport).app  # the ASGI app the client talks to
    monkeypatch.setattr(app.state, "settings", settings)
    options = _wallet_options((await api.get(f"/pay/{invoice['id']}")).text)
    assert options["manifestUrl"] == f"{settings.public_url.rstrip('/')}/tonconnect-manifest.json"
    assert options.get("actionsConfiguration") == ({"twaReturnUrl": link} if link else None)


@pytest.mark.parametrize("link", ["http://t.me/bot/app", "https://evil.example/bot", "https://t.me/"])
def test_a_mini_app_link_must_be_a_telegram_link(link: str) -> None:
    with pytest.raises(ValueError, match="telegram_miniapp_link"):
        Settings(telegram_miniapp_link=link)
