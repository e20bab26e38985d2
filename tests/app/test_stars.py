"""Telegram Stars: links, pre-checkout answers and payments, with aiogram's real client
talking to the devnet's fake Bot API over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from krypton.adapters.db.stars import SqlStarsLinks
from krypton.adapters.telegram.bot_api import BotApi, BotApiError, parse_update
from krypton.app import invoices, merchants, stars
from krypton.bootstrap import Container
from krypton.devnet.telegram_api import FakeBotApi
from krypton.domain.errors import Conflict
from tests.support.clock import ManualClock

BOT_TOKEN = "123456789:AAE-devnet-secret-token-value_0123456"


@pytest.fixture
def links(container: Container) -> SqlStarsLinks:
    return SqlStarsLinks(container.db)


async def new_invoice(container: Container, stars_amount: str = "500", **kw: Any) -> str:
    merchant, _ = await merchants.create_merchant(container.deps, name="Stars shop")
    created = await invoices.create_invoice(
        container.deps, merchant.id,
        invoices.InvoiceRequest(amount=stars_amount, currency="XTR", methods=["stars"], **kw),
        view=lambda i: i.id)
    return str(created.view)


def bot_side(container: Container, bot: BotApi) -> Any:
    """What the webhook does with an update, without HTTP in between."""

    async def deliver(update: dict[str, Any]) -> None:
        parsed = parse_update(update)
        if isinstance(parsed, stars.PreCheckout):
            ok, reason = await stars.answer_pre_checkout(container.deps, parsed)
            await bot.answer_pre_checkout(parsed.query_id, ok, reason)
        elif isinstance(parsed, stars.StarsPayment):
            await stars.record_payment(container.deps, parsed)

    return deliver


async def test_the_link_is_made_once_for_the_invoice_amount(
        container: Container, bot: BotApi, links: SqlStarsLinks, fake: FakeBotApi) -> None:
    invoice_id = await new_invoice(container, "500", order_id="A-17")

    first = await stars.invoice_link(container.deps, bot, invoice_id, links=links)
    again = await stars.invoice_link(container.deps, bot, invoice_id, links=links)

    assert first.startswith("https://t.me/$") and again == first
    assert list(fake.invoices) == [first]  # Telegram was asked once
    made = fake.invoices[first]
    assert (made.amount, made.payload, made.title) == (500, invoice_id, "Order A-17")


async def test_no_link_for_an_invoice_stars_cannot_pay(
        container: Container, bot: BotApi, links: SqlStarsLinks, clock: ManualClock) -> None:
    merchant, _ = await merchants.create_merchant(container.deps, name="TON only")
    ton_only = (await invoices.create_invoice(
        container.deps, merchant.id,
        invoices.InvoiceRequest(amount="1", currency="TON", methods=["ton"]),
        view=lambda i: i.id)).view
    with pytest.raises(Conflict, match="has no Telegram Stars option"):
        await stars.invoice_link(container.deps, bot, ton_only, links=links)

    expiring = await new_invoice(container, expires_in=600)
    clock.advance(minutes=10)
    with pytest.raises(Conflict, match="has expired"):
        await stars.invoice_link(container.deps, bot, expiring, links=links)


async def test_a_paid_link_pays_the_invoice_and_settles_it(
        container: Container, bot: BotApi, links: SqlStarsLinks, fake: FakeBotApi) -> None:
    invoice_id = await new_invoice(container, "500")
    link = await stars.invoice_link(container.deps, bot, invoice_id, links=links)

    outcome = await fake.pay(link, bot_side(container, bot))

    assert outcome.answer is not None and outcome.answer.ok and outcome.charge_id
    invoice = await invoices.get_invoice(container.deps, None, invoice_id)
    assert (invoice.status.value, invoice.asset, invoice.amount_paid) == ("paid", "XTR", 500)
    async with container.deps.uow(write=False) as uow:
        payments = await uow.payments.for_invoice(invoice_id)
        settlements = await uow.settlements.for_invoice(invoice_id)
    assert [(p.chain.value, p.tx_id, p.status.value, p.amount) for p in payments] == [
        ("telegram", outcome.charge_id, "confirmed", 500)]
    assert [s.gross for s in settlements] == [500]


async def test_a_payment_delivered_twice_is_credited_once(
        container: Container, bot: BotApi, links: SqlStarsLinks, fake: FakeBotApi) -> None:
    invoice_id = await new_invoice(container, "300")
    link = await stars.invoice_link(container.deps, bot, invoice_id, links=links)
    update = fake.payment_update(fake.invoices[link], "stxch_same", 42, 300)
    payment = parse_update(update)
    assert isinstance(payment, stars.StarsPayment)

    first = await stars.record_payment(container.deps, payment)
    second = await stars.record_payment(container.deps, payment)

    assert first is not None and first.outcome == "credited"
    assert second is not None and second.outcome == "unchanged"
    async with container.deps.uow(write=False) as uow:
        assert len(await uow.payments.for_invoice(invoice_id)) == 1
        assert len(await uow.settlements.for_invoice(invoice_id)) == 1
        balances = await uow.ledger.balances()
    assert balances[("external:XTR", "XTR")] == -300


async def test_pre_checkout_is_declined_once_the_invoice_expired(
        container: Container, bot: BotApi, links: SqlStarsLinks, fake: FakeBotApi,
        clock: ManualClock) -> None:
    invoice_id = await new_invoice(container, "500", expires_in=600)
    link = await stars.invoice_link(container.deps, bot, invoice_id, links=links)
    clock.advance(minutes=10)  # the moment it expires

    outcome = await fake.pay(link, bot_side(container, bot))

    assert outcome.answer is not None and not outcome.answer.ok
    assert outcome.answer.error_message == "This invoice has expired; it can no longer be paid."
    assert outcome.charge_id is None  # Telegram charged nothing
    invoice = await invoices.get_invoice(container.deps, None, invoice_id)
    assert invoice.status.value == "pending" and invoice.amount_paid == 0


async def test_pre_checkout_is_declined_for_another_amount(
        container: Container, bot: BotApi, links: SqlStarsLinks, fake: FakeBotApi) -> None:
    invoice_id = await new_invoice(container, "500")
    link = await stars.invoice_link(container.deps, bot, invoice_id, links=links)

    outcome = await fake.pay(link, bot_side(container, bot), total_amount=499)

    assert outcome.answer is not None and not outcome.answer.ok
    assert outcome.answer.error_message is not None
    assert "asks for 500 Stars, not 499" in outcome.answer.error_message
    assert outcome.charge_id is None


async def test_pre_checkout_declines_what_is_no_invoice_or_not_stars(
        container: Container) -> None:
    invoice_id = await new_invoice(container, "500")
    unknown = stars.PreCheckout("q1", "XTR", 500, "inv_nothing", 1)
    other_currency = stars.PreCheckout("q2", "USD", 500, invoice_id, 1)
    right = stars.PreCheckout("q3", "XTR", 500, invoice_id, 1)

    assert await stars.answer_pre_checkout(container.deps, unknown) == (
        False, "This invoice does not exist.")
    assert (await stars.answer_pre_checkout(container.deps, other_currency))[0] is False
    assert await stars.answer_pre_checkout(container.deps, right) == (True, None)


async def test_a_paid_invoice_declines_a_second_payer(
        container: Container, bot: BotApi, links: SqlStarsLinks, fake: FakeBotApi) -> None:
    invoice_id = await new_invoice(container, "500")
    link = await stars.invoice_link(container.deps, bot, invoice_id, links=links)
    await fake.pay(link, bot_side(container, bot))

    second = await fake.pay(link, bot_side(container, bot), payer_id=7)

    assert second.answer is not None and not second.answer.ok
    assert second.answer.error_message == "This invoice is paid; it can no longer be paid."


async def test_a_late_delivered_payment_made_in_time_is_not_late(
        container: Container, bot: BotApi, links: SqlStarsLinks, fake: FakeBotApi,
        clock: ManualClock) -> None:
    """Accepted before expiry, delivered after it (a webhook retried): paid, not paid late."""
    invoice_id = await new_invoice(container, "500", expires_in=600)
    link = await stars.invoice_link(container.deps, bot, invoice_id, links=links)
    update = fake.payment_update(fake.invoices[link], "stxch_retry", 42, 500)  # dated now
    clock.advance(minutes=20)
    payment = parse_update(update)
    assert isinstance(payment, stars.StarsPayment)

    await stars.record_payment(container.deps, payment)

    invoice = await invoices.get_invoice(container.deps, None, invoice_id)
    assert (invoice.status.value, invoice.exception) == ("paid", None)


async def test_bot_api_errors_never_show_the_token(fake_url: str) -> None:
    wrong = BotApi(BOT_TOKEN.replace("AAE", "BBB"), fake_url)  # the fake answers 401
    try:
        with pytest.raises(BotApiError) as refused:
            await wrong.create_invoice_link(title="t", description="d", payload="p", amount=1)
    finally:
        await wrong.close()
    assert "Unauthorized" in str(refused.value)
    assert "BBB" not in str(refused.value)

    unreachable = BotApi(BOT_TOKEN, "http://127.0.0.1:9")  # nothing listens on the discard port
    try:
        with pytest.raises(BotApiError) as failed:
            await unreachable.answer_pre_checkout("q", True)
    finally:
        await unreachable.close()
    assert BOT_TOKEN not in str(failed.value) and BOT_TOKEN.split(":")[1] not in str(failed.value)


async def test_the_fake_refuses_what_telegram_refuses(bot: BotApi, fake: FakeBotApi) -> None:
    with pytest.raises(BotApiError, match="query ID is invalid"):
        await bot.answer_pre_checkout("never-asked", True)
    with pytest.raises(BotApiError, match="title must be"):
        await bot.create_invoice_link(title="", description="d", payload="p", amount=1)
    with pytest.raises(BotApiError, match="positive whole number"):
        await bot.create_invoice_link(title="t", description="d", payload="p", amount=0)
    assert fake.invoices == {}

