"""The merchant bot's Bot API calls, through the same aiogram client as Stars (bot_api.py):
sendMessage, getMe, getUpdates and the webhook's setWebhook / deleteWebhook /
getWebhookInfo. Every error leaving this module is scrubbed of the token."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import GetUpdates
from aiogram.types import LinkPreviewOptions

from krypton.adapters.telegram.bot_api import BotApi, BotApiError
from krypton.app.merchant_bot import ChatBlocked, SendFailed

T = TypeVar("T")
# The update kinds Krypton reads: merchants' messages and the Stars rail's pre-checkouts.
ALLOWED_UPDATES = ["message", "pre_checkout_query"]


@dataclass(frozen=True, slots=True)
class WebhookInfo:
    url: str
    pending_update_count: int
    last_error_message: str | None


class RawUpdates(GetUpdates):
    """getUpdates answered as plain JSON: aiogram's models would refuse the whole batch over
    one update they cannot read, and the poller needs Telegram's JSON anyway (the webhook's)."""

    __returning__ = list[dict[str, Any]]


class MerchantBotApi:
    """`app.merchant_bot.Messenger`, and the update plumbing for webhook and polling modes."""

    def __init__(self, api: BotApi) -> None:
        self._api = api
        self._username: str | None = None

    async def send_message(self, chat_id: int, text: str) -> None:
        try:
            await self._api.bot.send_message(
                chat_id=chat_id, text=text, parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True))
        except TelegramForbiddenError as exc:
            raise ChatBlocked(self._api.scrub(exc.message)) from None
        except TelegramRetryAfter as exc:
            raise SendFailed(self._text(exc), retry_after=float(exc.retry_after)) from None
        except Exception as exc:
            raise SendFailed(self._text(exc)) from None

    async def username(self) -> str | None:
        if self._username is None:
            try:
                me = await self._call(self._api.bot.get_me())
            except BotApiError:
                return None
            self._username = me.username
        return self._username

    async def get_updates(self, offset: int | None, wait: int) -> list[dict[str, Any]]:
        """The next updates as Telegram's JSON (what the webhook receives), long-polling up
        to `wait` seconds."""
        updates: list[Any] = await self._call(self._api.bot(
            RawUpdates(offset=offset, timeout=wait, allowed_updates=ALLOWED_UPDATES),
            request_timeout=wait + 10))
        return [u for u in updates if isinstance(u, dict)]

    async def set_webhook(self, url: str, secret: str) -> None:
        await self._call(self._api.bot.set_webhook(
            url=url, secret_token=secret, allowed_updates=ALLOWED_UPDATES))

    async def delete_webhook(self) -> None:
        # Pending updates are kept: polling picks them up.
        await self._call(self._api.bot.delete_webhook(drop_pending_updates=False))

    async def webhook_info(self) -> WebhookInfo:
        info = await self._call(self._api.bot.get_webhook_info())
        return WebhookInfo(info.url, info.pending_update_count, info.last_error_message)

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except Exception as exc:
            raise BotApiError(f"Telegram Bot API call failed: {self._text(exc)}") from None

    def _text(self, exc: Exception) -> str:
        # aiogram and aiohttp errors may quote the request URL, which holds the token.
        return self._api.scrub(f"{type(exc).__name__}: {exc}")
