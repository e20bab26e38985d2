"""Telegram Premium gifts paid from the bot's own Stars balance (Bot API
giftPremiumSubscription), as a Stars-shop supplier strategy for the Premium product.

The Bot API fixes the price: 1000 Stars for 3 months, 1500 for 6, 2500 for 12
(domain/order.PREMIUM_GIFT_STARS). The quote converts those Stars to nanoton through the app's
USD rates (XTR and TON), rounded up, so that it compares with Fragment's TON price; the
orchestrator takes the cheaper one. The strategy is unavailable (its quote raises) when the
bot's balance (getMyStarBalance, cached 5 s), or the platform's own Stars in the ledger
(`spendable`: `owner:XTR`, the bot's balance also holds merchants' Stars), is short.

A gift needs the recipient's user id: Telegram gives bots no lookup by username, so the
usernames the bot has met are kept (`TelegramUsers`, table shop_telegram_users, filled when a
user signs in to the shop from the Mini App). A username the bot never met makes this
strategy unavailable for that order (code "recipient_unknown", not "recipient_not_found":
Telegram may well know the user) and the orchestrator uses the next supplier (Fragment).

Never twice: the Bot API has no idempotency key for gifts. Gifts are made one at a time;
an order already gifted by this process answers "delivered" again; when the call fails
without an answer (timeout, 5xx) the balance is read again, and a drop of the gift's price
means Telegram made the gift, so the order is delivered rather than bought elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from krypton.adapters.chains.provider.cache import TtlCache
from krypton.adapters.db import tables as t
from krypton.adapters.db.database import SqlUnitOfWork
from krypton.adapters.db.repositories import Repo
from krypton.adapters.telegram.bot_api import BotApiError, BotApiRefused
from krypton.app.deps import Deps
from krypton.app.ports import (
    RateSource,
    SupplierError,
    SupplierOrder,
    SupplierQuote,
    SupplierRecipient,
    TelegramUsers,
    UnitOfWork,
)
from krypton.domain import ledger
from krypton.domain.order import PREMIUM_GIFT_STARS, Product

NAME = "telegram_premium_gift"
STARS = "XTR"
PRICE_TTL = 30.0  # seed 003: prices 30 s (here: the USD rates the Stars are converted with)
BALANCE_TTL = 5.0  # seed 003: balances 5 s
GIFT_TEXT = "Telegram Premium from the Krypton shop"
_REF = "gift:"
_DIALECTS: dict[str, Any] = {"sqlite": sqlite, "postgresql": postgresql}


class PremiumGiftBot(Protocol):
    """The Bot API calls the strategy makes (adapters/telegram/bot_api.BotApi)."""

    async def star_balance(self) -> int: ...
    async def gift_premium(self, user_id: int, months: int, stars: int,
                           text: str | None = None) -> None: ...


def stars_in_nanoton(stars: int, xtr_usd: str, ton_usd: str) -> int:
    """What `stars` are worth in nanoton at the two USD rates, rounded up (the payer is
    charged at least what the gift is worth)."""
    try:
        xtr, ton = Decimal(xtr_usd), Decimal(ton_usd)
    except InvalidOperation:
        raise SupplierError("a USD rate is not a number", retryable=True, code="no_rate") from None
    if xtr <= 0 or ton <= 0:
        raise SupplierError("a USD rate is not positive", retryable=True, code="no_rate")
    return int((Decimal(stars) * xtr / ton).scaleb(9).to_integral_value(rounding=ROUND_CEILING))


class TelegramPremiumGift:
    name = NAME

    def __init__(self, bot: PremiumGiftBot, rates: RateSource, users: TelegramUsers, *,
                 spendable: Callable[[], Awaitable[int]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._bot = bot
        self._rates = rates
        self._users = users
        self._spendable = spendable
        self._prices: TtlCache[int, int] = TtlCache(PRICE_TTL, clock=clock)
        self._balances: TtlCache[str, int] = TtlCache(BALANCE_TTL, clock=clock)
        self._gifting = asyncio.Lock()  # one gift at a time: the balance tells what happened
        self._gifted: dict[str, str] = {}  # order id -> ref, for this process's gifts

    async def quote(self, quantity: int, product: str = "stars") -> SupplierQuote:
        stars = _price(quantity, product)
        available = await self._balances.get("bot", self._available)
        if available < stars:
            raise SupplierError(f"the bot holds {available} Stars of its own, a {quantity}-month "
                                f"gift costs {stars}", retryable=False, code="insufficient_balance")

        async def convert() -> int:
            xtr = await self._rates.usd_rate(STARS)
            ton = await self._rates.usd_rate("TON")
            return stars_in_nanoton(stars, xtr.rate, ton.rate)
        try:
            cost_ton = await self._prices.get(stars, convert)
        except SupplierError:
            raise
        except Exception as exc:  # RateUnavailable and the like: no price, no quote
            raise SupplierError(f"no USD rate to price Stars in TON ({exc})", retryable=True,
                                code="no_rate") from None
        return SupplierQuote(NAME, quantity, STARS, stars, cost_ton, product=Product.PREMIUM.value)

    async def lookup(self, username: str) -> SupplierRecipient:
        user_id = await self._users.user_id(username.lower())
        if user_id is None:
            raise SupplierError(f"the bot has not met @{username}", retryable=True,
                                code="recipient_unknown")
        return SupplierRecipient(username, username, None, str(user_id))

    async def purchase(self, order_id: str, recipient: str, quantity: int,
                       quote: SupplierQuote) -> SupplierOrder:
        """The gift itself: delivered when Telegram says yes (nothing to pay afterwards)."""
        stars = _price(quantity, quote.product)
        user_id = await self._users.user_id(recipient.lower())
        if user_id is None:
            raise SupplierError(f"the bot has not met @{recipient}: it cannot gift Premium to them",
                                retryable=False, code="recipient_unknown")
        async with self._gifting:
            if order_id in self._gifted:
                return SupplierOrder(order_id, "delivered", self._gifted[order_id])
            before = await self._fresh_balance()
            if before < stars:
                raise SupplierError(f"the bot holds {before} Stars, the gift costs {stars}",
                                    retryable=False, code="insufficient_balance")
            try:
                await self._bot.gift_premium(user_id, quantity, stars, GIFT_TEXT)
            except BotApiRefused as exc:
                raise _refusal(exc.description, recipient) from None
            except BotApiError as exc:
                # No answer: did Telegram make the gift? Its price left the balance if it did.
                after = await self._fresh_balance_or(before)
                if after > before - stars:
                    raise SupplierError(f"Telegram did not answer the gift ({exc})", retryable=True,
                                        code="unavailable") from None
            ref = f"{_REF}{user_id}:{quantity}"
            self._gifted[order_id] = ref
            self._balances.invalidate()
        return SupplierOrder(order_id, "delivered", ref)

    async def status(self, order_id: str, ref: str | None = None) -> SupplierOrder:
        known = self._gifted.get(order_id) or (ref if ref and ref.startswith(_REF) else None)
        if known is not None:
            return SupplierOrder(order_id, "delivered", known)  # a ref is only made by a gift
        return SupplierOrder(order_id, "unknown")

    async def balance(self) -> int | None:
        """Stars the strategy may spend now (cached 5 s): the bot's balance, capped by the
        platform's own Stars in the ledger when `spendable` is given."""
        return await self._balances.get("bot", self._available)

    async def _available(self) -> int:
        held = await self._bot_balance()
        if self._spendable is None:
            return held
        return max(0, min(held, await self._spendable()))

    async def _bot_balance(self) -> int:
        try:
            return await self._bot.star_balance()
        except BotApiError as exc:
            raise SupplierError(f"getMyStarBalance failed ({exc})", retryable=True,
                                code="unavailable") from None

    async def _fresh_balance(self) -> int:
        self._balances.invalidate()
        return await self._balances.get("bot", self._available)

    async def _fresh_balance_or(self, fallback: int) -> int:
        try:
            return await self._bot_balance()
        except SupplierError:
            return fallback  # unknown: treated as "not gifted", the order is retried


def _price(quantity: int, product: str) -> int:
    if product != Product.PREMIUM.value:
        raise SupplierError(f"Premium gifts do not sell '{product}'", retryable=False,
                            code="unsupported_product")
    stars = PREMIUM_GIFT_STARS.get(quantity)
    if stars is None:
        raise SupplierError(f"Premium is gifted for 3, 6 or 12 months, not {quantity}",
                            retryable=False, code="unsupported_product")
    return stars


def _refusal(description: str, recipient: str) -> SupplierError:
    if "BALANCE_TOO_LOW" in description:
        return SupplierError("the bot's Stars balance is too low for the gift", retryable=False,
                             code="insufficient_balance")
    if "user not found" in description.lower():
        return SupplierError(f"Telegram does not let the bot reach @{recipient} ({description})",
                             retryable=False, code="recipient_unknown")
    return SupplierError(f"Telegram refused the gift: {description[:200]}", retryable=False,
                         code="refused")


# --- the usernames the bot has met (table shop_telegram_users) ---------------------------

class SqlTelegramUsers(Repo):
    """`TelegramUsers` in a unit of work's transaction."""

    async def user_id(self, username: str) -> int | None:
        c = t.shop_telegram_users.c
        row = await self._one(sa.select(c.user_id).where(c.username == username.lower()))
        return int(row.user_id) if row else None

    async def remember(self, username: str, user_id: int, now: datetime) -> None:
        # An upsert: a username may move to another account, and the newest sighting wins.
        insert = _DIALECTS[self.conn.dialect.name].insert(t.shop_telegram_users).values(
            username=username.lower(), user_id=user_id, seen_at=now)
        await self.conn.execute(insert.on_conflict_do_update(
            index_elements=[t.shop_telegram_users.c.username],
            set_={"user_id": insert.excluded.user_id, "seen_at": insert.excluded.seen_at}))


def telegram_users(uow: UnitOfWork) -> SqlTelegramUsers:
    sql = cast(SqlUnitOfWork, uow)
    return SqlTelegramUsers(sql.connection, locking=sql.locking)


class StoredTelegramUsers:
    """`TelegramUsers` for the supplier: each call in its own unit of work."""

    def __init__(self, uow: Callable[..., Any]) -> None:
        self._uow = uow

    async def user_id(self, username: str) -> int | None:
        async with self._uow(write=False) as uow:
            return await telegram_users(uow).user_id(username)

    async def remember(self, username: str, user_id: int, now: datetime) -> None:
        async with self._uow() as uow:
            await telegram_users(uow).remember(username, user_id, now)
            await uow.commit()


def platform_stars(deps: Deps) -> Callable[[], Awaitable[int]]:
    """The platform's own Stars per the ledger (`owner:XTR`, where fee sweeps of Stars go):
    what gifts may spend of the bot's balance, which also holds the merchants' Stars."""
    account = ledger.owner(STARS)

    async def spendable() -> int:
        async with deps.uow(write=False) as uow:
            balances = await uow.ledger.balances(account)
        return balances.get((account, STARS), 0)
    return spendable
