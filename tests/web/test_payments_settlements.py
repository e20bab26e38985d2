"""Payments and settlements as the merchant reads them; amounts are exact decimal strings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from krypton.app import merchants
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from tests.conftest import auth
from tests.support.clock import ManualClock
from tests.web.conftest import Paid
from tests.web.helpers import API, create_invoice, error_of, pay

TON = 10**9


async def test_invoice_payments_lists_the_payment(api: httpx.AsyncClient, merchant: IssuedKey,
                                                  paid: Paid, clock: ManualClock) -> None:
    response = await api.get(f"{API}/invoices/{paid.invoice_id}/payments", headers=auth(merchant))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["object"], body["has_more"], len(body["data"])) == ("list", False, 1)
    payment = body["data"][0]
    assert {k: payment[k] for k in ("id", "object", "invoice_id", "status", "chain", "tx_id", "index",
                                    "asset", "amount", "destination", "memo", "block", "confirmations",
                                    "required_confirmations", "dust")} == {
        "id": paid.payment_id, "object": "payment", "invoice_id": paid.invoice_id,
        "status": "confirmed", "chain": "ton", "tx_id": "tx-1", "index": 0, "asset": "TON",
        "amount": "10", "destination": "addr", "memo": None, "block": 7, "confirmations": 1,
        "required_confirmations": 1, "dust": False}
    assert datetime.fromisoformat(payment["confirmed_at"]) == clock.now()


async def test_invoice_without_payments_lists_none(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    created = await create_invoice(api, merchant)
    response = await api.get(f"{API}/invoices/{created['id']}/payments", headers=auth(merchant))
    assert response.json() == {"object": "list", "data": [], "has_more": False}


async def test_get_payment_matches_the_invoice_listing(api: httpx.AsyncClient, merchant: IssuedKey,
                                                       paid: Paid) -> None:
    listed = (await api.get(f"{API}/invoices/{paid.invoice_id}/payments", headers=auth(merchant))).json()
    response = await api.get(f"{API}/payments/{paid.payment_id}", headers=auth(merchant))
    assert response.status_code == 200
    assert response.json() == listed["data"][0]


async def test_payments_of_an_unknown_invoice_is_404(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    error_of(await api.get(f"{API}/invoices/inv_nope/payments", headers=auth(merchant)), 404, "not_found")


async def test_unknown_payment_is_404(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    error = error_of(await api.get(f"{API}/payments/pay_nope", headers=auth(merchant)), 404, "not_found")
    assert "pay_nope" in error["message"]


async def test_unknown_settlement_is_404(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    error = error_of(await api.get(f"{API}/settlements/set_nope", headers=auth(merchant)), 404, "not_found")
    assert "set_nope" in error["message"]


async def test_settlement_of_a_paid_invoice(api: httpx.AsyncClient, merchant: IssuedKey, paid: Paid,
                                            clock: ManualClock) -> None:
    response = await api.get(f"{API}/settlements/{paid.settlement_id}", headers=auth(merchant))
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: v for k, v in body.items() if k != "created_at"} == {
        "id": paid.settlement_id, "object": "settlement", "invoice_id": paid.invoice_id,
        "status": "completed", "asset": "TON", "gross_amount": "10", "platform_fee_amount": "0.1",
        "platform_fee_percentage": "1", "net_amount": "9.9", "payout": "balance",
        "net_forwarded_amount": "0", "collector_fee_amount": "0", "collector_address": None}
    assert datetime.fromisoformat(body["created_at"]) == clock.now()


@pytest.mark.parametrize(("fee_bps", "price", "gross", "fee", "net", "percentage"), [
    (100, "10", "10", "0.1", "9.9", "1"),
    (125, "1.234567891", "1.234567891", "0.015432098", "1.219135793", "1.25"),  # fee rounds down
    (333, "0.001", "0.001", "0.0000333", "0.0009667", "3.33"),
    (1, "0.009999999", "0.009999999", "0.000000999", "0.009999", "0.01"),
    (0, "3", "3", "0", "3", "0"),
    (10_000, "2", "2", "2", "0", "100"),
])
async def test_settlement_amounts_split_exactly(api: httpx.AsyncClient, container: Container,
                                                fee_bps: int, price: str, gross: str, fee: str, net: str,
                                                percentage: str) -> None:
    _, key = await merchants.create_merchant(container.deps, name="Fee shop", fee_bps=fee_bps)
    invoice = await create_invoice(api, key, amount=price, currency="TON", methods=["ton"])
    units = int(Decimal(price) * TON)
    await pay(container, invoice["id"], units)
    listed = (await api.get(f"{API}/settlements", headers=auth(key))).json()["data"]
    assert len(listed) == 1
    body = listed[0]
    assert (body["gross_amount"], body["platform_fee_amount"], body["net_amount"],
            body["platform_fee_percentage"]) == (gross, fee, net, percentage)
    # The rule itself, in smallest units: fee = floor(gross * bps / 10000); gross = fee + net.
    gross_u, fee_u, net_u = (int(Decimal(body[k]) * TON)
                             for k in ("gross_amount", "platform_fee_amount", "net_amount"))
    assert gross_u == units
    assert fee_u == gross_u * fee_bps // 10_000
    assert gross_u == fee_u + net_u


async def test_overpaid_invoice_settles_what_was_received(api: httpx.AsyncClient, container: Container,
                                                          merchant: IssuedKey) -> None:
    invoice = await create_invoice(api, merchant, amount="1", currency="TON")
    await pay(container, invoice["id"], 1_500_000_001)
    [body] = (await api.get(f"{API}/settlements", headers=auth(merchant))).json()["data"]
    assert (body["gross_amount"], body["platform_fee_amount"], body["net_amount"]) == \
        ("1.500000001", "0.015", "1.485000001")


async def test_settlements_list_newest_first_and_pages(api: httpx.AsyncClient, container: Container,
                                                       merchant: IssuedKey, clock: ManualClock) -> None:
    settled = []
    for n in range(3):
        invoice = await create_invoice(api, merchant, amount="1", currency="TON")
        await pay(container, invoice["id"], TON, tx=f"tx-{n}")
        settled.append("set_" + invoice["id"].removeprefix("inv_"))
        clock.advance(seconds=1)
    first = (await api.get(f"{API}/settlements", params={"limit": 2}, headers=auth(merchant))).json()
    assert ([s["id"] for s in first["data"]], first["has_more"]) == (settled[:0:-1], True)
    rest = (await api.get(f"{API}/settlements", headers=auth(merchant),
                          params={"limit": 2, "starting_after": first["data"][-1]["id"]})).json()
    assert ([s["id"] for s in rest["data"]], rest["has_more"]) == ([settled[0]], False)


async def test_unpaid_invoice_has_no_settlement(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    await create_invoice(api, merchant)
    assert (await api.get(f"{API}/settlements", headers=auth(merchant))).json()["data"] == []
