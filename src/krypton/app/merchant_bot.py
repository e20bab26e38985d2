"""The merchant Telegram bot: linking a chat to a merchant with a one-time code, the commands
a linked chat may send (/balance, /invoice, /unlink, /help), and the notifications of paid,
underpaid and expired invoices.

Notifications go through an outbox (table telegram_messages): the relay, a consumer of the
event log named "telegram", writes one message per (event, linked chat) in the same
transaction as its position; the sender sends due messages outside any transaction, each
chat on its own (a failing chat waits for its retry without holding up the others), and a
chat that blocked the bot (Telegram's 403) is unlinked.

The bot's own tables sit outside the shared `UnitOfWork`: `Kit.repos` makes their
repository on a unit of work the caller opened, so they commit together with it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from krypton.app import invoices
from krypton.app.deps import Deps
from krypton.app.ports import UnitOfWork
from krypton.domain import ledger
from krypton.domain import merchant_bot as rules
from krypton.domain.errors import DomainError, NotFound

RELAY = "telegram"
# Where the polling loop keeps the next update_id it wants (the cursors table).
UPDATES_CURSOR = "telegram_updates"
# Chats sent to at once by one sender round: Telegram allows about 30 messages a second.
CONCURRENT_CHATS = 16
MAX_ERROR = 500


class MessageStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the retry schedule
    DROPPED = "dropped"  # the chat was unlinked (by itself, or it blocked the bot)


@dataclass(frozen=True, slots=True)
class Chat:
    chat_id: int
    merchant_id: str
    chat_type: str
    title: str | None
    linked_by: int | None
    linked_at: datetime


@dataclass(frozen=True, slots=True)
class LinkCode:
    code_hash: str
    merchant_id: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    used_by_chat: int | None = None


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    chat_id: int
    merchant_id: str
    event_id: str
    position: tuple[int, int]  # the event's (txid, seq): a chat's messages go out in this order
    text: str
    status: MessageStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None = None
    last_error: str | None = None


class BotRepo(Protocol):
    """The bot's tables, inside the unit of work it was made on. Never commits."""

    async def add_code(self, code: LinkCode) -> None: ...
    async def code(self, code_hash: str) -> LinkCode | None: ...
    async def spend_code(self, code_hash: str, chat_id: int, now: datetime) -> bool:
        """Mark an unspent code spent; False when it was spent already (a concurrent spend)."""
    async def chat(self, chat_id: int) -> Chat | None: ...
    async def link(self, chat: Chat) -> None:
        """Link the chat, replacing the merchant it was linked to, if any."""
    async def unlink(self, chat_id: int) -> bool: ...
    async def linked_merchants(self) -> set[str]:
        """Merchants with at least one linked chat."""
    async def chats_of(self, merchant_ids: Sequence[str]) -> list[Chat]: ...
    async def add_messages(self, messages: Sequence[Message]) -> None:
        """Insert, skipping an (event, chat) pair already there."""
    async def due_messages(self, now: datetime, limit: int) -> list[Message]:
        """Pending messages due by `now`, in the order of their events."""
    async def save_messages(self, messages: Sequence[Message]) -> None: ...
    async def drop_pending(self, chat_id: int, now: datetime, reason: str) -> int: ...
    async def messages_for(self, chat_id: int) -> list[Message]: ...


BotRepos = Callable[[UnitOfWork], BotRepo]


class ChatBlocked(Exception):
    """Telegram refused with 403: the bot was blocked, kicked, or the chat is gone."""


class SendFailed(Exception):
    """A send that may work later; `retry_after`: Telegram's flood-wait, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Messenger(Protocol):
    """What the bot sends (adapters/telegram/merchant_api.py). Errors never hold the token."""

    async def send_message(self, chat_id: int, text: str) -> None:
        """Send HTML `text`; raises ChatBlocked or SendFailed."""

    async def username(self) -> str | None:
        """The bot's @username (getMe, cached), None when Telegram cannot say."""


@dataclass(frozen=True)
class Kit:
    """What the bot needs beyond `Deps`."""

    repos: BotRepos
    messenger: Messenger
    public_url: str


@dataclass(frozen=True, slots=True)
class BotMessage:
    """A text message sent to the bot, as far as commands need it."""

    update_id: int
    chat_id: int
    chat_type: str
    chat_title: str | None
    user_id: int | None
    text: str | None


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A new link code: shown once; `deep_link` opens the bot with it (None: the bot's
    username is unknown right now)."""

    code: str
    merchant_id: str
    expires_at: datetime
    deep_link: str | None


# --- linking -------------------------------------------------------------------------

async def create_link_code(deps: Deps, kit: Kit, merchant_id: str,
                           created_by: str | None) -> IssuedCode:
    """A one-time code that links the chat it is sent from to `merchant_id`."""
    now = deps.clock.now()
    code = rules.new_code(deps.ids.random_bytes(rules.CODE_LENGTH))
    expires_at = now + rules.CODE_TTL
    async with deps.uow() as uow:
        if await uow.merchants.get(merchant_id) is None:
            raise NotFound(f"No merchant '{merchant_id}'.", field="merchant_id")
        await kit.repos(uow).add_code(LinkCode(rules.code_hash(code), merchant_id, created_by,
                                               now, expires_at))
        await uow.commit()
    username = await kit.messenger.username()
    deep_link = f"https://t.me/{username}?start={code}" if username else None
    return IssuedCode(code, merchant_id, expires_at, deep_link)


async def _link(deps: Deps, kit: Kit, msg: BotMessage, typed: str) -> str:
    code = rules.normalise_code(typed)
    if code is None:
        return ("That is not a link code: a code is 10 letters and digits, like "
                "<code>7K3Q-9XMPRT</code>. Create one in the dashboard and send "
                "<code>/link CODE</code>.")
    now = deps.clock.now()
    async with deps.uow() as uow:
        repo = kit.repos(uow)
        found = await repo.code(rules.code_hash(code))
        refusal = _refusal(found, now)
        if refusal is not None or found is None:
            return refusal or ""
        merchant = await uow.merchants.get(found.merchant_id)
        if merchant is None or not await repo.spend_code(found.code_hash, msg.chat_id, now):
            return "This link code was already used; create a new one in the dashboard."
        before = await repo.chat(msg.chat_id)
        await repo.link(Chat(msg.chat_id, merchant.id, msg.chat_type, msg.chat_title,
                             msg.user_id, now))
        await uow.commit()
    moved = ""
    if before is not None and before.merchant_id != merchant.id:
        moved = f" (it was linked to merchant <code>{rules.escape(before.merchant_id)}</code> before)"
    return (f"This chat is now linked to <b>{rules.escape(merchant.name)}</b>{moved}. You will be "
            f"told here about paid, underpaid and expired invoices.\n\n{rules.HELP}")


def _refusal(found: LinkCode | None, now: datetime) -> str | None:
    if found is None:
        return ("I don't know this link code. Check it, or create a new one in the dashboard "
                "(codes are valid for 10 minutes).")
    if found.used_at is not None:
        return "This link code was already used; create a new one in the dashboard."
    if now >= found.expires_at:
        return "This link code has expired (codes are valid for 10 minutes); create a new one."
    return None


async def unlink(deps: Deps, kit: Kit, chat_id: int, reason: str) -> bool:
    """Unlink the chat and drop its unsent notifications; False when it was not linked."""
    async with deps.uow() as uow:
        repo = kit.repos(uow)
        gone = await repo.unlink(chat_id)
        await repo.drop_pending(chat_id, deps.clock.now(), reason)
        await uow.commit()
    return gone


# --- commands --------------------------------------------------------------------------

async def on_message(deps: Deps, kit: Kit, msg: BotMessage, bot_username: str | None = None
                     ) -> str | None:
    """The reply (Telegram HTML) to a message sent to the bot; None: nothing to say (plain
    text in a group, a command meant for another bot)."""
    command = rules.parse_command(msg.text, bot_username)
    if command is None:
        private = msg.chat_type == "private"
        return "Send /help to see what I can do." if private and msg.text else None
    if command.name in ("start", "link") and command.args:
        return await _link(deps, kit, msg, "".join(command.args))
    if command.name == "link":
        return "Send the code with it: <code>/link CODE</code>."
    async with deps.uow(write=False) as uow:
        chat = await kit.repos(uow).chat(msg.chat_id)
    if chat is None:
        return rules.LINK_HOWTO
    if command.name in ("start", "help"):
        return rules.HELP
    if command.name == "unlink":
        await unlink(deps, kit, msg.chat_id, "unlinked with /unlink")
        return "This chat is unlinked: no more notifications or commands here."
    if command.name == "balance":
        return rules.balances_text(await balances(deps, chat.merchant_id))
    if command.name == "invoice":
        return await _invoice(deps, kit, chat, msg, command.args)
    return f"I don't know /{rules.escape(command.name[:32])}.\n\n{rules.HELP}"


async def balances(deps: Deps, merchant_id: str) -> dict[str, tuple[int, int]]:
    """Per asset, (available, pending): settled to the merchant, and received but not yet
    settled. The same sums as GET /api/v1/balances."""
    async with deps.uow(write=False) as uow:
        available = await uow.ledger.balances(ledger.merchant_account(merchant_id, ""))
        pending = await uow.ledger.balances(ledger.clearing(merchant_id, ""))
    per_asset: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (_, asset), amount in available.items():
        per_asset[asset][0] = amount
    for (_, asset), amount in pending.items():
        per_asset[asset][1] = amount
    return {asset: (v[0], v[1]) for asset, v in per_asset.items()}


async def _invoice(deps: Deps, kit: Kit, chat: Chat, msg: BotMessage,
                   args: tuple[str, ...]) -> str:
    try:
        order = rules.invoice_order(args)
    except rules.BadCommand as exc:
        return str(exc)
    request = invoices.InvoiceRequest(amount=order.amount, currency=order.currency,
                                      methods=order.methods, description="Created in Telegram")
    try:
        # Keyed by the update: Telegram delivering it again makes no second invoice.
        created = await invoices.create_invoice(
            deps, chat.merchant_id, request, view=lambda i: i.id,
            idempotency_key=f"telegram:{msg.chat_id}:{msg.update_id}")
    except DomainError as exc:
        return f"I could not create the invoice: {rules.escape(exc.message)}"
    invoice_id = str(created.view)
    url = f"{kit.public_url.rstrip('/')}/pay/{invoice_id}"
    return (f"Invoice <code>{rules.escape(invoice_id)}</code> for {rules.escape(order.amount)} "
            f"{rules.escape(order.currency)}. Send the payer this link:\n{rules.escape(url)}")


# --- notifications: the relay ------------------------------------------------------------

async def relay(deps: Deps, kit: Kit, batch: int = 500) -> int:
    """Turn the next batch of events into messages to linked chats; how many events were
    read. A chat gets what happens from its linking on, not the history before it."""
    async with deps.uow() as uow:
        position = await uow.events.consumer_position(RELAY)
        repo = kit.repos(uow)
        # Only what a linked chat is told is read in full: most of the log is not for chats.
        linked = await repo.linked_merchants()
        window = await uow.events.window(
            position, batch, lambda kind, merchant: kind in rules.NOTIFIED_EVENTS and merchant in linked)
        relevant = [e for e in window.events if e.merchant_id]
        chats: dict[str, list[Chat]] = defaultdict(list)
        merchant_ids = sorted({e.merchant_id for e in relevant if e.merchant_id})
        for chat in await repo.chats_of(merchant_ids) if merchant_ids else ():
            chats[chat.merchant_id].append(chat)
        now = deps.clock.now()
        messages = [
            Message(deps.ids.new("tgm"), chat.chat_id, chat.merchant_id, event.id,
                    (event.txid, event.seq), rules.notification(event.type, event.subject_id, event.data),
                    MessageStatus.PENDING, 0, now, now)
            for event in relevant for chat in chats.get(event.merchant_id or "", ())
            if event.created_at >= chat.linked_at]
        await repo.add_messages(messages)
        if window.end is not None:
            await uow.events.set_consumer_position(RELAY, window.end)
        await uow.commit()
    return len(window.types)


# --- notifications: the sender -----------------------------------------------------------

async def send_due(deps: Deps, kit: Kit, batch: int = 100) -> int:
    """Send the messages due now, each chat in order and on its own; how many were tried."""
    now = deps.clock.now()
    async with deps.uow(write=False) as uow:
        due = await kit.repos(uow).due_messages(now, batch)
    by_chat: dict[int, list[Message]] = defaultdict(list)
    for message in due:
        by_chat[message.chat_id].append(message)
    gate = asyncio.Semaphore(CONCURRENT_CHATS)

    async def one_chat(messages: list[Message]) -> tuple[list[Message], bool]:
        async with gate:
            return await _send_chat(deps, kit, messages)

    results = await asyncio.gather(*(one_chat(m) for m in by_chat.values()))
    blocked = [chat_id for (_, gone), chat_id in zip(results, by_chat, strict=True) if gone]
    async with deps.uow() as uow:
        repo = kit.repos(uow)
        await repo.save_messages([m for done, _ in results for m in done])
        for chat_id in blocked:
            await repo.unlink(chat_id)
            await repo.drop_pending(chat_id, deps.clock.now(), "the chat blocked the bot")
        await uow.commit()
    return len(due)


async def _send_chat(deps: Deps, kit: Kit, messages: list[Message]) -> tuple[list[Message], bool]:
    """Send one chat's messages in order, stopping at the first failure (the rest wait with
    it, so the chat keeps its order); the messages as they end, and whether the chat blocked
    the bot."""
    done: list[Message] = []
    for index, message in enumerate(messages):
        try:
            await kit.messenger.send_message(message.chat_id, message.text)
        except ChatBlocked:
            return done, True
        except SendFailed as exc:
            failed = _failed(message, str(exc), exc.retry_after, deps.clock.now())
            done.append(failed)
            wait = failed.next_attempt_at
            done.extend(replace(m, next_attempt_at=wait) for m in messages[index + 1:]
                        if wait is not None)
            return done, False
        done.append(replace(message, status=MessageStatus.SENT, attempts=message.attempts + 1,
                            next_attempt_at=None, finished_at=deps.clock.now(), last_error=None))
    return done, False


def _failed(message: Message, error: str, retry_after: float | None, now: datetime) -> Message:
    attempts = message.attempts + 1
    delay = rules.retry_delay(attempts)
    if delay is None:
        return replace(message, status=MessageStatus.FAILED, attempts=attempts,
                       next_attempt_at=None, finished_at=now, last_error=error[:MAX_ERROR])
    if retry_after is not None:  # Telegram's flood control says how long, at least
        delay = max(delay, timedelta(seconds=retry_after))
    return replace(message, attempts=attempts, next_attempt_at=now + delay,
                   last_error=error[:MAX_ERROR])
