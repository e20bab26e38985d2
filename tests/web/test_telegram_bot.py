"""The merchant bot through the app: POST /api/v1/merchant/telegram/link-code (a merchant's
owner only), then /link CODE and /invoice posted to /telegram/webhook as Telegram posts
them, the replies sent by aiogram's client to the devnet's fake Bot API. On both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from krypton.adapters.telegram.bot_api import BotApi
from krypton.app import merchants
from krypton.bootstrap import Container
from krypton.devnet.telegram_api import BOT_USERNAME, FakeBotApi
from krypton.domain.roles import Role
from krypton.web import telegram
from tests.conftest import auth
from tests.support.clock import ManualClock
from tests.web.conftest import SignIn, csrf
from tests.web.helpers import API, error_of
from tests.web.live_server import LiveServer

TOKEN = "123456789:AAE-web-bot-token-value_0123456789"
SECRET = "webhook-secret-0123456789"
CHAT = 880_001


@pytest.fixture
async def fake(container: Container, clock: ManualClock) -> AsyncIterator[FakeBotApi]:
    """The fake Bot API, and the container's bot pointed at it before any app is made."""
    fake = FakeBotApi(TOKEN, now=clock.now)
    with LiveServer(fake.app()) as server:
        bot = BotApi(TOKEN, server.url)
        container._stars_bot = bot
        container.settings.telegram_webhook_secret = SecretStr(SECRET)
        yield fake
        await bot.close()


@pytest.fixture
async def hook(fake: FakeBotApi, container: Container) -> AsyncIterator[httpx.AsyncClient]:
    from krypton.web.app import create_app

    app = create_app(container, run_workers=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        yield client


async def post(hook: httpx.AsyncClient, fake: FakeBotApi, text: str,
               secret: str = SECRET) -> httpx.Response:
    update = fake.user_message(CHAT, text)
    return await hook.post("/telegram/webhook", json=update,
                           headers={telegram.SECRET_HEADER: secret})


async def test_the_owner_links_a_chat_and_it_creates_invoices(
        fake: FakeBotApi, hook: httpx.AsyncClient, merchant: merchants.IssuedKey,
        signed_in: SignIn, container: Container) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)

    made = await owner.post(f"{API}/merchant/telegram/link-code", headers=csrf(owner))

    assert made.status_code == 201, made.text
    body = made.json()
    assert body["object"] == "telegram_link_code" and body["merchant_id"] == merchant.merchant_id
    assert body["deep_link"] == f"https://t.me/{BOT_USERNAME}?start={body['code']}"

    linked = await post(hook, fake, f"/link {body['code']}")
    created = await post(hook, fake, "/invoice 7.5 USD")

    assert (linked.status_code, created.status_code) == (200, 200)
    replies = fake.texts(CHAT)
    assert "is now linked to" in replies[0]
    invoice_id = replies[1].split("<code>")[1].split("</code>")[0]
    page = await hook.get(f"{API}/invoices/{invoice_id}", headers=auth(merchant))
    assert page.json()["checkout_url"] in replies[1]
    assert (page.json()["amount"], page.json()["currency"]) == ("7.5", "USD")


async def test_only_the_owner_may_make_a_code_and_never_with_an_api_key(
        fake: FakeBotApi, hook: httpx.AsyncClient, merchant: merchants.IssuedKey,
        signed_in: SignIn) -> None:
    for role in (Role.DEVELOPER, Role.VIEWER):
        user = await signed_in(role, merchant.merchant_id)
        error_of(await user.post(f"{API}/merchant/telegram/link-code", headers=csrf(user)),
                 403, "insufficient_permission")
    keyed = await hook.post(f"{API}/merchant/telegram/link-code", headers=auth(merchant))
    assert keyed.status_code in (401, 403), keyed.text


async def test_a_wrong_secret_is_401_and_no_command_runs(
        fake: FakeBotApi, hook: httpx.AsyncClient) -> None:
    response = await post(hook, fake, "/help", secret="wrong-secret")
    assert response.status_code == 401
    assert fake.texts(CHAT) == []


async def test_an_unlinked_chat_is_answered_how_to_link(
        fake: FakeBotApi, hook: httpx.AsyncClient) -> None:
    assert (await post(hook, fake, "/balance")).status_code == 200
    [reply] = fake.texts(CHAT)
    assert reply.startswith("This chat is not linked to a Krypton merchant yet.")
