"""Invoices: create, retrieve, list (filters and cursor pagination) and cancel."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from krypton.adapters.db import tables
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from tests.conftest import auth
from tests.support.clock import ManualClock
from tests.web.helpers import API, count_rows, create_invoice, error_of, events_of_type, pay, written


async def test_create_returns_201_with_the_invoice(api: httpx.AsyncClient, merchant: IssuedKey,
                                                   clock: ManualClock) -> None:
    response = await api.post(f"{API}/invoices", headers=auth(merchant), json={
        "amount": "9.99", "currency": "USD", "order_id": "order-1", "description": "A hat",
        "metadata": {"sku": "hat-1"}, "expires_in": 600, "redirect_url": "https://shop.example/done"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("inv_")
    assert {k: body[k] for k in ("object", "status", "exception", "amount", "currency", "asset",
                                 "amount_due", "amount_paid", "platform_fee_percentage", "order_id",
                                 "description", "metadata", "redirect_url", "confirmations",
                                 "paid_at")} == {
        "object": "invoice", "status": "pending", "exception": None, "amount": "9.99",
        "currency": "USD", "asset": None, "amount_due": None, "amount_paid": "0",
        "platform_fee_percentage": "1", "order_id": "order-1", "description": "A hat",
        "metadata": {"sku": "hat-1"}, "redirect_url": "https://shop.example/done",
        "confirmations": None, "paid_at": None}
    # Prices convert at the static rates and round up to the asset's smallest unit.
    options = body["payment_options"]
    assert [{k: o[k] for k in ("method", "asset", "amount", "rate")} for o in options] == [
        {"method": "ton", "asset": "TON", "amount": "1.998", "rate": "5.00"},
        {"method": "usdt_ton", "asset": "USDT_TON", "amount": "9.99", "rate": "1.00"},
        {"method": "usdt_trc20", "asset": "USDT_TRC20", "amount": "9.99", "rate": "1.00"},
        {"method": "stars", "asset": "XTR", "amount": "769", "rate": "0.013"},
    ]
    created = datetime.fromisoformat(body["created_at"])
    assert created == clock.now()
    assert datetime.fromisoformat(body["expires_at"]) == created + timedelta(seconds=600)
    assert body["checkout_url"] == f"http://127.0.0.1:8000/pay/{body['id']}"


async def test_create_writes_one_invoice_and_its_created_event(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey) -> None:
    invoices_before, events_before = await written(container)
    body = await create_invoice(api, merchant, methods=["ton"])
    assert await written(container) == (invoices_before + 1, events_before + 1)
    assert await events_of_type(container, "invoice.created") == [body["id"]]


async def test_create_with_chosen_methods_offers_only_those(api: httpx.AsyncClient,
                                                            merchant: IssuedKey) -> None:
    body = await create_invoice(api, merchant, amount="5", currency="USDT", methods=["usdt_trc20"],
                                confirmations=3)
    assert [o["asset"] for o in body["payment_options"]] == ["USDT_TRC20"]
    assert body["confirmations"] == 3


async def test_default_expiry_comes_from_settings(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    body = await create_invoice(api, merchant)
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(body["created_at"])
    assert lifetime == timedelta(seconds=900)


async def test_get_returns_what_create_returned(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    created = await create_invoice(api, merchant, metadata={"a": [1, 2]})
    response = await api.get(f"{API}/invoices/{created['id']}", headers=auth(merchant))
    assert response.status_code == 200
    assert response.json() == created


async def test_get_unknown_invoice_is_404(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    error = error_of(await api.get(f"{API}/invoices/inv_nope", headers=auth(merchant)), 404, "not_found")
    assert "inv_nope" in error["message"]


async def test_list_is_newest_first(api: httpx.AsyncClient, merchant: IssuedKey,
                                    clock: ManualClock) -> None:
    ids = []
    for _ in range(3):
        ids.append((await create_invoice(api, merchant))["id"])
        clock.advance(seconds=1)
    response = await api.get(f"{API}/invoices", headers=auth(merchant))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list" and body["has_more"] is False
    assert [i["id"] for i in body["data"]] == ids[::-1]


async def test_list_pages_through_everything_once(api: httpx.AsyncClient, merchant: IssuedKey,
                                                  clock: ManualClock) -> None:
    ids = []
    for _ in range(5):
        ids.append((await create_invoice(api, merchant))["id"])
        clock.advance(seconds=1)
    pages, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor is not None:
            params["starting_after"] = cursor
        response = await api.get(f"{API}/invoices", params=params, headers=auth(merchant))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(([i["id"] for i in body["data"]], body["has_more"]))
        if not body["has_more"]:
            break
        cursor = body["data"][-1]["id"]
    newest_first = ids[::-1]
    assert pages == [(newest_first[0:2], True), (newest_first[2:4], True), (newest_first[4:], False)]


async def test_pagination_is_stable_when_invoices_share_a_timestamp(
        api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    ids = {(await create_invoice(api, merchant))["id"] for _ in range(5)}  # clock not moved
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    for _ in range(5):
        body = (await api.get(f"{API}/invoices", params=params, headers=auth(merchant))).json()
        seen += [i["id"] for i in body["data"]]
        if not body["has_more"]:
            break
        params["starting_after"] = seen[-1]
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == ids


async def test_list_filters_by_status(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    keep = await create_invoice(api, merchant)
    gone = await create_invoice(api, merchant)
    assert (await api.post(f"{API}/invoices/{gone['id']}/cancel", headers=auth(merchant))).status_code == 200

    async def ids(status: str) -> list[str]:
        response = await api.get(f"{API}/invoices", params={"status": status}, headers=auth(merchant))
        assert response.status_code == 200
        return [i["id"] for i in response.json()["data"]]

    assert await ids("pending") == [keep["id"]]
    assert await ids("cancelled") == [gone["id"]]
    assert await ids("paid") == []


async def test_list_filters_by_order_id(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    first = await create_invoice(api, merchant, order_id="A-1")
    await create_invoice(api, merchant, order_id="A-2")
    await create_invoice(api, merchant)
    response = await api.get(f"{API}/invoices", params={"order_id": "A-1"}, headers=auth(merchant))
    assert [i["id"] for i in response.json()["data"]] == [first["id"]]


async def test_cancel_moves_pending_to_cancelled(api: httpx.AsyncClient, container: Container,
                                                 merchant: IssuedKey) -> None:
    created = await create_invoice(api, merchant)
    response = await api.post(f"{API}/invoices/{created['id']}/cancel", headers=auth(merchant))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    again = await api.get(f"{API}/invoices/{created['id']}", headers=auth(merchant))
    assert again.json()["status"] == "cancelled"
    assert await events_of_type(container, "invoice.cancelled") == [created["id"]]


async def test_cancelling_twice_is_409_and_writes_nothing(api: httpx.AsyncClient, container: Container,
                                                          merchant: IssuedKey) -> None:
    created = await create_invoice(api, merchant)
    first = await api.post(f"{API}/invoices/{created['id']}/cancel", headers=auth(merchant))
    assert first.status_code == 200
    before = await written(container)
    error = error_of(await api.post(f"{API}/invoices/{created['id']}/cancel", headers=auth(merchant)),
                     409, "conflict")
    assert "cancelled" in error["message"]
    assert await written(container) == before


async def test_cancelling_a_paid_invoice_is_409(api: httpx.AsyncClient, container: Container,
                                                merchant: IssuedKey) -> None:
    created = await create_invoice(api, merchant, amount="1", currency="TON")
    await pay(container, created["id"], 1_000_000_000)
    error = error_of(await api.post(f"{API}/invoices/{created['id']}/cancel", headers=auth(merchant)),
                     409, "conflict")
    assert "pending" in error["message"]
    got = await api.get(f"{API}/invoices/{created['id']}", headers=auth(merchant))
    assert got.json()["status"] == "paid"


async def test_cancelling_an_unknown_invoice_is_404(api: httpx.AsyncClient, container: Container,
                                                    merchant: IssuedKey) -> None:
    before = await written(container)
    error_of(await api.post(f"{API}/invoices/inv_nope/cancel", headers=auth(merchant)), 404, "not_found")
    assert await written(container) == before


async def test_paid_invoice_shows_asset_and_amounts(api: httpx.AsyncClient, container: Container,
                                                    merchant: IssuedKey, clock: ManualClock) -> None:
    created = await create_invoice(api, merchant, amount="2", currency="USD")
    await pay(container, created["id"], 400_000_000)  # 0.4 TON at 5.00 USD
    body = (await api.get(f"{API}/invoices/{created['id']}", headers=auth(merchant))).json()
    assert (body["status"], body["asset"], body["amount_due"], body["amount_paid"]) == \
        ("paid", "TON", "0.4", "0.4")
    assert datetime.fromisoformat(body["paid_at"]) == clock.now()


@pytest.mark.parametrize("count", [0, 1])
async def test_invoice_rows_match_what_the_list_returns(api: httpx.AsyncClient, container: Container,
                                                        merchant: IssuedKey, count: int) -> None:
    for _ in range(count):
        await create_invoice(api, merchant)
    listed = (await api.get(f"{API}/invoices", headers=auth(merchant))).json()["data"]
    assert len(listed) == count == await count_rows(container, tables.invoices)



async def test_each_option_says_where_and_how_to_pay(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    created = (await api.post(f"{API}/invoices", headers=auth(merchant), json={
        "amount": "9.99", "currency": "USD"})).json()
    ton, usdt_ton, usdt_trc20, stars = created["payment_options"]
    memo = ton["memo"]
    assert memo.startswith("KR-") and len(memo) == 11 and usdt_ton["memo"] == memo
    assert ton["address"].startswith("UQ") and usdt_ton["address"] == ton["address"]
    assert ton["deep_link"] == f"ton://transfer/{ton['address']}?amount=1998000000&text={memo}"
    assert usdt_ton["deep_link"].startswith(f"ton://transfer/{ton['address']}?jetton=EQ")
    assert "amount=9990000&" in usdt_ton["deep_link"]
    assert usdt_trc20["address"].startswith("T") and usdt_trc20["memo"] is None
    assert stars["address"] is None and stars["qr_url"] is None
    public = (await api.get(f"{API}/public/invoice/{created['id']}")).json()
    assert public["payment_options"] == created["payment_options"]
    qr = await api.get(ton["qr_url"].removeprefix("http://127.0.0.1:8000"))
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml"
    assert qr.text.startswith("<svg")
    missing = await api.get(f"{API}/public/invoice/{created['id']}/qr/stars.svg")
    assert missing.status_code == 404


async def test_every_invoice_gets_its_own_memo_and_deposit_address(
        api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    seen = [(await api.post(f"{API}/invoices", headers=auth(merchant), json={
        "amount": "1", "currency": "USDT"})).json()["payment_options"] for _ in range(5)]
    memos = {options[0]["memo"] for options in seen}
    tron = {options[1]["address"] for options in seen}
    assert len(memos) == 5 and len(tron) == 5
