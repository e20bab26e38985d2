"""The Telegram Bot API for Stars: invoice links, pre-checkout answers, and reading the updates
Telegram posts to our webhook.

The client is aiogram 3's `Bot`; `base_url` points it at another Bot API server (the devnet's
fake in tests and local runs). The bot token is part of every request URL, so no error leaving
this module carries the provider's text unscrubbed: the token never reaches a log line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.types import LabeledPrice, TransactionPartnerUser

from krypton.app.refunds import RefundRefused
from krypton.app.stars import PreCheckout, StarsPayment
from krypton.app.stars_reconcile import StarTransaction, fetch_all

STARS = "XTR"
# Bot API limits on createInvoiceLink's texts; longer ones are refused with a 400.
TITLE_MAX = 32
DESCRIPTION_MAX = 255
ERROR_MESSAGE_MAX = 255


class BotApiError(Exception):
    """The Bot API refused a call or could not be reached; the message never holds the token."""


class BotApiRefused(BotApiError):
    """The Bot API answered and said no (400/403): `description` is Telegram's reason
    ("Bad Request: BALANCE_TOO_LOW", "Bad Request: user not found", …), token scrubbed."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class BotApi:
    """The Stars calls Krypton makes, through aiogram's real client."""

    def __init__(self, token: str, base_url: str | None = None, *, timeout: float = 10.0) -> None:
        api = TelegramAPIServer.from_base(base_url) if base_url else None
        session = AiohttpSession(api=api, timeout=timeout) if api else AiohttpSession(timeout=timeout)
        self._token = token
        self._bot = Bot(token, session=session)

    async def create_invoice_link(self, *, title: str, description: str, payload: str,
                                  amount: int, subscription_period: int | None = None) -> str:
        """A t.me link to pay `amount` Stars; `payload` comes back in the payment's updates.
        With `subscription_period` Telegram charges the payer again every period."""
        link = await self._call(self._bot.create_invoice_link(
            title=title[:TITLE_MAX], description=description[:DESCRIPTION_MAX], payload=payload,
            currency=STARS, provider_token="",
            prices=[LabeledPrice(label=title[:TITLE_MAX], amount=amount)],
            subscription_period=subscription_period))
        return str(link)

    async def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        """Give a Stars payment back; RefundRefused with Telegram's reason when it says no
        (CHARGE_ALREADY_REFUNDED, CHARGE_NOT_FOUND, …), BotApiError when it was not reached."""
        try:
            await self._bot.refund_star_payment(user_id=user_id,
                                                telegram_payment_charge_id=charge_id)
        except TelegramBadRequest as exc:
            raise RefundRefused(str(exc.message).replace(self._token, "<token>")) from None
        except Exception as exc:
            await self._call(_raise(exc))

    async def star_transactions(self, offset: int, limit: int) -> list[StarTransaction]:
        """One page of getStarTransactions: the transactions with users (payments, refunds)."""
        page = await self._call(self._bot.get_star_transactions(offset=offset, limit=limit))
        found = []
        for tx in page.transactions:
            partner = tx.source if tx.source is not None else tx.receiver
            user = partner if isinstance(partner, TransactionPartnerUser) else None
            found.append(StarTransaction(
                id=tx.id, amount=tx.amount, nanostar_amount=tx.nanostar_amount or 0,
                date=tx.date if tx.date.tzinfo else tx.date.replace(tzinfo=UTC),
                incoming=tx.source is not None, user_id=user.user.id if user else None,
                payload=user.invoice_payload if user else None))
        return found

    async def payer_of(self, charge_id: str) -> int | None:
        """Who paid a charge, from the bot's history (for payments recorded before Krypton
        kept payers)."""
        for tx in await fetch_all(self):
            if tx.incoming and tx.id == charge_id:
                return tx.user_id
        return None

    async def star_balance(self) -> int:
        """getMyStarBalance: the bot's own Stars, whole (the nanostar part is not spendable)."""
        amount = await self._call(self._bot.get_my_star_balance())
        return int(amount.amount)

    async def gift_premium(self, user_id: int, months: int, stars: int, text: str | None = None) -> None:
        """giftPremiumSubscription: `months` of Premium for `user_id`, paid with `stars` of the
        bot's balance (the Bot API fixes the price per period). BotApiRefused when Telegram
        says no, BotApiError when it was not reached (the gift may or may not have happened)."""
        try:
            await self._bot.gift_premium_subscription(user_id=user_id, month_count=months,
                                                      star_count=stars, text=text)
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            raise BotApiRefused(self.scrub(str(exc.message))) from None
        except Exception as exc:
            await self._call(_raise(exc))

    async def answer_pre_checkout(self, query_id: str, ok: bool,
                                  error_message: str | None = None) -> None:
        """Let Telegram charge the payer (ok) or refuse, telling the payer why."""
        await self._call(self._bot.answer_pre_checkout_query(
            pre_checkout_query_id=query_id, ok=ok,
            error_message=None if ok else (error_message or "")[:ERROR_MESSAGE_MAX]))

    async def close(self) -> None:
        await self._bot.session.close()

    @property
    def bot(self) -> Bot:
        """aiogram's client, for the merchant bot's calls (adapters/telegram/merchant_api.py)."""
        return self._bot

    def scrub(self, text: str) -> str:
        """`text` with the bot token taken out, for errors and logs."""
        return text.replace(self._token, "<token>")

    async def _call(self, call: Any) -> Any:
        try:
            return await call
        except Exception as exc:
            # aiogram and aiohttp errors may quote the request URL, which holds the token.
            text = f"{type(exc).__name__}: {exc}".replace(self._token, "<token>")
            raise BotApiError(f"Telegram Bot API call failed: {text}") from None


async def _raise(exc: Exception) -> None:
    raise exc


class MalformedUpdate(ValueError):
    """An update that claims to be a pre-checkout query or a payment but lacks a field."""


def parse_update(update: dict[str, Any]) -> PreCheckout | StarsPayment | None:
    """What an update means for Stars; None for every other kind (messages, commands, …)."""
    if not isinstance(update, dict):
        raise MalformedUpdate("An update must be a JSON object.")
    query = update.get("pre_checkout_query")
    if query is not None:
        return _pre_checkout(_object(query, "pre_checkout_query"))
    message = update.get("message")
    if isinstance(message, dict) and message.get("successful_payment") is not None:
        return _payment(message)
    return None


def _pre_checkout(query: dict[str, Any]) -> PreCheckout:
    payer = _object(query.get("from"), "pre_checkout_query.from")
    return PreCheckout(
        query_id=_text(query, "id", "pre_checkout_query"),
        currency=_text(query, "currency", "pre_checkout_query"),
        total_amount=_whole(query, "total_amount", "pre_checkout_query"),
        payload=_text(query, "invoice_payload", "pre_checkout_query"),
        payer_id=_whole(payer, "id", "pre_checkout_query.from"))


def _payment(message: dict[str, Any]) -> StarsPayment:
    paid = _object(message["successful_payment"], "message.successful_payment")
    where = "message.successful_payment"
    payer = message.get("from")
    return StarsPayment(
        charge_id=_text(paid, "telegram_payment_charge_id", where),
        currency=_text(paid, "currency", where),
        total_amount=_whole(paid, "total_amount", where),
        payload=_text(paid, "invoice_payload", where),
        payer_id=_whole(payer, "id", "message.from") if isinstance(payer, dict) else None,
        paid_at=datetime.fromtimestamp(_whole(message, "date", "message"), UTC),
        is_recurring=paid.get("is_recurring") is True,
        is_first_recurring=paid.get("is_first_recurring") is True,
        subscription_expires_at=_moment(paid, "subscription_expiration_date", where))


def _moment(obj: dict[str, Any], name: str, where: str) -> datetime | None:
    if obj.get(name) is None:
        return None
    return datetime.fromtimestamp(_whole(obj, name, where), UTC)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedUpdate(f"{where} must be an object.")
    return value


def _text(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise MalformedUpdate(f"{where}.{name} must be a string.")
    return value


def _whole(obj: dict[str, Any], name: str, where: str) -> int:
    value = obj.get(name)
    # bool is an int in Python; a JSON true is not an amount.
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedUpdate(f"{where}.{name} must be an integer.")
    return value
