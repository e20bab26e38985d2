"""The merchant bot: linking a chat with a one-time code, its commands, and the notifications
of paid / underpaid / expired invoices through the real relay and sender, with aiogram's
client talking to the devnet's fake Bot API over HTTP. On both databases."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from krypton.adapters.db.merchant_bot import bot_repo
from krypton.adapters.telegram.bot_api import BotApi
from krypton.adapters.telegram.merchant_api import MerchantBotApi
from krypton.adapters.telegram.updates import UpdateHandler
from krypton.app import invoices, merchant_bot, merchants, stars
from krypton.app.merchant_bot import BotMessage, Kit, MessageStatus
from krypton.bootstrap import Container
from krypton.devnet.telegram_api import BOT_USERNAME, FakeBotApi
from krypton.domain import merchant_bot as rules
from tests.support.clock import ManualClock

BOT_TOKEN = "123456789:AAE-merchant-bot-token-value_0123456"
PUBLIC = "https://pay.example.com"
CHAT = 555_001


@pytest.fixture
def kit(bot: BotApi) -> Kit:
    return Kit(bot_repo, MerchantBotApi(bot), PUBLIC)


async def shop(container: Container, name: str = "Tea & <Cakes>") -> str:
    merchant, _ = await merchants.create_merchant(container.deps, name=name)
    return merchant.id


_updates = iter(range(1, 1_000_000))


async def say(container: Container, kit: Kit, text: str, chat_id: int = CHAT,
              chat_type: str = "private") -> str | None:
    message = BotMessage(next(_updates), chat_id, chat_type, None, 42, text)
    return await merchant_bot.on_message(container.deps, kit, message, BOT_USERNAME)


async def linked(container: Container, kit: Kit, chat_id: int = CHAT,
                 merchant_id: str | None = None) -> str:
    merchant_id = merchant_id or await shop(container)
    issued = await merchant_bot.create_link_code(container.deps, kit, merchant_id, "usr_test")
    reply = await say(container, kit, f"/link {issued.code}", chat_id)
    assert reply is not None and "is now linked" in reply
    return merchant_id


async def chat_of(container: Container, chat_id: int = CHAT) -> merchant_bot.Chat | None:
    async with container.deps.uow(write=False) as uow:
        return await bot_repo(uow).chat(chat_id)


async def messages_of(container: Container, chat_id: int = CHAT) -> list[merchant_bot.Message]:
    async with container.deps.uow(write=False) as uow:
        return await bot_repo(uow).messages_for(chat_id)


async def stars_invoice(container: Container, merchant_id: str, amount: str = "100",
                        **kw: Any) -> str:
    created = await invoices.create_invoice(
        container.deps, merchant_id,
        invoices.InvoiceRequest(amount=amount, currency="XTR", methods=["stars"], **kw),
        view=lambda i: i.id)
    return str(created.view)


async def pay_stars(container: Container, invoice_id: str, amount: int, charge: str) -> None:
    await stars.record_payment(container.deps, stars.StarsPayment(
        charge_id=charge, currency="XTR", total_amount=amount, payload=invoice_id, payer_id=7,
        paid_at=container.deps.clock.now()))


async def deliver(container: Container, kit: Kit) -> None:
    """One round of the relay, then of the sender: what the worker jobs do."""
    while await merchant_bot.relay(container.deps, kit):
        pass
    await merchant_bot.send_due(container.deps, kit)


# --- linking --------------------------------------------------------------------------

async def test_a_code_links_the_chat_once_and_is_stored_hashed(
        container: Container, kit: Kit) -> None:
    merchant_id = await shop(container)
    issued = await merchant_bot.create_link_code(container.deps, kit, merchant_id, "usr_1")
    assert issued.deep_link == f"https://t.me/{BOT_USERNAME}?start={issued.code}"
    assert issued.expires_at - container.deps.clock.now() == rules.CODE_TTL

    # As typed by a person: lower case, a dash, O for 0 and I for 1 are all the same code.
    typed = issued.code.lower().replace("0", "o").replace("1", "i")
    reply = await say(container, kit, f"/start {typed[:4]}-{typed[4:]}")

    assert reply is not None and "now linked to <b>Tea &amp; &lt;Cakes&gt;</b>" in reply
    chat = await chat_of(container)
    assert chat is not None and (chat.merchant_id, chat.linked_by) == (merchant_id, 42)
    async with container.deps.uow(write=False) as uow:
        stored = await bot_repo(uow).code(rules.code_hash(issued.code))
    assert stored is not None and stored.used_by_chat == CHAT
    assert issued.code not in stored.code_hash  # only the hash is kept

    again = await say(container, kit, f"/link {issued.code}", chat_id=CHAT + 1)
    assert again == "This link code was already used; create a new one in the dashboard."
    assert await chat_of(container, CHAT + 1) is None


@pytest.mark.parametrize(("typed", "expected"), [
    ("ZZZZZZZZZZ", "I don't know this link code."),
    ("short", "That is not a link code"),
    ("", "Send the code with it"),
])
async def test_an_unknown_or_malformed_code_links_nothing(
        container: Container, kit: Kit, typed: str, expected: str) -> None:
    await shop(container)
    reply = await say(container, kit, f"/link {typed}".strip())
    assert reply is not None and reply.startswith(expected)
    assert await chat_of(container) is None


async def test_an_expired_code_links_nothing(
        container: Container, kit: Kit, clock: ManualClock) -> None:
    issued = await merchant_bot.create_link_code(container.deps, kit, await shop(container), None)
    clock.advance(minutes=10)
    reply = await say(container, kit, f"/link {issued.code}")
    assert reply is not None and reply.startswith("This link code has expired")
    assert await chat_of(container) is None


async def test_a_code_for_a_missing_merchant_is_refused(container: Container, kit: Kit) -> None:
    with pytest.raises(Exception, match="No merchant 'mer_nobody'"):
        await merchant_bot.create_link_code(container.deps, kit, "mer_nobody", None)


async def test_several_chats_per_merchant_and_a_chat_moves_to_the_last_code(
        container: Container, kit: Kit) -> None:
    first = await linked(container, kit, CHAT)
    await linked(container, kit, CHAT + 1, first)
    other = await shop(container, "Other")
    issued = await merchant_bot.create_link_code(container.deps, kit, other, None)
    reply = await say(container, kit, f"/link {issued.code}", CHAT + 1)
    assert reply is not None and f"it was linked to merchant <code>{first}</code>" in reply
    async with container.deps.uow(write=False) as uow:
        assert [c.chat_id for c in await bot_repo(uow).chats_of([first])] == [CHAT]
        assert [c.chat_id for c in await bot_repo(uow).chats_of([other])] == [CHAT + 1]


# --- commands ---------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["/balance", "/invoice 5 TON", "/unlink", "/help", "/start"])
async def test_an_unlinked_chat_is_told_how_to_link(
        container: Container, kit: Kit, command: str) -> None:
    assert await say(container, kit, command) == rules.LINK_HOWTO


async def test_balance_shows_available_and_pending_per_asset(
        container: Container, kit: Kit) -> None:
    merchant_id = await linked(container, kit)
    assert await say(container, kit, "/balance") == "No balances yet: nothing has been paid to you."
    await pay_stars(container, await stars_invoice(container, merchant_id, "250"), 250, "ch_1")

    reply = await say(container, kit, f"/balance@{BOT_USERNAME}")

    expected = await merchant_bot.balances(container.deps, merchant_id)
    assert expected and set(expected) == {"XTR"}
    available, pending = expected["XTR"]
    assert reply == f"<b>Balances</b> (available / pending)\nXTR: {available} / {pending}"


async def test_invoice_creates_one_invoice_per_update_and_answers_its_link(
        container: Container, kit: Kit) -> None:
    merchant_id = await linked(container, kit)
    message = BotMessage(9_001, CHAT, "private", None, 42, "/invoice 12,50 USD")

    reply = await merchant_bot.on_message(container.deps, kit, message)
    replay = await merchant_bot.on_message(container.deps, kit, message)  # Telegram again

    assert reply is not None and reply == replay
    invoice_id = reply.split("<code>")[1].split("</code>")[0]
    assert f"{PUBLIC}/pay/{invoice_id}" in reply
    async with container.deps.uow(write=False) as uow:
        page = await uow.invoices.page(merchant_id, status=None, order_id=None, limit=10,
                                       starting_after=None)
    invoice = page[0][0]
    assert [i.id for i in page[0]] == [invoice_id]
    assert (invoice.price_currency, invoice.price_amount) == ("USD", 1250)


async def test_invoice_in_an_asset_is_paid_in_that_asset_only(
        container: Container, kit: Kit) -> None:
    await linked(container, kit)
    reply = await say(container, kit, "/invoice 30 xtr")
    assert reply is not None
    invoice_id = reply.split("<code>")[1].split("</code>")[0]
    async with container.deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(invoice_id)
    assert invoice is not None and [o.method for o in invoice.options] == ["stars"]


@pytest.mark.parametrize(("command", "expected"), [
    ("/invoice", "I need an amount and an asset."),
    ("/invoice 5", "I need an amount and an asset."),
    ("/invoice 5 DOGE", "I don't know the asset <code>DOGE</code>."),
    ("/invoice -5 TON", "I could not create the invoice: amount '-5' is not a plain decimal"),
    ("/invoice 1.0000000001 TON", "I could not create the invoice: amount '1.0000000001' has 10"),
    ("/invoice 5 <b>", "I don't know the asset <code>&lt;b&gt;</code>."),
])
async def test_bad_invoice_input_says_what_to_fix(
        container: Container, kit: Kit, command: str, expected: str) -> None:
    await linked(container, kit)
    reply = await say(container, kit, command)
    assert reply is not None and reply.startswith(expected), reply


async def test_help_unknown_commands_and_plain_text(container: Container, kit: Kit) -> None:
    await linked(container, kit)
    assert await say(container, kit, "/help") == rules.HELP
    assert await say(container, kit, "/refund") == f"I don't know /refund.\n\n{rules.HELP}"
    assert await say(container, kit, "hello") == "Send /help to see what I can do."
    assert await say(container, kit, "hello", chat_type="group") is None
    assert await say(container, kit, "/balance@someone_else_bot", chat_type="group") is None


async def test_unlink_stops_notifications_and_commands(container: Container, kit: Kit) -> None:
    merchant_id = await linked(container, kit)
    invoice_id = await stars_invoice(container, merchant_id)
    await pay_stars(container, invoice_id, 40, "ch_part")  # underpaid: a message is queued
    await merchant_bot.relay(container.deps, kit)

    reply = await say(container, kit, "/unlink")

    assert reply == "This chat is unlinked: no more notifications or commands here."
    assert await chat_of(container) is None
    assert [m.status for m in await messages_of(container)] == [MessageStatus.DROPPED]
    assert await say(container, kit, "/balance") == rules.LINK_HOWTO


# --- notifications ------------------------------------------------------------------------

async def test_paid_underpaid_and_expired_reach_every_linked_chat(
        container: Container, kit: Kit, fake: FakeBotApi, clock: ManualClock) -> None:
    merchant_id = await linked(container, kit, CHAT)
    await linked(container, kit, CHAT + 1, merchant_id)
    stranger = await linked(container, kit, CHAT + 2)  # another merchant's chat hears nothing
    partly = await stars_invoice(container, merchant_id, "100", order_id="A&B <1>")
    paid = await stars_invoice(container, merchant_id, "250")
    lapsed = await stars_invoice(container, merchant_id, "75", expires_in=60)

    await pay_stars(container, partly, 40, "ch_partly")
    await pay_stars(container, paid, 250, "ch_paid")
    clock.advance(minutes=2)
    await invoices.expire_due(container.deps)
    await deliver(container, kit)

    expected = [
        f"⚠️ Invoice <code>{partly}</code> (order A&amp;B &lt;1&gt;) is underpaid: 40 XTR of "
        "100 XTR received, 60 XTR still due (price 100 XTR).",
        f"✅ Invoice <code>{paid}</code> is paid: 250 XTR received for 250 XTR.",
        f"⌛ Invoice <code>{lapsed}</code> expired (price 75 XTR). Nothing was paid.",
    ]
    assert fake.texts(CHAT) == expected
    assert fake.texts(CHAT + 1) == expected
    assert all(m.parse_mode == "HTML" for m in fake.sent[CHAT])
    assert stranger != merchant_id and fake.texts(CHAT + 2) == []
    assert {m.status for m in await messages_of(container)} == {MessageStatus.SENT}

    await deliver(container, kit)  # nothing twice
    assert fake.texts(CHAT) == expected


async def test_a_chat_linked_later_gets_no_history(container: Container, kit: Kit,
                                                   fake: FakeBotApi, clock: ManualClock) -> None:
    merchant_id = await shop(container)
    await pay_stars(container, await stars_invoice(container, merchant_id, "5"), 5, "ch_old")
    clock.advance(seconds=1)
    await linked(container, kit, CHAT, merchant_id)
    await deliver(container, kit)
    assert fake.texts(CHAT) == []


async def test_a_chat_that_blocked_the_bot_is_unlinked(
        container: Container, kit: Kit, fake: FakeBotApi) -> None:
    merchant_id = await linked(container, kit, CHAT)
    await linked(container, kit, CHAT + 1, merchant_id)
    fake.blocked.add(CHAT)
    await pay_stars(container, await stars_invoice(container, merchant_id, "9"), 9, "ch_9")

    await deliver(container, kit)

    assert await chat_of(container, CHAT) is None
    assert [m.status for m in await messages_of(container, CHAT)] == [MessageStatus.DROPPED]
    assert await chat_of(container, CHAT + 1) is not None
    assert len(fake.texts(CHAT + 1)) == 1


class Flaky:
    """The real messenger, except that one chat's sends fail until told otherwise."""

    def __init__(self, real: merchant_bot.Messenger, failing: int) -> None:
        self.real = real
        self.failing: int | None = failing
        self.tries: list[int] = []

    async def send_message(self, chat_id: int, text: str) -> None:
        self.tries.append(chat_id)
        if chat_id == self.failing:
            raise merchant_bot.SendFailed("TelegramNetworkError: timed out")
        await self.real.send_message(chat_id, text)

    async def username(self) -> str | None:
        return await self.real.username()


async def test_a_failing_chat_is_retried_with_backoff_and_holds_up_no_other(
        container: Container, kit: Kit, fake: FakeBotApi, clock: ManualClock) -> None:
    merchant_id = await linked(container, kit, CHAT)
    await linked(container, kit, CHAT + 1, merchant_id)
    flaky = Flaky(kit.messenger, failing=CHAT)
    shaky = Kit(kit.repos, flaky, kit.public_url)
    await pay_stars(container, await stars_invoice(container, merchant_id, "3"), 3, "ch_a")
    await pay_stars(container, await stars_invoice(container, merchant_id, "4"), 4, "ch_b")

    await deliver(container, shaky)

    assert len(fake.texts(CHAT + 1)) == 2  # the healthy chat got both at once
    waiting = await messages_of(container, CHAT)
    assert [(m.status, m.attempts) for m in waiting] == [(MessageStatus.PENDING, 1),
                                                         (MessageStatus.PENDING, 0)]
    assert flaky.tries.count(CHAT) == 1  # the second waits behind the first: order is kept
    first_retry = clock.now() + rules.RETRY_DELAYS[0]
    assert {m.next_attempt_at for m in waiting} == {first_retry}

    await merchant_bot.send_due(container.deps, shaky)  # not due yet: nothing is tried
    assert flaky.tries.count(CHAT) == 1

    clock.advance(seconds=5)
    flaky.failing = None
    await merchant_bot.send_due(container.deps, shaky)
    assert len(fake.texts(CHAT)) == 2
    assert {m.status for m in await messages_of(container, CHAT)} == {MessageStatus.SENT}


async def test_a_message_is_given_up_after_the_schedule(
        container: Container, kit: Kit, clock: ManualClock) -> None:
    merchant_id = await linked(container, kit, CHAT)
    shaky = Kit(kit.repos, Flaky(kit.messenger, failing=CHAT), kit.public_url)
    await pay_stars(container, await stars_invoice(container, merchant_id, "3"), 3, "ch_x")
    await merchant_bot.relay(container.deps, shaky)
    for delay in (*rules.RETRY_DELAYS, rules.RETRY_DELAYS[-1]):
        await merchant_bot.send_due(container.deps, shaky)
        clock.advance(seconds=delay.total_seconds())
    [message] = await messages_of(container, CHAT)
    assert (message.status, message.attempts) == (MessageStatus.FAILED, len(rules.RETRY_DELAYS) + 1)
    assert message.last_error == "TelegramNetworkError: timed out"


# --- the token stays out of errors and logs -------------------------------------------------

async def test_the_token_is_in_no_error_or_log_line(container: Container) -> None:
    dead = BotApi(BOT_TOKEN, "http://127.0.0.1:9")  # nothing listens: every call fails
    kit = Kit(bot_repo, MerchantBotApi(dead), PUBLIC)
    try:
        with pytest.raises(merchant_bot.SendFailed) as failed:
            await kit.messenger.send_message(CHAT, "hi")
        assert BOT_TOKEN not in str(failed.value)
        with capture_logs() as logs:
            update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/help",
                                                  "chat": {"id": CHAT, "type": "private"}}}
            await UpdateHandler(container.deps, dead, kit).handle(update)
        assert [entry["event"] for entry in logs] == ["telegram_reply_failed"]
        assert BOT_TOKEN not in repr(logs)
        assert dead.scrub(f"GET /bot{BOT_TOKEN}/sendMessage") == "GET /bot<token>/sendMessage"
    finally:
        await dead.close()

