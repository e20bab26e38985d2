"""POST /telegram/webhook: Telegram's updates for Stars through the app, the pre-checkout
answered by aiogram's client to the devnet's fake Bot API (over HTTP, in this process)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from krypton.adapters.db.stars import SqlStarsLinks
from krypton.adapters.telegram.bot_api import BotApi
from krypton.app import invoices, merchants, stars
from krypton.bootstrap import Container
from krypton.devnet.telegram_api import FakeBotApi, webhook
from krypton.web import telegram
from tests.support.clock import ManualClock
from tests.web.live_server import LiveServer

TOKEN = "123456789:AAE-devnet-secret-token-value_0123456"
SECRET = "webhook-secret-0123456789"
URL = "http://testserver/telegram/webhook"


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeBotApi]:
    yield FakeBotApi(TOKEN, now=clock.now)


@pytest.fixture
async def bot(fake: FakeBotApi) -> AsyncIterator[BotApi]:
    with LiveServer(fake.app()) as server:
        client = BotApi(TOKEN, server.url)
        yield client
        await client.close()


@pytest.fixture
async def client(container: Container, bot: BotApi) -> AsyncIterator[httpx.AsyncClient]:
    from krypton.web.app import create_app

    # web/app.py wires the webhook to the container's bot and secret: this test's ones.
    container._stars_bot = bot
    container.settings.telegram_webhook_secret = SecretStr(SECRET)
    app = create_app(container, run_workers=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def stars_link(container: Container, bot: BotApi, amount: str = "250",
                     **kw: Any) -> tuple[str, str]:
    merchant, _ = await merchants.create_merchant(container.deps, name="Stars shop")
    invoice_id = str((await invoices.create_invoice(
        container.deps, merchant.id,
        invoices.InvoiceRequest(amount=amount, currency="XTR", methods=["stars"], **kw),
        view=lambda i: i.id)).view)
    link = await stars.invoice_link(container.deps, bot, invoice_id,
                                    links=SqlStarsLinks(container.db))
    return invoice_id, link


async def counts(container: Container, invoice_id: str) -> tuple[str, int, int]:
    async with container.deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(invoice_id)
        payments = await uow.payments.for_invoice(invoice_id)
        settlements = await uow.settlements.for_invoice(invoice_id)
    assert invoice is not None
    return invoice.status.value, len(payments), len(settlements)


async def test_a_payer_pays_through_the_webhook(
        container: Container, bot: BotApi, fake: FakeBotApi, client: httpx.AsyncClient) -> None:
    invoice_id, link = await stars_link(container, bot)

    outcome = await fake.pay(link, webhook(URL, SECRET, client=client))

    assert outcome.answer is not None and outcome.answer.ok and outcome.charge_id
    assert await counts(container, invoice_id) == ("paid", 1, 1)


async def test_successful_payment_delivered_twice_credits_once(
        container: Container, bot: BotApi, fake: FakeBotApi, client: httpx.AsyncClient) -> None:
    invoice_id, link = await stars_link(container, bot, "250")
    update = fake.payment_update(fake.invoices[link], "stxch_twice", 42, 250)
    headers = {telegram.SECRET_HEADER: SECRET}

    first = await client.post("/telegram/webhook", json=update, headers=headers)
    again = await client.post("/telegram/webhook", json=update, headers=headers)

    assert (first.status_code, again.status_code) == (200, 200)
    assert await counts(container, invoice_id) == ("paid", 1, 1)
    async with container.deps.uow(write=False) as uow:
        balances = await uow.ledger.balances()
    assert balances[("external:XTR", "XTR")] == -250  # received once


async def test_pre_checkout_is_declined_for_an_expired_invoice(
        container: Container, bot: BotApi, fake: FakeBotApi, client: httpx.AsyncClient,
        clock: ManualClock) -> None:
    invoice_id, link = await stars_link(container, bot, expires_in=300)
    clock.advance(minutes=6)

    outcome = await fake.pay(link, webhook(URL, SECRET, client=client))

    assert outcome.answer is not None and not outcome.answer.ok
    assert outcome.answer.error_message == "This invoice has expired; it can no longer be paid."
    assert outcome.charge_id is None
    assert await counts(container, invoice_id) == ("pending", 0, 0)


async def test_pre_checkout_is_declined_for_a_wrong_amount(
        container: Container, bot: BotApi, fake: FakeBotApi, client: httpx.AsyncClient) -> None:
    invoice_id, link = await stars_link(container, bot, "250")

    outcome = await fake.pay(link, webhook(URL, SECRET, client=client), total_amount=25)

    assert outcome.answer is not None and not outcome.answer.ok
    assert outcome.answer.error_message == ("The amount does not match: this invoice asks for "
                                            "250 Stars, not 25. Open the payment link again.")
    assert await counts(container, invoice_id) == ("pending", 0, 0)


@pytest.mark.parametrize("header", [None, "", "webhook-secret-0123456788", SECRET + "x"])
async def test_a_wrong_secret_is_401_and_changes_nothing(
        container: Container, bot: BotApi, fake: FakeBotApi, client: httpx.AsyncClient,
        header: str | None) -> None:
    invoice_id, link = await stars_link(container, bot, "250")
    update = fake.payment_update(fake.invoices[link], "stxch_forged", 42, 250)
    headers = {} if header is None else {telegram.SECRET_HEADER: header}

    response = await client.post("/telegram/webhook", json=update, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert SECRET not in response.text
    assert await counts(container, invoice_id) == ("pending", 0, 0)


async def test_other_updates_are_taken_and_malformed_ones_refused(
        client: httpx.AsyncClient) -> None:
    headers = {telegram.SECRET_HEADER: SECRET}
    chat = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/start",
                                        "chat": {"id": 1, "type": "private"}}}
    broken = {"update_id": 2, "pre_checkout_query": {"id": "q", "currency": "XTR"}}

    taken = await client.post("/telegram/webhook", json=chat, headers=headers)
    refused = await client.post("/telegram/webhook", json=broken, headers=headers)
    not_json = await client.post("/telegram/webhook", content=b"{", headers=headers)

    assert taken.status_code == 200
    assert refused.status_code == 400
    assert "pre_checkout_query.from must be an object" in refused.json()["error"]["message"]
    assert not_json.status_code == 400


async def test_a_pre_checkout_that_cannot_be_answered_is_still_taken(
        container: Container, bot: BotApi, client: httpx.AsyncClient) -> None:
    """The fake refuses an answer to a query it never asked: logged, and 200 for Telegram,
    whose retry would come too late to answer anyway."""
    invoice_id, _ = await stars_link(container, bot, "250")
    update = {"update_id": 9, "pre_checkout_query": {
        "id": "never-asked", "from": {"id": 5, "is_bot": False, "first_name": "P"},
        "currency": "XTR", "total_amount": 250, "invoice_payload": invoice_id}}

    response = await client.post("/telegram/webhook", json=update,
                                 headers={telegram.SECRET_HEADER: SECRET})

    assert response.status_code == 200
    assert await counts(container, invoice_id) == ("pending", 0, 0)
