"""Balances (derived from the ledger) and the merchant's event feed."""

from __future__ import annotations

from decimal import Decimal

import httpx

from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from tests.conftest import auth
from tests.web.conftest import Paid
from tests.web.helpers import API, create_invoice, error_of, pay


async def test_new_merchant_has_no_balances(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    response = await api.get(f"{API}/balances", headers=auth(merchant))
    assert response.status_code == 200
    assert response.json() == {"object": "balances", "balances": []}


async def test_settled_payment_is_available_net_of_fee(api: httpx.AsyncClient, merchant: IssuedKey,
                                                       paid: Paid) -> None:
    response = await api.get(f"{API}/balances", headers=auth(merchant))
    assert response.json() == {"object": "balances", "balances": [
        {"asset": "TON", "available": "9.9", "pending": "0"}]}


async def test_balances_add_up_per_asset(api: httpx.AsyncClient, container: Container,
                                         merchant: IssuedKey) -> None:
    for n, price in enumerate(["1", "2.5"]):
        invoice = await create_invoice(api, merchant, amount=price, currency="TON")
        await pay(container, invoice["id"], int(Decimal(price) * 10**9), tx=f"tx-{n}")
    body = (await api.get(f"{API}/balances", headers=auth(merchant))).json()
    assert body["balances"] == [{"asset": "TON", "available": "3.465", "pending": "0"}]


async def test_events_start_with_merchant_created(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    response = await api.get(f"{API}/events", headers=auth(merchant))
    assert response.status_code == 200
    body = response.json()
    assert (body["object"], body["has_more"]) == ("list", False)
    assert [(e["type"], e["subject_id"]) for e in body["data"]] == [
        ("merchant.created", merchant.merchant_id)]
    assert body["data"][0]["id"].startswith("evt_")


async def test_events_follow_an_invoice_in_order(api: httpx.AsyncClient, merchant: IssuedKey,
                                                 paid: Paid) -> None:
    body = (await api.get(f"{API}/events", headers=auth(merchant))).json()
    types = [e["type"] for e in body["data"]]
    assert types[:2] == ["merchant.created", "invoice.created"]
    assert types.index("payment.detected") < types.index("payment.confirmed") \
        < types.index("invoice.paid") < types.index("settlement.created")
    created = next(e for e in body["data"] if e["type"] == "invoice.created")
    assert (created["subject_id"], created["data"]["status"]) == (paid.invoice_id, "pending")
    settled = next(e for e in body["data"] if e["type"] == "settlement.created")
    # Amounts are decimal strings of the asset, as everywhere in the API.
    assert (settled["subject_id"], settled["data"]["gross"], settled["data"]["fee"]) == \
        (paid.settlement_id, "10", "0.1")
    assert created["data"]["price_amount"] == "10"
    detected = next(e for e in body["data"] if e["type"] == "payment.detected")
    assert (detected["data"]["asset"], detected["data"]["amount"]) == ("TON", "10")


async def test_events_page_with_after_and_limit(api: httpx.AsyncClient, merchant: IssuedKey,
                                                paid: Paid) -> None:
    everything = [e["id"] for e in (await api.get(f"{API}/events", params={"limit": 100},
                                                  headers=auth(merchant))).json()["data"]]
    assert len(everything) > 3
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        response = await api.get(f"{API}/events", params=params, headers=auth(merchant))
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["data"]) <= 2
        seen += [e["id"] for e in body["data"]]
        if not body["has_more"]:
            break
        params["after"] = seen[-1]
    assert seen == everything


async def test_events_after_the_last_one_is_empty(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    [last] = (await api.get(f"{API}/events", headers=auth(merchant))).json()["data"]
    response = await api.get(f"{API}/events", params={"after": last["id"]}, headers=auth(merchant))
    assert response.json() == {"object": "list", "data": [], "has_more": False}


async def test_events_after_unknown_id_is_422(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    error = error_of(await api.get(f"{API}/events", params={"after": "evt_nope"}, headers=auth(merchant)),
                     422, "invalid_request")
    assert (error["field"], "evt_nope" in error["message"]) == ("after", True)


async def test_events_filtered_by_type(api: httpx.AsyncClient, merchant: IssuedKey, paid: Paid) -> None:
    wanted = [("type", "invoice.paid"), ("type", "settlement.created")]
    body = (await api.get(f"{API}/events", params=wanted, headers=auth(merchant))).json()
    assert [(e["type"], e["subject_id"]) for e in body["data"]] == [
        ("invoice.paid", paid.invoice_id), ("settlement.created", paid.settlement_id)]
    one = (await api.get(f"{API}/events", params=[*wanted, ("limit", 1)], headers=auth(merchant))).json()
    assert [e["type"] for e in one["data"]] == ["invoice.paid"] and one["has_more"] is True
    rest = (await api.get(f"{API}/events", params=[*wanted, ("after", one["data"][0]["id"])],
                          headers=auth(merchant))).json()
    assert [e["type"] for e in rest["data"]] == ["settlement.created"] and rest["has_more"] is False


async def test_events_of_an_unknown_type_are_a_clear_422(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    error = error_of(await api.get(f"{API}/events", params={"type": "invoice.payed"},
                                   headers=auth(merchant)), 422, "invalid_request")
    assert error["field"] == "type"
    assert "invoice.payed" in error["message"] and "invoice.paid" in error["message"]


async def test_a_short_payment_is_an_underpaid_event(api: httpx.AsyncClient, container: Container,
                                                     merchant: IssuedKey) -> None:
    invoice = await create_invoice(api, merchant, amount="10", currency="TON")
    await pay(container, invoice["id"], 4 * 10**9, tx="tx-a")
    await pay(container, invoice["id"], 3 * 10**9, tx="tx-b")
    body = (await api.get(f"{API}/events", params={"type": "invoice.underpaid"},
                          headers=auth(merchant))).json()
    assert [(e["subject_id"], e["data"]["amount_detected"], e["data"]["amount_remaining"])
            for e in body["data"]] == [(invoice["id"], "4", "6"), (invoice["id"], "7", "3")]
    await pay(container, invoice["id"], 3 * 10**9, tx="tx-c")  # the rest: paid, no new one
    again = (await api.get(f"{API}/events", params={"type": "invoice.underpaid"},
                           headers=auth(merchant))).json()
    assert len(again["data"]) == 2
