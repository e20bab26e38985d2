"""Telegram Stars wired into the server: settings, the container's bot and webhook secret, the
refusal of a Stars-only invoice without a bot, and the devnet's /control/stars/pay paying an
invoice through the fake Bot API and the server's own webhook (both databases)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from krypton.adapters.chains.rails import ChainRails
from krypton.adapters.telegram.bot_api import BotApi
from krypton.app import invoices, merchants
from krypton.bootstrap import DEVNET_BOT_TOKEN, Container
from krypton.config import Settings
from krypton.domain.errors import DomainError
from tests.web.live_server import LiveServer


def test_a_token_needs_the_webhook_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="KRYPTON_TELEGRAM_WEBHOOK_SECRET is required"):
        Settings(data_dir=tmp_path, telegram_bot_token=SecretStr("1:abc"))
    with pytest.raises(ValidationError, match="letter, digit"):
        Settings(data_dir=tmp_path, telegram_webhook_secret=SecretStr("no spaces allowed"))
    ok = Settings(data_dir=tmp_path, network="testnet", telegram_bot_token=SecretStr("1:abc"),
                  telegram_webhook_secret=SecretStr("s3cret_-"))
    assert ok.telegram_bot and ok.telegram_api_url == "https://api.telegram.org"
    assert not Settings(data_dir=tmp_path, network="testnet").telegram_bot
    assert Settings(data_dir=tmp_path).telegram_bot  # devnet: the fake Bot API


async def test_the_devnet_has_a_bot_and_a_derived_secret(container: Container) -> None:
    bot = container.stars_bot()
    assert isinstance(bot, BotApi) and container.stars_bot() is bot
    assert container.telegram_fake is not None and container.telegram_fake.token == DEVNET_BOT_TOKEN
    secret = container.telegram_webhook_secret()
    assert len(secret) == 64 and secret == container.telegram_webhook_secret()
    container.settings.telegram_webhook_secret = SecretStr("configured")
    assert container.telegram_webhook_secret() == "configured"


async def test_without_a_bot_stars_only_is_refused_and_mixed_drops_stars(container: Container) -> None:
    merchant, _ = await merchants.create_merchant(container.deps, name="No bot")
    rails = ChainRails("devnet", container.settings.ton_receiving_address, None, stars=False)
    deps = dataclasses.replace(container.deps, rails=rails)
    with pytest.raises(DomainError, match="Telegram Stars payments need a Telegram bot") as refused:
        await invoices.create_invoice(deps, merchant.id, invoices.InvoiceRequest(
            amount="100", currency="XTR", methods=["stars"]))
    assert refused.value.code == "rail_not_configured" and refused.value.field == "methods"
    created = await invoices.create_invoice(deps, merchant.id, invoices.InvoiceRequest(
        amount="1", currency="USD", methods=["ton", "stars"]))
    assert created.invoice is not None
    assert [o.method for o in created.invoice.options] == ["ton"]


@pytest.fixture
async def server(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app in process; its bot talks to the container's fake Bot API under a real
    HTTP server (aiogram has no in-process transport), as /devnet/telegram serves it."""
    from krypton.web.app import create_app

    fake = container.telegram_fake
    assert fake is not None
    with LiveServer(fake.app()) as bot_server:
        bot = BotApi(DEVNET_BOT_TOKEN, bot_server.url)
        container._stars_bot = bot
        app = create_app(container, run_workers=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as http:
            yield http
        await bot.close()


async def test_control_stars_pay_pays_through_the_webhook(
        container: Container, server: httpx.AsyncClient) -> None:
    merchant, _ = await merchants.create_merchant(container.deps, name="Stars shop")
    created = await invoices.create_invoice(container.deps, merchant.id, invoices.InvoiceRequest(
        amount="250", currency="XTR", methods=["stars"]))
    assert created.invoice is not None
    invoice_id = created.invoice.id

    short = await server.post("/devnet/control/stars/pay", json={"invoice": invoice_id, "amount": 25})
    assert short.status_code == 409
    assert "asks for 250 Stars, not 25" in short.json()["error"]["message"]

    paid = await server.post("/devnet/control/stars/pay", json={"invoice": invoice_id})
    assert paid.status_code == 201, paid.text
    assert paid.json()["charge_id"] and paid.json()["link"].startswith("https://t.me/$")
    async with container.deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(invoice_id)
        payments = await uow.payments.for_invoice(invoice_id)
    assert invoice is not None and invoice.status.value == "paid"
    assert [(p.amount, p.asset) for p in payments] == [(250, "XTR")]

    again = await server.post("/devnet/control/stars/pay", json={"invoice": invoice_id})
    assert again.status_code == 422 and "paid" in again.json()["error"]["message"]
    unknown = await server.post("/devnet/control/stars/pay", json={"invoice": "inv_nope"})
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "invoice"


async def test_the_webhook_refuses_a_wrong_secret(server: httpx.AsyncClient) -> None:
    response = await server.post("/telegram/webhook", json={"update_id": 1},
                                 headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
    assert response.status_code == 401


async def test_the_checkouts_stars_button_leads_to_the_bots_invoice_link(
        container: Container, server: httpx.AsyncClient) -> None:
    merchant, _ = await merchants.create_merchant(container.deps, name="Stars shop")
    created = await invoices.create_invoice(container.deps, merchant.id, invoices.InvoiceRequest(
        amount="250", currency="XTR", methods=["stars"]))
    assert created.invoice is not None
    page = await server.get(f"/pay/{created.invoice.id}")
    assert f'href="/pay/{created.invoice.id}/stars"' in page.text and "Pay with Telegram Stars" in page.text
    first = await server.get(f"/pay/{created.invoice.id}/stars")
    assert first.status_code == 303 and first.headers["location"].startswith("https://t.me/$")
    again = await server.get(f"/pay/{created.invoice.id}/stars")
    assert again.headers["location"] == first.headers["location"]  # made once, kept
    missing = await server.get("/pay/inv_nope/stars")
    assert missing.status_code == 404
