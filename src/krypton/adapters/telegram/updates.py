"""One handler for every update the bot receives, whichever way it comes: posted to
/telegram/webhook (webhook mode) or fetched with getUpdates (polling mode).

Why a function and not aiogram's Dispatcher: the Stars rail already reads updates with
`parse_update` and must keep its exact behaviour (pre-checkout answered within Telegram's
ten seconds, a payment credited before the webhook answers 200); the merchant commands are
use cases (app/merchant_bot.py) that return their reply. A plain handler over both keeps one
path and one parser, with aiogram used as the Bot API client only.

Polling mode: `Poller.step` deletes the webhook first (Telegram refuses getUpdates while one
is set), then long-polls with the stored offset (cursor "telegram_updates"), moving it past
an update only once that update is handled: an update whose handling failed is fetched
again. Webhook mode: `WebhookRegistration.step` calls setWebhook with the secret when the
public URL is https, and checks now and then that the registration still stands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from krypton.adapters.db.stars_money import stars_book
from krypton.adapters.telegram.bot_api import BotApiError, MalformedUpdate, parse_update
from krypton.adapters.telegram.merchant_api import MerchantBotApi
from krypton.app import merchant_bot, stars
from krypton.app.deps import Deps

log = structlog.get_logger()
POLL_TIMEOUT_SECONDS = 25
# Told of each Telegram user the bot meets, (username, user id): the shop's Premium gifts
# need the id of a username, and a bot cannot look one up.
Met = Callable[[str, int], Awaitable[None]]


class UpdateHandler:
    """Handle one update (Telegram's JSON); raises MalformedUpdate for a broken Stars
    update, and lets a failure to credit a payment through (Telegram then sends it again)."""

    def __init__(self, deps: Deps, stars_bot: stars.StarsBot, kit: merchant_bot.Kit | None,
                 met: Met | None = None) -> None:
        self._deps = deps
        self._stars_bot = stars_bot
        self._kit = kit
        self._met = met

    async def handle(self, update: dict[str, Any]) -> None:
        if self._met is not None and (user := sender(update)) is not None:
            await self._met(*user)
        parsed = parse_update(update)
        if isinstance(parsed, stars.PreCheckout):
            await self._pre_checkout(parsed)
        elif isinstance(parsed, stars.StarsPayment):
            await stars.record_payment(self._deps, parsed, books=stars_book)
        elif self._kit is not None and (message := parse_message(update)) is not None:
            await self._command(self._kit, message)

    async def _pre_checkout(self, query: stars.PreCheckout) -> None:
        ok, reason = await stars.answer_pre_checkout(self._deps, query)
        try:
            await self._stars_bot.answer_pre_checkout(query.query_id, ok, reason)
        except BotApiError as exc:  # its message never holds the bot token
            # Telegram's retry would come after its ten seconds, too late to answer.
            log.warning("telegram_pre_checkout_unanswered", query_id=query.query_id,
                        invoice_id=query.payload, error=str(exc))

    async def _command(self, kit: merchant_bot.Kit, message: merchant_bot.BotMessage) -> None:
        reply = await merchant_bot.on_message(self._deps, kit, message,
                                              await kit.messenger.username())
        if reply is None:
            return
        try:
            await kit.messenger.send_message(message.chat_id, reply)
        except (merchant_bot.ChatBlocked, merchant_bot.SendFailed) as exc:
            # The command did its work (an invoice is idempotent on the update); a lost reply
            # is not worth Telegram delivering the update again.
            log.warning("telegram_reply_failed", chat_id=message.chat_id, error=str(exc))


def sender(update: dict[str, Any]) -> tuple[str, int] | None:
    """(username, user id) of who sent a message or a payment, if they have a username."""
    for kind in ("message", "pre_checkout_query"):
        part = update.get(kind)
        user = part.get("from") if isinstance(part, dict) else None
        if isinstance(user, dict) and _whole(user.get("id")) and isinstance(user.get("username"), str):
            return user["username"], user["id"]
    return None


def parse_message(update: dict[str, Any]) -> merchant_bot.BotMessage | None:
    """A text message's parts, or None for anything else (edits, joins, channel posts)."""
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat, sender, text = message.get("chat"), message.get("from"), message.get("text")
    update_id = update.get("update_id")
    if not isinstance(chat, dict) or not _whole(chat.get("id")) or not isinstance(update_id, int) \
            or isinstance(update_id, bool):
        return None
    title = chat.get("title") or chat.get("username") or chat.get("first_name")
    return merchant_bot.BotMessage(
        update_id=update_id, chat_id=chat["id"], chat_type=str(chat.get("type") or "private"),
        chat_title=str(title) if title else None,
        user_id=sender.get("id") if isinstance(sender, dict) and _whole(sender.get("id")) else None,
        text=text if isinstance(text, str) else None)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Poller:
    """Polling mode's job step: fetch the next updates and handle each, in order."""

    name = "telegram-polling"
    idle = 1.0  # after an empty long poll or a failure: the long poll is the wait

    def __init__(self, deps: Deps, api: MerchantBotApi, handler: UpdateHandler, *,
                 timeout: int = POLL_TIMEOUT_SECONDS) -> None:
        self._deps = deps
        self._api = api
        self._handler = handler
        self._timeout = timeout
        self._webhook_deleted = False

    async def step(self) -> int:
        if not self._webhook_deleted:
            await self._api.delete_webhook()
            self._webhook_deleted = True
            log.info("telegram_polling_started")
        async with self._deps.uow(write=False) as uow:
            stored = await uow.cursors.get(merchant_bot.UPDATES_CURSOR)
        updates = await self._api.get_updates(int(stored) if stored else None, self._timeout)
        for update in updates:
            try:
                await self._handler.handle(update)
            except MalformedUpdate as exc:  # it never will parse: skip it, say so
                log.warning("telegram_update_malformed", update_id=update.get("update_id"),
                            error=str(exc))
            await self._advance(int(update["update_id"]) + 1)
        return len(updates)

    async def _advance(self, offset: int) -> None:
        async with self._deps.uow() as uow:
            await uow.cursors.set(merchant_bot.UPDATES_CURSOR, str(offset))
            await uow.commit()


class WebhookRegistration:
    """Webhook mode's job step: register the webhook (https only, Telegram's rule), then
    check it every `idle` seconds and register it again if it was changed."""

    name = "telegram-webhook"
    idle = 600.0

    def __init__(self, api: MerchantBotApi, url: str, secret: str) -> None:
        self._api = api
        self.url = url
        self._secret = secret
        self._registered = False
        self._warned = False

    async def step(self) -> int:
        if not self.url.startswith("https://"):
            if not self._warned:  # once: the operator registers it, or uses polling
                log.warning("telegram_webhook_not_registered", url=self.url,
                            note="Telegram posts only to https; set KRYPTON_PUBLIC_URL to an "
                            "https URL, run `krypton telegram set-webhook`, or use "
                            "KRYPTON_TELEGRAM_MODE=polling")
                self._warned = True
            return 0
        if self._registered and (await self._api.webhook_info()).url == self.url:
            return 0
        await self._api.set_webhook(self.url, self._secret)
        log.info("telegram_webhook_registered", url=self.url, again=self._registered)
        self._registered = True
        return 0
