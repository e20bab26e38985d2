"""Premium orders through the orchestrator (app/shop.py, app/fulfilment.py), on SQLite and
PostgreSQL: two strategies, the real Premium-gift supplier over the fake Bot API and a
Fragment stand-in paid in TON by the signer; the cheaper one used, the other on failure; a
recipient the bot never met, or too few Stars, leaves the gift out of the price and the order;
a gift is booked as the platform's own Stars spent."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from krypton.adapters.suppliers.premium_gift import (
    StoredTelegramUsers,
    TelegramPremiumGift,
    platform_stars,
    stars_in_nanoton,
)
from krypton.adapters.telegram.bot_api import BotApi
from krypton.app import shop
from krypton.app.ports import SupplierQuote
from krypton.devnet.telegram_api import FakeBotApi
from krypton.domain import ledger
from krypton.domain.errors import DomainError
from krypton.domain.order import STARS_SPENT, OrderStatus, Product
from tests.shop.support import FakeSigner, FakeSupplier, ShopRig
from tests.web.live_server import LiveServer

TOKEN = "7000000001:premium-orders"
ALICE_ID = 5_550_001
PLATFORM_STARS = 10_000


class Fragment(FakeSupplier):
    """A supplier paid in TON that sells Premium too (`nano_per_star`: nanoton a month)."""

    async def quote(self, quantity: int, product: str = "stars") -> SupplierQuote:
        return dataclasses.replace(await super().quote(quantity), product=product)


@pytest.fixture
def telegram() -> FakeBotApi:
    fake = FakeBotApi(TOKEN, now=lambda: datetime(2026, 12, 7, tzinfo=UTC))
    fake.star_balance = 50_000  # the bot's whole balance, merchants' Stars included
    fake.users.add(ALICE_ID)
    return fake


@pytest.fixture
def telegram_url(telegram: FakeBotApi) -> Iterator[str]:
    with LiveServer(telegram.app()) as server:
        yield server.url


@pytest.fixture
async def bot(telegram_url: str) -> AsyncIterator[BotApi]:
    client = BotApi(TOKEN, telegram_url)
    yield client
    await client.close()


@pytest.fixture
def fragment() -> Fragment:
    return Fragment("fragment", 1_000_000_000)  # 3 TON for 3 months: dearer than the gift


@pytest.fixture
async def premium(rig: ShopRig, bot: BotApi, fragment: Fragment) -> ShopRig:
    deps = rig.deps
    users = StoredTelegramUsers(deps.uow)
    await users.remember("Alice_TG", ALICE_ID, deps.clock.now())
    async with deps.uow() as uow:  # Stars fees swept to the owner: the platform's own Stars
        await uow.ledger.post(ledger.fee_sweep("swp_seed", "XTR", PLATFORM_STARS, on_chain=False),
                              deps.clock.now())
        await uow.commit()
    gift = TelegramPremiumGift(bot, deps.rates, users, spendable=platform_stars(deps),
                               clock=lambda: deps.clock.now().timestamp())
    kit = dataclasses.replace(rig.kit, suppliers=[fragment, gift], signer=FakeSigner([fragment]),
                              users=users)
    return ShopRig(rig.container, kit, rig.watch)


async def _gift_cost(rig: ShopRig, stars: int) -> int:
    xtr, ton = await rig.deps.rates.usd_rate("XTR"), await rig.deps.rates.usd_rate("TON")
    return stars_in_nanoton(stars, xtr.rate, ton.rate)


async def _paid(rig: ShopRig, months: int, recipient: str = "alice_tg") -> shop.Order:
    order = await shop.create_order(rig.deps, rig.kit, buyer="tg:9", recipient=recipient,
                                    quantity=months, product="premium")
    await rig.pay(order)
    return order


async def test_the_cheaper_gift_is_used_and_booked_as_the_platforms_stars(
        premium: ShopRig, telegram: FakeBotApi, fragment: Fragment) -> None:
    rig = premium
    quote = await shop.quote(rig.deps, rig.kit, 3, product="premium", recipient="alice_tg")
    assert (quote.supplier, quote.product, quote.cost) == ("telegram_premium_gift", Product.PREMIUM,
                                                          await _gift_cost(rig, 1000))
    order = await _paid(rig, 3)
    assert order.product is Product.PREMIUM and order.cost == quote.cost
    await rig.run(2)
    done = await rig.order(order.id)
    assert done.status is OrderStatus.DELIVERED, done.failure
    assert (done.supplier, done.supplier_ref, done.product) == ("telegram_premium_gift", f"gift:{ALICE_ID}:3",
                                                                Product.PREMIUM)
    assert telegram.premium_gifts == [(ALICE_ID, 3, 1000)] and fragment.purchase_calls == []
    balances = await rig.balances()
    assert balances[(ledger.owner("XTR"), "XTR")] == PLATFORM_STARS - 1000
    async with rig.deps.uow(write=False) as uow:
        assert await rig.kit.books(uow).entry_id(STARS_SPENT, order.id) is not None
    async with rig.deps.uow(write=False) as uow:
        stored = await uow.events.read((0, 0), 10_000)
    delivered = [e for e in stored if e.subject_id == order.id and e.type == "order.delivered"]
    assert delivered and delivered[0].data["product"] == "premium"


async def test_the_cheaper_fragment_is_used_and_paid_by_the_signer(
        premium: ShopRig, telegram: FakeBotApi, fragment: Fragment) -> None:
    fragment.nano_per_star = 800_000_000  # 2.4 TON for 3 months: below the gift's 2.6
    order = await _paid(premium, 3)
    await premium.run(3)
    done = await premium.order(order.id)
    assert done.status is OrderStatus.DELIVERED and done.supplier == "fragment"
    assert fragment.paid == {order.id: 3 * 800_000_000} and telegram.premium_gifts == []


async def test_a_failing_gift_falls_back_to_fragment(premium: ShopRig, telegram: FakeBotApi,
                                                     fragment: Fragment) -> None:
    gift = await _gift_cost(premium, 1000)
    fragment.nano_per_star = (gift + gift // 200) // 3  # dearer by 0.5 %: within the tolerance
    order = await _paid(premium, 3)
    assert order.supplier == "telegram_premium_gift"  # priced at the gift
    telegram.gift_faults = 10  # the Bot API answers 502 from now on
    await premium.run(3)
    done = await premium.order(order.id)
    assert done.status is OrderStatus.DELIVERED and done.supplier == "fragment", done.failure
    assert telegram.premium_gifts == [] and telegram.star_balance == 50_000
    assert list(fragment.paid) == [order.id]
    assert (await premium.balances()).get((ledger.owner("XTR"), "XTR")) == PLATFORM_STARS  # nothing spent


async def test_a_recipient_the_bot_never_met_is_priced_and_served_by_fragment(
        premium: ShopRig, telegram: FakeBotApi, fragment: Fragment) -> None:
    order = await _paid(premium, 6, recipient="bob_tg")
    assert order.supplier == "fragment" and order.cost == 6 * 1_000_000_000  # not the cheaper gift
    await premium.run(3)
    done = await premium.order(order.id)
    assert done.status is OrderStatus.DELIVERED and done.supplier == "fragment"
    assert telegram.premium_gifts == []


async def test_too_few_platform_stars_leave_the_gift_out(premium: ShopRig, telegram: FakeBotApi) -> None:
    quote = await shop.quote(premium.deps, premium.kit, 12, product="premium", recipient="alice_tg")
    assert quote.supplier == "telegram_premium_gift"
    async with premium.deps.uow() as uow:  # the owner takes 8,000 of the platform's Stars
        await uow.ledger.post(ledger.JournalEntry("owner_withdrawal", "w1", (
            ledger.Posting(ledger.owner("XTR"), "XTR", -8_000),
            ledger.Posting(ledger.external("XTR"), "XTR", 8_000))), premium.deps.clock.now())
        await uow.commit()
    premium.clock.advance(seconds=6)  # past the balance's 5 s cache
    # 2,000 Stars of its own left: 12 months (2,500) is not offered, though the bot holds 50,000.
    later = await shop.quote(premium.deps, premium.kit, 12, product="premium", recipient="alice_tg")
    assert later.supplier == "fragment"


async def test_premium_orders_are_checked(premium: ShopRig) -> None:
    with pytest.raises(DomainError) as months:
        await shop.create_order(premium.deps, premium.kit, buyer=None, recipient="alice_tg",
                                quantity=4, product="premium")
    assert months.value.field == "quantity" and "3, 6 or 12 months" in str(months.value)
    with pytest.raises(DomainError) as product:
        await shop.create_order(premium.deps, premium.kit, buyer=None, recipient="alice_tg",
                                quantity=3, product="nft")
    assert product.value.field == "product"
    first = await shop.create_order(premium.deps, premium.kit, buyer="tg:9", recipient="alice_tg",
                                    quantity=3, product="premium", idempotency_key="k1")
    with pytest.raises(DomainError) as reused:  # the same key for Stars: another order
        await shop.create_order(premium.deps, premium.kit, buyer="tg:9", recipient="alice_tg",
                                quantity=50, idempotency_key="k1")
    assert reused.value.code == "idempotency_key_reused"
    again = await shop.create_order(premium.deps, premium.kit, buyer="tg:9", recipient="alice_tg",
                                    quantity=3, product="premium", idempotency_key="k1")
    assert again.id == first.id and again.product is Product.PREMIUM
