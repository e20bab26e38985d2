"""Polling mode and the webhook's registration: aiogram's client against the devnet's fake Bot
API over HTTP. The poller deletes the webhook, then handles a pre-checkout, a payment and a
merchant's commands fetched with getUpdates, confirming each by its offset. On both
databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from krypton.adapters.db.merchant_bot import bot_repo
from krypton.adapters.db.stars import SqlStarsLinks
from krypton.adapters.telegram.bot_api import BotApi
from krypton.adapters.telegram.merchant_api import MerchantBotApi
from krypton.adapters.telegram.updates import (
    Poller,
    UpdateHandler,
    WebhookRegistration,
    parse_message,
)
from krypton.app import invoices, merchant_bot, merchants, stars
from krypton.bootstrap import Container
from krypton.devnet.telegram_api import FakeBotApi
from tests.support.clock import ManualClock
from tests.web.live_server import LiveServer

TOKEN = "123456789:AAE-polling-bot-token-value_01234567"
CHAT = 777_001
SECRET = "hook-secret_0123456789"


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
def kit(bot: BotApi) -> merchant_bot.Kit:
    return merchant_bot.Kit(bot_repo, MerchantBotApi(bot), "https://pay.example.com")


@pytest.fixture
def poller(container: Container, bot: BotApi, kit: merchant_bot.Kit) -> Poller:
    assert isinstance(kit.messenger, MerchantBotApi)
    return Poller(container.deps, kit.messenger, UpdateHandler(container.deps, bot, kit),
                  timeout=0)


async def status_of(container: Container, invoice_id: str) -> str:
    async with container.deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(invoice_id)
    assert invoice is not None
    return invoice.status.value


async def test_polling_handles_a_payment_and_commands_in_order(
        container: Container, bot: BotApi, fake: FakeBotApi, kit: merchant_bot.Kit,
        poller: Poller) -> None:
    fake.webhook_url = "https://old.example.com/telegram/webhook"  # set before: deleted first
    merchant, _ = await merchants.create_merchant(container.deps, name="Poll shop")
    invoice_id = str((await invoices.create_invoice(
        container.deps, merchant.id,
        invoices.InvoiceRequest(amount="50", currency="XTR", methods=["stars"]),
        view=lambda i: i.id)).view)
    link = await stars.invoice_link(container.deps, bot, invoice_id,
                                    links=SqlStarsLinks(container.db))
    code = (await merchant_bot.create_link_code(container.deps, kit, merchant.id, None)).code
    fake.user_message(CHAT, f"/start {code}")
    query = fake.pre_checkout_update(link, payer_id=31)
    fake.queue(query)

    assert await poller.step() == 2

    assert fake.webhook_url == ""
    assert fake.answers[query["pre_checkout_query"]["id"]].ok
    assert "is now linked to <b>Poll shop</b>" in fake.texts(CHAT)[0]

    fake.queue(fake.payment_update(fake.invoices[link], "stxch_poll", 31, 50))
    fake.user_message(CHAT, "/balance")
    fake.user_message(CHAT, "/invoice 3 TON")

    assert await poller.step() == 3

    assert await status_of(container, invoice_id) == "paid"
    available, pending = (await merchant_bot.balances(container.deps, merchant.id))["XTR"]
    assert fake.texts(CHAT)[1] == ("<b>Balances</b> (available / pending)\n"
                                   f"XTR: {available} / {pending}")
    assert fake.texts(CHAT)[2].startswith("Invoice <code>inv_")
    # Each update was confirmed: the next poll gets nothing, the offset is stored.
    assert await poller.step() == 0
    assert fake.updates == []
    async with container.deps.uow(write=False) as uow:
        assert await uow.cursors.get(merchant_bot.UPDATES_CURSOR) is not None


async def test_the_shop_learns_the_users_the_bot_meets(
        container: Container, bot: BotApi, fake: FakeBotApi, kit: merchant_bot.Kit) -> None:
    """A Premium gift needs a username's user id, which only an update from that user gives."""
    shop = container.shop()
    assert shop is not None and shop.users is not None
    assert isinstance(kit.messenger, MerchantBotApi)
    poller = Poller(container.deps, kit.messenger,
                    UpdateHandler(container.deps, bot, kit, container.telegram_met()), timeout=0)
    fake.user_message(CHAT, "hello", user_id=4242, username="Alice_Gift")
    fake.user_message(CHAT + 1, "no username here", user_id=4343)
    await poller.step()
    assert await shop.users.user_id("alice_gift") == 4242  # usernames compare lower-cased


async def test_a_malformed_update_is_skipped_and_the_rest_handled(
        container: Container, fake: FakeBotApi, poller: Poller) -> None:
    fake.queue({"update_id": 1, "pre_checkout_query": {"id": "q", "currency": "XTR"}})
    fake.user_message(CHAT, "/help")

    with capture_logs() as logs:
        assert await poller.step() == 2

    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["telegram_update_malformed"]
    assert len(fake.texts(CHAT)) == 1  # the unlinked chat is told how to link
    assert await poller.step() == 0


async def test_a_failing_update_is_fetched_again(
        container: Container, bot: BotApi, fake: FakeBotApi, kit: merchant_bot.Kit) -> None:
    class Failing(UpdateHandler):
        fail = True

        async def handle(self, update: dict[str, Any]) -> None:
            if self.fail:
                raise RuntimeError("database down")
            await super().handle(update)

    handler = Failing(container.deps, bot, kit)
    assert isinstance(kit.messenger, MerchantBotApi)
    poller = Poller(container.deps, kit.messenger, handler, timeout=0)
    fake.user_message(CHAT, "/help")

    with pytest.raises(RuntimeError):
        await poller.step()
    handler.fail = False
    assert await poller.step() == 1
    assert len(fake.texts(CHAT)) == 1


async def test_the_webhook_is_registered_with_its_secret_and_kept(
        fake: FakeBotApi, kit: merchant_bot.Kit) -> None:
    assert isinstance(kit.messenger, MerchantBotApi)
    url = "https://pay.example.com/telegram/webhook"
    registration = WebhookRegistration(kit.messenger, url, SECRET)

    await registration.step()
    assert (fake.webhook_url, fake.webhook_secret) == (url, SECRET)

    fake.webhook_url = ""  # someone deleted it (or polled elsewhere)
    await registration.step()
    assert fake.webhook_url == url


async def test_no_webhook_without_https(fake: FakeBotApi, kit: merchant_bot.Kit) -> None:
    assert isinstance(kit.messenger, MerchantBotApi)
    registration = WebhookRegistration(kit.messenger, "http://127.0.0.1:8000/telegram/webhook",
                                       SECRET)
    with capture_logs() as logs:
        await registration.step()
        await registration.step()
    assert fake.webhook_url == ""
    assert [e["event"] for e in logs] == ["telegram_webhook_not_registered"]  # said once


def test_only_text_messages_with_a_chat_are_commands() -> None:
    message = parse_message({"update_id": 5, "message": {
        "chat": {"id": -100_1, "type": "supergroup", "title": "Shop team"},
        "from": {"id": 9}, "text": "/balance"}})
    assert message == merchant_bot.BotMessage(5, -100_1, "supergroup", "Shop team", 9, "/balance")
    assert parse_message({"update_id": 6, "edited_message": {"chat": {"id": 1}}}) is None
    assert parse_message({"update_id": 7, "message": {"text": "/help"}}) is None
    assert parse_message({"update_id": True, "message": {"chat": {"id": 1}}}) is None
