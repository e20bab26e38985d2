"""POST /api/v1/invoices/{id}/refund and GET …/refunds, balances' held Stars and Stars
subscriptions asked for at invoice creation, over the API with the fake Bot API."""

from __future__ import annotations

import httpx
import pytest

from krypton.adapters.telegram.bot_api import BotApi, parse_update
from krypton.app import merchants, stars
from krypton.app import subscriptions as subs
from krypton.bootstrap import Container
from krypton.devnet.telegram_api import FakeBotApi
from tests.conftest import auth
from tests.web.conftest import Paid
from tests.web.helpers import API, create_invoice, error_of


@pytest.fixture
def bot(container: Container, bot: BotApi) -> BotApi:
    container._stars_bot = bot  # the server's Stars bot talks to this test's fake
    return bot


async def pay_stars(container: Container, bot: BotApi, fake: FakeBotApi, invoice_id: str) -> str:
    link = await stars.invoice_link(container.deps, bot, invoice_id, links=container.stars_links())

    async def deliver(update: dict[str, object]) -> None:
        parsed = parse_update(update)
        if isinstance(parsed, stars.PreCheckout):
            ok, reason = await stars.answer_pre_checkout(container.deps, parsed)
            await bot.answer_pre_checkout(parsed.query_id, ok, reason)
        elif isinstance(parsed, stars.StarsPayment):
            await stars.record_payment(container.deps, parsed, books=container.stars_books())

    outcome = await fake.pay(link, deliver)
    assert outcome.charge_id is not None
    return outcome.charge_id


async def test_a_stars_payment_is_refunded_once_per_key(
        api: httpx.AsyncClient, container: Container, merchant: merchants.IssuedKey,
        bot: BotApi, fake: FakeBotApi) -> None:
    await merchants.set_fee(container.deps, merchant.merchant_id, 0)  # the held net covers it
    invoice = await create_invoice(api, merchant, amount="300", currency="XTR", methods=["stars"])
    charge_id = await pay_stars(container, bot, fake, invoice["id"])
    balances = (await api.get(f"{API}/balances", headers=auth(merchant))).json()["balances"]
    assert balances == [{"asset": "XTR", "available": "0", "pending": "300", "held": "300"}]
    url = f"{API}/invoices/{invoice['id']}/refund"
    headers = {**auth(merchant), "Idempotency-Key": "refund-1"}

    first = await api.post(url, json={"reason": "out of stock"}, headers=headers)
    again = await api.post(url, json={"reason": "out of stock"}, headers=headers)
    other = await api.post(url, json={"reason": "something else"}, headers=headers)

    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["object"], body["status"], body["amount"], body["asset"]) == (
        "refund", "succeeded", "300", "XTR")
    assert again.json() == body
    error_of(other, 422, "idempotency_key_reused")
    assert fake.charges[charge_id].refunded_at is not None
    listed = (await api.get(f"{API}/invoices/{invoice['id']}/refunds", headers=auth(merchant))).json()
    assert [r["id"] for r in listed["data"]] == [body["id"]]
    shown = (await api.get(f"{API}/invoices/{invoice['id']}", headers=auth(merchant))).json()
    assert shown["status"] == "refunded"
    balances = (await api.get(f"{API}/balances", headers=auth(merchant))).json()["balances"]
    assert balances == [{"asset": "XTR", "available": "0", "pending": "0", "held": "0"}]
    error_of(await api.post(url, json={}, headers=auth(merchant)), 409, "already_refunded")


async def test_a_refund_the_balance_cannot_cover_is_409(
        api: httpx.AsyncClient, container: Container, merchant: merchants.IssuedKey,
        bot: BotApi, fake: FakeBotApi) -> None:
    invoice = await create_invoice(api, merchant, amount="300", currency="XTR", methods=["stars"])
    await pay_stars(container, bot, fake, invoice["id"])

    response = await api.post(f"{API}/invoices/{invoice['id']}/refund", json={},
                              headers=auth(merchant))

    error = error_of(response, 409, "insufficient_balance")
    assert "cannot cover" in error["message"]


async def test_a_chain_refund_needs_the_balance(
        api: httpx.AsyncClient, merchant: merchants.IssuedKey, paid: Paid) -> None:
    """The merchant holds 9.9 TON of the 10 TON paid (the platform kept its fee): refunding the
    whole payment is refused, saying how much more is needed, and nothing changes."""
    response = await api.post(f"{API}/invoices/{paid.invoice_id}/refund", json={},
                              headers=auth(merchant))
    error = error_of(response, 409, "insufficient_balance")
    assert "10 TON: 0.1 TON more is needed" in error["message"]
    listed = await api.get(f"{API}/invoices/{paid.invoice_id}/refunds", headers=auth(merchant))
    assert listed.json()["data"] == []


async def test_another_merchants_invoice_is_404(
        api: httpx.AsyncClient, container: Container, paid: Paid) -> None:
    _, other = await merchants.create_merchant(container.deps, name="Other")
    response = await api.post(f"{API}/invoices/{paid.invoice_id}/refund", json={},
                              headers=auth(other))
    error_of(response, 404, "not_found")


async def test_a_stars_subscription_is_asked_for_at_creation(
        api: httpx.AsyncClient, container: Container, merchant: merchants.IssuedKey) -> None:
    invoice = await create_invoice(api, merchant, amount="250", currency="XTR", methods=["stars"],
                                   stars_subscription=True)
    sub = await subs.get(container.deps, container.stars_books(), invoice["id"])
    assert sub is not None and sub.period == 2_592_000 and sub.status.value == "pending"

    for fields, wrong in (({"subscription_period": 86_400}, "subscription_period"),
                          ({"stars_subscription": True, "methods": ["ton", "stars"]}, "methods"),
                          ({"stars_subscription": True, "currency": "USD", "amount": "5"},
                           "currency"),
                          ({"stars_subscription": True, "amount": "10001"}, "amount")):
        body = {"amount": "250", "currency": "XTR", "methods": ["stars"], **fields}
        response = await api.post(f"{API}/invoices", json=body, headers=auth(merchant))
        assert error_of(response, 422, "invalid_request")["field"] == wrong
