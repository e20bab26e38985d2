"""GET /pay/{id}/ton-connect: the transaction a TON Connect wallet is asked to send, on both
databases, against the devnet's jetton master (get_wallet_address through the provider
layer)."""

from __future__ import annotations

import httpx
import pytest

from krypton.adapters.chains.ton.address import parse
from krypton.adapters.chains.ton.cells import cell_from_boc
from krypton.adapters.chains.ton.comments import text_comment
from krypton.adapters.chains.ton.wallet_messages import JETTON_TRANSFER_TON, parse_jetton_transfer
from krypton.app.merchants import IssuedKey
from krypton.domain.assets import USDT_TON
from krypton.web.api.instructions import _friendly
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
