"""The Premium-gift strategy (adapters/suppliers/premium_gift.py) against the devnet's fake Bot
API (devnet/telegram_api.py) through aiogram's real client over HTTP: the fixed Stars price
converted with the USD rates, the bot's balance (cached 5 s, capped by the platform's own
Stars), the gift itself, and each refusal (unknown recipient, too few Stars, a 5xx)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from krypton.adapters.rates.static import StaticRates
from krypton.adapters.suppliers.premium_gift import NAME, TelegramPremiumGift, stars_in_nanoton
from krypton.adapters.telegram.bot_api import BotApi
from krypton.app.ports import SupplierError, SupplierQuote
from krypton.devnet.telegram_api import FakeBotApi

BOT_TOKEN = "7000000001:premium-gift-tests"  # also the shared fake_url/bot fixtures' token
USER = 424_242
RATES = {"TON": "5.00", "USDT": "1.00", "XTR": "0.013"}  # the devnet's table: 1000 Stars = 2.6 TON


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Users:
    """The usernames the bot has met, in memory."""

    def __init__(self, known: dict[str, int]) -> None:
        self.known = known

    async def user_id(self, username: str) -> int | None:
        return self.known.get(username.lower())

    async def remember(self, username: str, user_id: int, now: datetime) -> None:
        self.known[username.lower()] = user_id


@pytest.fixture
def fake() -> FakeBotApi:
    bot = FakeBotApi(BOT_TOKEN, now=lambda: datetime(2026, 12, 7, tzinfo=UTC))
    bot.star_balance = 5_000
    bot.users.add(USER)
    return bot


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def gift(bot: BotApi, ticks: Ticks) -> TelegramPremiumGift:
    return TelegramPremiumGift(bot, StaticRates(RATES), Users({"alice_tg": USER, "ghost_tg": 1}),
                               clock=ticks)


def test_stars_are_priced_in_nanoton_rounded_up() -> None:
    assert stars_in_nanoton(1000, "0.013", "5.00") == 2_600_000_000
    assert stars_in_nanoton(1, "0.013", "3") == 4_333_334  # 4333333.33… rounds up, never down
    with pytest.raises(SupplierError, match="not positive"):
        stars_in_nanoton(1000, "0.013", "0")


async def test_a_quote_is_the_bot_api_price_in_stars_and_its_worth_in_ton(gift: TelegramPremiumGift) -> None:
    quote = await gift.quote(3, "premium")
    assert quote == SupplierQuote(NAME, 3, "XTR", 1000, 2_600_000_000, product="premium")
    assert (await gift.quote(12, "premium")).cost == 2500
    with pytest.raises(SupplierError) as stars:
        await gift.quote(50)  # Stars are not sold this way
    assert stars.value.code == "unsupported_product"
    with pytest.raises(SupplierError) as odd:
        await gift.quote(4, "premium")
    assert odd.value.code == "unsupported_product"


async def test_too_few_stars_make_it_unavailable_and_the_balance_is_cached_5_seconds(
        gift: TelegramPremiumGift, fake: FakeBotApi, ticks: Ticks) -> None:
    fake.star_balance = 999
    with pytest.raises(SupplierError) as short:
        await gift.quote(3, "premium")
    assert short.value.code == "insufficient_balance" and not short.value.retryable
    fake.star_balance = 5_000
    with pytest.raises(SupplierError):
        await gift.quote(3, "premium")  # still the balance read 0 s ago
    ticks.now += 5.1
    assert (await gift.quote(3, "premium")).cost == 1000
    assert await gift.balance() == 5_000


async def test_only_the_platforms_own_stars_are_spent(bot: BotApi, ticks: Ticks) -> None:
    async def owner_stars() -> int:
        return 1_200  # the rest of the bot's 5,000 Stars belongs to merchants

    capped = TelegramPremiumGift(bot, StaticRates(RATES), Users({}), spendable=owner_stars, clock=ticks)
    assert await capped.balance() == 1_200
    assert (await capped.quote(3, "premium")).cost == 1000
    with pytest.raises(SupplierError) as short:
        await capped.quote(6, "premium")  # 1500 > 1200
    assert short.value.code == "insufficient_balance"


async def test_a_gift_is_made_once_per_order(gift: TelegramPremiumGift, fake: FakeBotApi) -> None:
    assert (await gift.status("ord_1")).status == "unknown"
    quote = await gift.quote(6, "premium")
    done = await gift.purchase("ord_1", "alice_tg", 6, quote)
    assert done.status == "delivered" and done.payment is None and done.ref == f"gift:{USER}:6"
    assert fake.premium_gifts == [(USER, 6, 1500)] and fake.star_balance == 3_500
    again = await gift.purchase("ord_1", "alice_tg", 6, quote)
    assert again.status == "delivered" and fake.premium_gifts == [(USER, 6, 1500)]  # never twice
    assert (await gift.status("ord_1")).status == "delivered"
    assert (await gift.status("ord_2", done.ref)).status == "delivered"  # after a restart: its ref
    assert await gift.balance() == 3_500  # read again after the gift, not the cached 5,000


async def test_a_recipient_the_bot_cannot_reach_makes_it_unavailable(
        gift: TelegramPremiumGift, fake: FakeBotApi) -> None:
    quote = await gift.quote(3, "premium")
    with pytest.raises(SupplierError) as never_met:
        await gift.lookup("bob_tg")
    assert never_met.value.code == "recipient_unknown"
    with pytest.raises(SupplierError) as unknown:
        await gift.purchase("ord_1", "bob_tg", 3, quote)
    # Not "recipient_not_found": Telegram may know @bob_tg; the next supplier is tried.
    assert unknown.value.code == "recipient_unknown"
    with pytest.raises(SupplierError) as refused:
        await gift.purchase("ord_2", "ghost_tg", 3, quote)  # an id the Bot API does not know
    assert refused.value.code == "recipient_unknown" and "user not found" in refused.value.message
    assert fake.premium_gifts == [] and fake.star_balance == 5_000


async def test_stars_spent_elsewhere_between_quote_and_gift(gift: TelegramPremiumGift,
                                                             fake: FakeBotApi) -> None:
    quote = await gift.quote(12, "premium")
    fake.star_balance = 2_000  # a refund or another gift took Stars meanwhile
    with pytest.raises(SupplierError) as short:
        await gift.purchase("ord_1", "alice_tg", 12, quote)
    assert short.value.code == "insufficient_balance" and fake.premium_gifts == []


async def test_a_5xx_is_retryable_and_gifts_nothing(gift: TelegramPremiumGift, fake: FakeBotApi) -> None:
    quote = await gift.quote(3, "premium")
    fake.gift_faults = 1
    with pytest.raises(SupplierError) as down:
        await gift.purchase("ord_1", "alice_tg", 3, quote)
    assert down.value.retryable and down.value.code == "unavailable"
    assert fake.premium_gifts == [] and fake.star_balance == 5_000
    assert (await gift.purchase("ord_1", "alice_tg", 3, quote)).status == "delivered"
    assert fake.premium_gifts == [(USER, 3, 1000)]


async def test_the_fake_bot_api_refuses_as_documented(fake: FakeBotApi, fake_url: str) -> None:
    async with httpx.AsyncClient(base_url=f"{fake_url}/bot{BOT_TOKEN}") as http:
        balance = (await http.post("/getMyStarBalance")).json()
        assert balance == {"ok": True, "result": {"amount": 5_000, "nanostar_amount": 0}}

        async def gift(**params: int) -> tuple[int, str]:
            answer = await http.post("/giftPremiumSubscription", json=params)
            return answer.status_code, answer.json().get("description", "")
        assert await gift(user_id=USER, month_count=4, star_count=1000) == (
            400, "Bad Request: month_count must be one of 3, 6 or 12")
        assert await gift(user_id=USER, month_count=3, star_count=999) == (
            400, "Bad Request: star_count must be 1000 for 3 months")
        assert await gift(user_id=7, month_count=3, star_count=1000) == (400, "Bad Request: user not found")
        fake.star_balance = 10
        assert await gift(user_id=USER, month_count=3, star_count=1000) == (
            400, "Bad Request: BALANCE_TOO_LOW")
        assert fake.premium_gifts == []
