"""Tenant isolation: one merchant's key never sees or touches another merchant's data."""

from __future__ import annotations

import httpx
import pytest

from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from tests.conftest import auth
from tests.web.conftest import Paid
from tests.web.helpers import API, create_invoice, error_of, written

FOREIGN = [
    ("GET", "/invoices/{invoice_id}"),
    ("GET", "/invoices/{invoice_id}/payments"),
    ("GET", "/payments/{payment_id}"),
    ("GET", "/settlements/{settlement_id}"),
    ("POST", "/invoices/{invoice_id}/cancel"),
    ("POST", "/invoices/{pending_id}/cancel"),
]


@pytest.mark.parametrize(("method", "path"), FOREIGN)
async def test_other_merchants_resources_are_404(api: httpx.AsyncClient, container: Container,
                                                 merchant: IssuedKey, other: IssuedKey, paid: Paid,
                                                 method: str, path: str) -> None:
    pending = await create_invoice(api, merchant)
    url = API + path.format(invoice_id=paid.invoice_id, payment_id=paid.payment_id,
                            settlement_id=paid.settlement_id, pending_id=pending["id"])
    before = await written(container)
    error_of(await api.request(method, url, headers=auth(other)), 404, "not_found")
    assert await written(container) == before
    # ...while the owner still gets it.
    owner = await api.request(method, url, headers=auth(merchant))
    assert owner.status_code in (200, 409), owner.text


async def test_foreign_cancel_leaves_the_invoice_pending(api: httpx.AsyncClient, merchant: IssuedKey,
                                                         other: IssuedKey) -> None:
    pending = await create_invoice(api, merchant)
    await api.post(f"{API}/invoices/{pending['id']}/cancel", headers=auth(other))
    got = await api.get(f"{API}/invoices/{pending['id']}", headers=auth(merchant))
    assert got.json()["status"] == "pending"


async def test_lists_hold_only_own_data(api: httpx.AsyncClient, merchant: IssuedKey, other: IssuedKey,
                                        paid: Paid) -> None:
    await create_invoice(api, merchant, order_id="shared-order")
    mine = await create_invoice(api, other, order_id="shared-order")
    for params in ({}, {"order_id": "shared-order"}, {"status": "pending"}, {"status": "paid"}):
        listed = (await api.get(f"{API}/invoices", params=params, headers=auth(other))).json()
        assert all(i["id"] == mine["id"] for i in listed["data"]), params
    assert (await api.get(f"{API}/settlements", headers=auth(other))).json()["data"] == []
    assert (await api.get(f"{API}/balances", headers=auth(other))).json()["balances"] == []


async def test_events_hold_only_own_events(api: httpx.AsyncClient, merchant: IssuedKey, other: IssuedKey,
                                           paid: Paid) -> None:
    theirs = (await api.get(f"{API}/events", params={"limit": 100}, headers=auth(merchant))).json()["data"]
    mine = (await api.get(f"{API}/events", params={"limit": 100}, headers=auth(other))).json()["data"]
    assert [(e["type"], e["subject_id"]) for e in mine] == [("merchant.created", other.merchant_id)]
    assert not {e["id"] for e in theirs} & {e["id"] for e in mine}
    text = str(mine)
    for secret in (paid.invoice_id, paid.payment_id, paid.settlement_id, merchant.merchant_id):
        assert secret not in text


async def test_events_after_another_merchants_event_is_422(api: httpx.AsyncClient, merchant: IssuedKey,
                                                           other: IssuedKey) -> None:
    [theirs] = (await api.get(f"{API}/events", headers=auth(merchant))).json()["data"]
    error = error_of(await api.get(f"{API}/events", params={"after": theirs["id"]}, headers=auth(other)),
                     422, "invalid_request")
    assert error["field"] == "after"


@pytest.mark.parametrize("path", ["/invoices", "/settlements"])
async def test_starting_after_another_merchants_id_is_422(api: httpx.AsyncClient, merchant: IssuedKey,
                                                          other: IssuedKey, paid: Paid, path: str) -> None:
    cursor = paid.invoice_id if path == "/invoices" else paid.settlement_id
    error = error_of(await api.get(API + path, params={"starting_after": cursor}, headers=auth(other)),
                     422, "invalid_request")
    assert error["field"] == "starting_after"


async def test_public_page_of_any_invoice_is_reachable_by_id(api: httpx.AsyncClient,
                                                             merchant: IssuedKey) -> None:
    # The public view is by design keyless (a payer has only the link); it shows nothing private.
    created = await create_invoice(api, merchant)
    assert (await api.get(f"{API}/public/invoice/{created['id']}")).status_code == 200
