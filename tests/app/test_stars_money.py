"""Stars money: refunds, the hold period, reconciliation with getStarTransactions and
subscriptions, with aiogram's real client talking to the devnet's fake Bot API over HTTP."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from krypton.adapters.db import tables as t
from krypton.adapters.telegram.bot_api import BotApi, parse_update
from krypton.app import invoices, merchants, refunds, stars, stars_hold, stars_reconcile, webhooks
from krypton.app import subscriptions as subs
from krypton.app.refunds import RefundKit, RefundRequest
from krypton.bootstrap import Container
from krypton.config import Settings
from krypton.devnet.telegram_api import FakeBotApi, StarsInvoice
from krypton.domain import ledger
from krypton.domain.errors import Conflict, DomainError
from krypton.domain.refund import RefundStatus
from krypton.web.api.schemas import WebhookObjects
from tests.support.clock import ManualClock

BOT_TOKEN = "123456789:AAE-devnet-secret-token-value_0123456"
HOLD = timedelta(days=21)
OBJECTS = WebhookObjects("http://127.0.0.1:8000", testnet=False)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=db_url, webhooks_allow_loopback=True)


@pytest.fixture
def kit(container: Container, bot: BotApi) -> RefundKit:
    return RefundKit(container.stars_books(), bot, bot)


class Shop:
    """A merchant selling for Stars, paying through the fake as a payer would."""

    def __init__(self, container: Container, bot: BotApi, fake: FakeBotApi, merchant_id: str) -> None:
        self.container, self.bot, self.fake, self.merchant_id = container, bot, fake, merchant_id

    async def invoice(self, stars_amount: str, *, period: int | None = None) -> str:
        created = await invoices.create_invoice(
            self.container.deps, self.merchant_id,
            invoices.InvoiceRequest(amount=stars_amount, currency="XTR", methods=["stars"]),
            view=lambda i: i.id)
        if period is not None:
            await subs.ask(self.container.deps, self.container.stars_books(), str(created.view),
                           period)
        return str(created.view)

    async def link(self, invoice_id: str) -> str:
        return await stars.invoice_link(self.container.deps, self.bot, invoice_id,
                                        links=self.container.stars_links())

    async def deliver(self, update: dict[str, Any]) -> None:
        parsed = parse_update(update)
        if isinstance(parsed, stars.PreCheckout):
            ok, reason = await stars.answer_pre_checkout(self.container.deps, parsed)
            await self.bot.answer_pre_checkout(parsed.query_id, ok, reason)
        elif isinstance(parsed, stars.StarsPayment):
            await stars.record_payment(self.container.deps, parsed,
                                       books=self.container.stars_books())

    async def paid(self, stars_amount: str, *, payer_id: int = 100_001,
                   period: int | None = None) -> tuple[str, str]:
        invoice_id = await self.invoice(stars_amount, period=period)
        outcome = await self.fake.pay(await self.link(invoice_id), self.deliver, payer_id=payer_id)
        assert outcome.charge_id is not None
        return invoice_id, outcome.charge_id


@pytest.fixture
async def shop(container: Container, bot: BotApi, fake: FakeBotApi) -> Shop:
    merchant, _ = await merchants.create_merchant(container.deps, name="Stars shop")
    return Shop(container, bot, fake, merchant.id)


async def balances(container: Container, merchant_id: str) -> dict[str, int]:
    async with container.deps.uow(write=False) as uow:
        every = await uow.ledger.balances()
    return {"held": every.get((ledger.merchant_held(merchant_id, "XTR"), "XTR"), 0),
            "available": every.get((ledger.merchant_account(merchant_id, "XTR"), "XTR"), 0),
            "fees": every.get(("fees:XTR", "XTR"), 0),
            "external": every.get(("external:XTR", "XTR"), 0)}


async def event_types(container: Container) -> list[str]:
    async with container.db.reader.connect() as conn:
        return list((await conn.execute(sa.select(t.events.c.type).order_by(t.events.c.seq))
                     ).scalars())


# --- hold -------------------------------------------------------------------------------

async def test_stars_are_held_until_the_hold_period_passes(
        container: Container, shop: Shop, clock: ManualClock) -> None:
    await shop.paid("1000")  # 1% fee: 990 net
    books = container.stars_books()

    assert await balances(container, shop.merchant_id) == {
        "held": 990, "available": 0, "fees": 10, "external": -1000}
    clock.advance(days=20, hours=23)
    assert await stars_hold.release_held(container.deps, books, HOLD) == 0
    clock.advance(hours=1)
    assert await stars_hold.release_held(container.deps, books, HOLD) == 1
    assert await stars_hold.release_held(container.deps, books, HOLD) == 0  # once per settlement

    assert await balances(container, shop.merchant_id) == {
        "held": 0, "available": 990, "fees": 10, "external": -1000}
    assert "settlement.released" in await event_types(container)


def test_the_hold_is_telegrams_21_days_by_default(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).stars_hold_days == 21
    assert Settings(data_dir=tmp_path, stars_hold_days=0).stars_hold_days == 0


# --- refunds ----------------------------------------------------------------------------

async def test_a_refund_gives_the_stars_back_once(
        container: Container, shop: Shop, fake: FakeBotApi, kit: RefundKit,
        clock: ManualClock) -> None:
    await shop.paid("1000")  # earlier sales, released: they cover the fee
    clock.advance(days=22)
    await stars_hold.release_held(container.deps, container.stars_books(), HOLD)
    endpoint, _ = await webhooks.create_endpoint(container.deps, container.webhook_kit(),
                                                 shop.merchant_id, "http://127.0.0.1:9/hooks",
                                                 ["refund.succeeded"])
    invoice_id, charge_id = await shop.paid("500")  # 495 held, 5 fee

    refund = await refunds.refund_invoice(container.deps, kit, shop.merchant_id, invoice_id,
                                          RefundRequest(reason="changed their mind"),
                                          idempotency_key="r-1")
    again = await refunds.refund_invoice(container.deps, kit, shop.merchant_id, invoice_id,
                                         RefundRequest(reason="changed their mind"),
                                         idempotency_key="r-1")

    assert refund.status is RefundStatus.SUCCEEDED and again.id == refund.id
    assert (refund.amount, refund.from_held) == (500, 495)
    assert fake.charges[charge_id].refunded_at is not None
    # The payer got 500 back: 495 from the held net, the platform's 5 fee from the merchant.
    assert await balances(container, shop.merchant_id) == {
        "held": 0, "available": 990 - 5, "fees": 15, "external": -1000}
    invoice = await invoices.get_invoice(container.deps, shop.merchant_id, invoice_id)
    async with container.deps.uow(write=False) as uow:
        payments = await uow.payments.for_invoice(invoice_id)
    assert invoice.status.value == "refunded"
    assert [p.status.value for p in payments] == ["refunded"]
    kinds = await event_types(container)
    assert kinds.count("refund.succeeded") == 1 and "refund.created" in kinds
    assert "payment.refunded" in kinds and "invoice.refunded" in kinds
    while await webhooks.relay(container.deps, OBJECTS):
        pass
    async with container.db.reader.connect() as conn:
        rows = (await conn.execute(sa.select(t.webhook_deliveries.c.event_type).where(
            t.webhook_deliveries.c.endpoint_id == endpoint.id))).scalars().all()
    assert rows == ["refund.succeeded"]
    # A second request without the key: the invoice was refunded already.
    with pytest.raises(Conflict, match="refunded already"):
        await refunds.refund_invoice(container.deps, kit, shop.merchant_id, invoice_id,
                                     RefundRequest())
    # The held settlement is released later without the refunded part.
    clock.advance(days=22)
    await stars_hold.release_held(container.deps, container.stars_books(), HOLD)
    assert (await balances(container, shop.merchant_id))["available"] == 985


async def test_a_refund_the_balance_cannot_cover_is_refused(
        container: Container, shop: Shop, kit: RefundKit, fake: FakeBotApi) -> None:
    invoice_id, charge_id = await shop.paid("500")  # only 495 net: the 5 fee is not there

    with pytest.raises(Conflict, match="cannot cover") as refused:
        await refunds.refund_invoice(container.deps, kit, shop.merchant_id, invoice_id,
                                     RefundRequest())

    assert refused.value.code == "insufficient_balance"
    assert fake.charges[charge_id].refunded_at is None
    assert await refunds.list_refunds(container.deps, kit, shop.merchant_id, invoice_id) == []


async def test_only_the_whole_payment_is_refunded(
        container: Container, shop: Shop, kit: RefundKit) -> None:
    invoice_id, _ = await shop.paid("500")
    with pytest.raises(DomainError, match="whole Stars payments only"):
        await refunds.refund_invoice(container.deps, kit, shop.merchant_id, invoice_id,
                                     RefundRequest(amount="100"))


class Crashing:
    """Telegram refunds, then the connection drops before its answer reaches us."""

    def __init__(self, bot: BotApi) -> None:
        self.bot = bot

    async def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        await self.bot.refund_star_payment(user_id, charge_id)
        raise ConnectionResetError("connection reset by peer")


async def test_a_crash_after_telegram_refunded_is_resolved_once(
        container: Container, shop: Shop, bot: BotApi, fake: FakeBotApi, kit: RefundKit,
        clock: ManualClock) -> None:
    await shop.paid("1000")
    clock.advance(days=22)
    await stars_hold.release_held(container.deps, container.stars_books(), HOLD)
    invoice_id, charge_id = await shop.paid("500")
    crashing = RefundKit(container.stars_books(), Crashing(bot))

    with pytest.raises(refunds.RailUnavailable):
        await refunds.refund_invoice(container.deps, crashing, shop.merchant_id, invoice_id,
                                     RefundRequest(), idempotency_key="k")
    [pending] = await refunds.list_refunds(container.deps, kit, shop.merchant_id, invoice_id)
    assert pending.status is RefundStatus.PENDING
    assert fake.charges[charge_id].refunded_at is not None  # Telegram did refund

    # The worker's round takes it over after a minute: Telegram answers
    # CHARGE_ALREADY_REFUNDED, so it succeeded, once.
    assert await refunds.resolve_pending(container.deps, kit) == 0  # too fresh
    clock.advance(minutes=2)
    assert await refunds.resolve_pending(container.deps, kit) == 1
    retried = await refunds.refund_invoice(container.deps, kit, shop.merchant_id, invoice_id,
                                           RefundRequest(), idempotency_key="k")

    assert retried.id == pending.id and retried.status is RefundStatus.SUCCEEDED
    assert (await event_types(container)).count("refund.succeeded") == 1
    assert (await balances(container, shop.merchant_id))["external"] == -1000


async def test_telegrams_refusal_fails_the_refund(
        container: Container, shop: Shop, fake: FakeBotApi, kit: RefundKit,
        clock: ManualClock) -> None:
    await shop.paid("1000")
    clock.advance(days=22)
    await stars_hold.release_held(container.deps, container.stars_books(), HOLD)
    invoice_id, charge_id = await shop.paid("500")
    fake.charges[charge_id].payer_id = 999  # Telegram knows another payer: CHARGE_NOT_FOUND

    refund = await refunds.refund_invoice(container.deps, kit, shop.merchant_id, invoice_id,
                                          RefundRequest())

    assert refund.status is RefundStatus.FAILED and "CHARGE_NOT_FOUND" in (refund.failure or "")
    assert (await balances(container, shop.merchant_id))["external"] == -1500
    assert "refund.failed" in await event_types(container)


async def test_a_refund_of_a_chain_payment_waits_for_payouts(
        container: Container, shop: Shop, kit: RefundKit) -> None:
    from krypton.app import ingest
    from krypton.domain.assets import Chain
    from krypton.domain.payment import ObservedTransfer
    created = await invoices.create_invoice(
        container.deps, shop.merchant_id,
        invoices.InvoiceRequest(amount="1", currency="TON", methods=["ton"]), view=lambda i: i)
    invoice = created.invoice
    assert invoice is not None and invoice.ton_address is not None
    await ingest.ingest_transfer(container.deps, ObservedTransfer(
        chain=Chain.TON, tx_id="tx1", index=0, asset="TON", amount=invoice.options[0].amount,
        destination=invoice.ton_address, memo=invoice.memo, block=1, confirmations=1),
        invoice.id)

    with pytest.raises(Conflict, match="Refunds of TON payments come with payouts") as refused:
        await refunds.refund_invoice(container.deps, kit, shop.merchant_id, invoice.id,
                                     RefundRequest())
    assert refused.value.code == "refund_unsupported"


# --- payments ---------------------------------------------------------------------------

async def test_a_payment_delivered_twice_is_credited_once(
        container: Container, shop: Shop, fake: FakeBotApi) -> None:
    invoice_id = await shop.invoice("300")
    link = await shop.link(invoice_id)
    update = fake.payment_update(fake.invoices[link], "stxch_twice", 42, 300)

    await shop.deliver(update)
    await shop.deliver(update)

    async with container.deps.uow(write=False) as uow:
        assert len(await uow.payments.for_invoice(invoice_id)) == 1
        assert await container.stars_books()(uow).payer("stxch_twice") == 42
    assert (await balances(container, shop.merchant_id))["external"] == -300


# --- reconciliation ---------------------------------------------------------------------

async def test_reconciliation_of_matching_books_is_clean(
        container: Container, shop: Shop, bot: BotApi, kit: RefundKit, clock: ManualClock) -> None:
    await shop.paid("1000")
    clock.advance(days=22)
    await stars_hold.release_held(container.deps, container.stars_books(), HOLD)
    invoice_id, _ = await shop.paid("500")
    await refunds.refund_invoice(container.deps, kit, shop.merchant_id, invoice_id, RefundRequest())
    clock.advance(minutes=10)

    report = await stars_reconcile.reconcile(container.deps, container.stars_books(), bot)

    assert report.clean and report.transactions == 3  # two payments and a refund
    latest = await stars_reconcile.latest(container.deps, container.stars_books())
    assert latest is not None and latest.id == report.id


async def test_reconciliation_reports_each_kind_of_difference(
        container: Container, shop: Shop, bot: BotApi, fake: FakeBotApi,
        clock: ManualClock) -> None:
    _, differs = await shop.paid("200")
    _, gone = await shop.paid("300")
    # Telegram took a payment Krypton never heard of (its webhook was lost) ...
    invoice_id = await shop.invoice("400")
    fake.payment_update(fake.invoices[await shop.link(invoice_id)], "stxch_lost", 7, 400)
    # ... refunded one behind Krypton's back, shows another with a different amount, and
    # does not know a third.
    fake.charges[differs].amount = 201
    fake.charges[differs].refunded_at = int(clock.now().timestamp())
    del fake.charges[gone]
    clock.advance(minutes=10)

    report = await stars_reconcile.reconcile(container.deps, container.stars_books(), bot)

    found = {(d["difference"], d["kind"], d["charge_id"]) for d in report.differences}
    assert found == {("amount_differs", "payment", differs),
                     ("missing_in_ledger", "refund", differs),
                     ("missing_at_telegram", "payment", gone),
                     ("missing_in_ledger", "payment", "stxch_lost")}


async def test_reconciliation_reads_every_page(bot: BotApi, fake: FakeBotApi) -> None:
    for n in range(205):
        fake.payment_update(StarsInvoice("", "", "", "inv_x", 1), f"stxch_{n}", 1, 1)
    assert len(await stars_reconcile.fetch_all(bot)) == 205


# --- subscriptions ----------------------------------------------------------------------

async def test_a_subscription_is_paid_then_renewed_twice(
        container: Container, shop: Shop, fake: FakeBotApi, clock: ManualClock) -> None:
    invoice_id, first = await shop.paid("250", period=2_592_000)
    sub = await subs.get(container.deps, container.stars_books(), invoice_id)
    assert sub is not None and sub.status.value == "active" and sub.payer_id == 100_001
    assert fake.invoices[next(iter(fake.invoices))].subscription_period == 2_592_000
    start = sub.expires_at
    assert start == clock.now() + timedelta(days=30)

    clock.advance(days=30)
    second = await fake.renew(first, shop.deliver)
    assert start is not None
    update = fake.payment_update(
        StarsInvoice("", "", "", invoice_id, 250, 2_592_000), second, 100_001, 250, first=False,
        expires=int((start + timedelta(days=30)).timestamp()))
    await shop.deliver(update)  # Telegram delivering the renewal again
    clock.advance(days=30)
    await fake.renew(first, shop.deliver)

    sub = await subs.get(container.deps, container.stars_books(), invoice_id)
    assert sub is not None and sub.renewals == 2
    assert sub.expires_at == start + timedelta(days=60)
    async with container.db.reader.connect() as conn:
        paid = (await conn.execute(sa.select(t.payments.c.invoice_id, t.payments.c.amount)
                                   .order_by(t.payments.c.detected_at))).all()
    assert len(paid) == 3 and {a for _, a in paid} == {250}
    assert paid[0][0] == invoice_id and len({i for i, _ in paid}) == 3
    for renewal_invoice in {i for i, _ in paid} - {invoice_id}:
        assert (await invoices.get_invoice(container.deps, shop.merchant_id,
                                           renewal_invoice)).status.value == "paid"
    assert (await event_types(container)).count("subscription.renewed") == 2


async def test_a_subscription_asks_for_telegrams_period_only() -> None:
    from krypton.domain import subscription
    with pytest.raises(DomainError, match="2592000"):
        subscription.validate(86_400, stars=True, price_currency="XTR", amount=100)
    with pytest.raises(DomainError, match="Stars only"):
        subscription.validate(2_592_000, stars=False, price_currency="XTR", amount=100)
    with pytest.raises(DomainError, match="10000"):
        subscription.validate(2_592_000, stars=True, price_currency="XTR", amount=10_001)
    assert subscription.validate(None, stars=False, price_currency="USD", amount=1) is None
