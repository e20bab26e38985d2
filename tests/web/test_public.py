"""The payer's view of an invoice: no key, and never the merchant's internals."""

from __future__ import annotations

from datetime import datetime

import httpx

from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from tests.conftest import auth
from tests.web.helpers import API, create_invoice, error_of, pay

PUBLIC_FIELDS = {"id", "status", "exception", "amount", "currency", "description", "payment_options",
                 "amount_paid", "asset", "amount_due", "confirming", "expires_at", "redirect_url"}


async def _private_invoice(api: httpx.AsyncClient, merchant: IssuedKey) -> dict[str, object]:
    return await create_invoice(api, merchant, amount="9.99", currency="USD", description="A hat",
                                order_id="secret-order-77", metadata={"customer": "secret-meta-42"},
                                redirect_url="https://shop.example/done")


async def test_public_invoice_needs_no_key(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    created = await _private_invoice(api, merchant)
    response = await api.get(f"{API}/public/invoice/{created['id']}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == PUBLIC_FIELDS
    assert {k: body[k] for k in ("id", "status", "amount", "currency", "description", "amount_paid",
                                 "asset", "redirect_url")} == {
        "id": created["id"], "status": "pending", "amount": "9.99", "currency": "USD",
        "description": "A hat", "amount_paid": "0", "asset": None,
        "redirect_url": "https://shop.example/done"}
    assert body["payment_options"] == created["payment_options"]
    assert (body["exception"], body["amount_due"], body["confirming"]) == (None, None, None)
    assert datetime.fromisoformat(body["expires_at"]) == datetime.fromisoformat(str(created["expires_at"]))


async def test_public_invoice_never_shows_fees_merchant_metadata_or_order(
        api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    created = await _private_invoice(api, merchant)
    response = await api.get(f"{API}/public/invoice/{created['id']}")
    for secret in (merchant.merchant_id, "secret-order-77", "secret-meta-42"):
        assert secret not in response.text, secret
    # Field names, not substrings: random ids and addresses may well contain "fee".
    for name in _keys(response.json()):
        for private in ("fee", "metadata", "order_id", "merchant", "platform"):
            assert private not in name, name


def _keys(body: object) -> set[str]:
    if isinstance(body, dict):
        return set(body) | {k for v in body.values() for k in _keys(v)}
    if isinstance(body, list):
        return {k for v in body for k in _keys(v)}
    return set()


async def test_public_invoice_ignores_a_key_it_does_not_need(api: httpx.AsyncClient,
                                                            merchant: IssuedKey) -> None:
    created = await _private_invoice(api, merchant)
    response = await api.get(f"{API}/public/invoice/{created['id']}", headers=auth("not-a-key"))
    assert response.status_code == 200
    assert "secret-order-77" not in response.text


async def test_public_invoice_shows_payment_progress(api: httpx.AsyncClient, container: Container,
                                                     merchant: IssuedKey) -> None:
    created = await create_invoice(api, merchant, amount="1", currency="TON")
    await pay(container, created["id"], 10**9)
    body = (await api.get(f"{API}/public/invoice/{created['id']}")).json()
    assert (body["status"], body["asset"], body["amount_paid"]) == ("paid", "TON", "1")


async def test_after_a_partial_payment_only_the_rest_in_that_asset_is_asked_for(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey) -> None:
    created = await create_invoice(api, merchant, amount="10", currency="USD",
                                   methods=["ton", "usdt_ton"])
    assert [o["method"] for o in created["payment_options"]] == ["ton", "usdt_ton"]
    ton = next(o for o in created["payment_options"] if o["method"] == "ton")
    assert ton["amount"] == "2"  # 10 USD at the static 5 USD per TON
    # 0.5 TON seen, not yet confirmed: already off what the payer is asked for.
    await pay(container, created["id"], 5 * 10**8, confirmations=0)
    body = (await api.get(f"{API}/public/invoice/{created['id']}")).json()
    [option] = body["payment_options"]
    assert (option["method"], option["amount"]) == ("ton", "1.5")
    assert "amount=1500000000&" in option["deep_link"]
    qr_of_rest = await api.get(f"{API}/public/invoice/{created['id']}/qr/ton.svg")
    assert qr_of_rest.status_code == 200
    other_asset = await api.get(f"{API}/public/invoice/{created['id']}/qr/usdt_ton.svg")
    assert "open now" in error_of(other_asset, 404, "not_found")["message"]
    merchant_view = (await api.get(f"{API}/invoices/{created['id']}", headers=auth(merchant))).json()
    assert merchant_view["payment_options"] == body["payment_options"]


async def test_public_unknown_invoice_is_404(api: httpx.AsyncClient) -> None:
    error_of(await api.get(f"{API}/public/invoice/inv_nope"), 404, "not_found")


async def test_openapi_public_schema_has_no_private_fields(api: httpx.AsyncClient) -> None:
    schema = (await api.get(f"{API}/openapi.json")).json()
    public = schema["components"]["schemas"]["PublicInvoiceOut"]["properties"]
    assert set(public) == PUBLIC_FIELDS
