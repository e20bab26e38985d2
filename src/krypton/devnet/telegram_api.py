"""A small fake of the Telegram Bot API for Stars, speaking its JSON format.

    POST /bot{token}/createInvoiceLink       XTR only, one price, empty provider token
    POST /bot{token}/answerPreCheckoutQuery  recorded, once per query
    POST /bot{token}/getMe                   who the bot is (a client's first sanity check)
    POST /bot{token}/refundStarPayment       once per charge, by the payer's user id
    POST /bot{token}/getStarTransactions     the bot's Stars history, oldest first (offset/limit)
    POST /bot{token}/sendMessage             recorded per chat (`sent`); HTML checked; 403 for
                                             chats a test put in `blocked`
    POST /bot{token}/getUpdates              the queue (`queue`, `user_message`): offset
                                             confirms, timeout long-polls; 409 while a webhook is set
    POST /bot{token}/setWebhook, deleteWebhook, getWebhookInfo   the registration (`webhook_url`)
    POST /bot{token}/getMyStarBalance        the bot's own Stars (`star_balance`)
    POST /bot{token}/giftPremiumSubscription user_id, month_count 3|6|12, star_count exactly
                                             1000|1500|2500 (the Bot API's fixed prices), paid
                                             from `star_balance`; recorded in `premium_gifts`.
                                             Refusals: "user not found" (a user the bot never
                                             met: not in `users`, which payers and writers
                                             join), BALANCE_TOO_LOW (MTProto's name for too
                                             few Stars), a wrong month_count or star_count;
                                             `gift_faults` answers 5xx that many times

Subscriptions: a link made with `subscription_period` (30 days, at most 10,000 Stars) is
paid with `is_recurring`/`is_first_recurring`; `renew` posts the next period's payment.

Parameters come as the Bot API takes them: a JSON body, a form (aiogram sends one, with
`prices` JSON-encoded) or the query string. Answers are {"ok": true, "result": …} or
{"ok": false, "error_code": …, "description": "Bad Request: …"}.

`pay` plays a payer: it posts the `pre_checkout_query` update for a link to the bot's
webhook (a `Deliver` callback: `webhook` POSTs to a URL with the secret header, tests may
pass their own), and only if the bot answered ok, the message with `successful_payment`.
No real Stars update JSON is public: these are built from the Bot API's schema.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import re
import time
from base64 import urlsafe_b64encode
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Deliver = Callable[[dict[str, Any]], Awaitable[None]]
STARS = "XTR"
LINK_PREFIX = "https://t.me/$"
BOT_ID = 7_000_000_001
BOT_USERNAME = "krypton_devnet_bot"


class BadRequest(Exception):
    """Refused as the Bot API refuses: 400 and "Bad Request: <why>"."""


class Refused(Exception):
    """Refused with another status: 403 Forbidden, 409 Conflict (`status`, `description`)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A sendMessage the bot made: its text as sent and its parse mode."""

    chat_id: int
    text: str
    parse_mode: str | None


@dataclass(frozen=True, slots=True)
class StarsInvoice:
    """What a created link charges."""

    link: str
    title: str
    description: str
    payload: str
    amount: int
    subscription_period: int | None = None


@dataclass(slots=True)
class Charge:
    """A payment Telegram took, as getStarTransactions and refundStarPayment know it."""

    charge_id: str
    payer_id: int
    amount: int
    payload: str
    date: int
    subscription_period: int | None = None
    expires: int | None = None  # a subscription's end, for the next renewal
    refunded_at: int | None = None


# giftPremiumSubscription's prices: star_count must be exactly this for the months.
PREMIUM_GIFT_STARS = {3: 1000, 6: 1500, 12: 2500}
# Telegram's one subscription period (30 days) and its price limit.
SUBSCRIPTION_PERIOD = 2_592_000
SUBSCRIPTION_MAX_STARS = 10_000


@dataclass(frozen=True, slots=True)
class Answer:
    ok: bool
    error_message: str | None


@dataclass(frozen=True, slots=True)
class PayOutcome:
    """How a `pay` went: the bot's answer and, if it let the payer pay, the charge id."""

    answer: Answer | None  # None: the bot never answered the pre-checkout query
    charge_id: str | None


class FakeBotApi:
    def __init__(self, token: str, *, now: Callable[[], datetime] | None = None) -> None:
        self.token = token
        self._now = now or (lambda: datetime.now(UTC))
        self.invoices: dict[str, StarsInvoice] = {}
        self.answers: dict[str, Answer] = {}
        self._asked: set[str] = set()  # pre-checkout queries sent and not yet answered
        self.charges: dict[str, Charge] = {}  # by charge id, in the order they were taken
        self._serial = 0
        # The merchant bot's side: what it sent, chats that blocked it, updates to fetch.
        self.sent: dict[int, list[SentMessage]] = {}
        self.blocked: set[int] = set()
        self.updates: list[dict[str, Any]] = []
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        # Premium gifts from the bot's own Stars balance.
        self.star_balance = 0
        self.users: set[int] = set()  # user ids the bot has met (may receive a gift)
        self.premium_gifts: list[tuple[int, int, int]] = []  # (user_id, months, stars)
        self.gift_faults = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/bot{token}/{method}", self._call, methods=["GET", "POST"])])

    async def pay(self, link: str, deliver: Deliver, *, payer_id: int = 100_001,
                  total_amount: int | None = None) -> PayOutcome:
        """A payer opens `link` and pays: the pre-checkout query, then, if answered ok, the
        payment. `total_amount` overrides what Telegram charges (a link made before a change)."""
        invoice = self.invoices.get(link)
        if invoice is None:
            raise KeyError(f"No Stars invoice was created with the link {link}.")
        amount = invoice.amount if total_amount is None else total_amount
        self.users.add(payer_id)  # the bot has met whoever pays it
        query_id = self._next("pcq")
        self._asked.add(query_id)
        payer = {"id": payer_id, "is_bot": False, "first_name": "Devnet", "language_code": "en"}
        await deliver({"update_id": self._update_id(), "pre_checkout_query": {
            "id": query_id, "from": payer, "currency": STARS, "total_amount": amount,
            "invoice_payload": invoice.payload}})
        answer = self.answers.get(query_id)
        if answer is None or not answer.ok:
            return PayOutcome(answer, None)
        charge_id = self._next("stxch")
        await deliver(self.payment_update(invoice, charge_id, payer_id, amount))
        return PayOutcome(answer, charge_id)

    async def renew(self, first_charge_id: str, deliver: Deliver) -> str:
        """Telegram charges a subscriber for the next period (no pre-checkout query): a new
        charge id, the same payload, `is_recurring` and the new expiry. Returns the charge id."""
        first = self.charges[first_charge_id]
        if first.subscription_period is None or first.expires is None:
            raise KeyError(f"Charge {first_charge_id} did not start a subscription.")
        invoice = StarsInvoice("", "", "", first.payload, first.amount, first.subscription_period)
        charge_id = self._next("stxch")
        await deliver(self.payment_update(invoice, charge_id, first.payer_id, first.amount,
                                          first=False, expires=first.expires + first.subscription_period))
        first.expires += first.subscription_period
        return charge_id

    def payment_update(self, invoice: StarsInvoice, charge_id: str, payer_id: int,
                       amount: int, *, first: bool = True,
                       expires: int | None = None) -> dict[str, Any]:
        """The message Telegram sends once it charged the payer (delivered again by a test to
        play Telegram retrying a webhook); the charge is remembered for refunds and history."""
        payer = {"id": payer_id, "is_bot": False, "first_name": "Devnet", "language_code": "en"}
        date = int(self._now().timestamp())
        paid: dict[str, Any] = {
            "currency": STARS, "total_amount": amount, "invoice_payload": invoice.payload,
            "telegram_payment_charge_id": charge_id, "provider_payment_charge_id": ""}
        period = invoice.subscription_period
        if period is not None:
            expires = expires if expires is not None else date + period
            paid.update(is_recurring=True, subscription_expiration_date=expires)
            if first:
                paid["is_first_recurring"] = True
        if charge_id not in self.charges:
            self.charges[charge_id] = Charge(charge_id, payer_id, amount, invoice.payload, date,
                                             period, expires)
        return {"update_id": self._update_id(), "message": {
            "message_id": self._serial, "date": date,
            "chat": {"id": payer_id, "type": "private", "first_name": "Devnet"}, "from": payer,
            "successful_payment": paid}}

    async def _call(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "createInvoiceLink": self._create_invoice_link,
            "answerPreCheckoutQuery": self._answer_pre_checkout_query,
            "getMe": self._get_me,
            "refundStarPayment": self._refund_star_payment,
            "getStarTransactions": self._get_star_transactions,
            "sendMessage": self._send_message,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getMyStarBalance": self._get_my_star_balance,
            "giftPremiumSubscription": self._gift_premium_subscription,
        }
        handler = handlers.get(request.path_params["method"])
        if handler is None:
            return _error(404, "Not Found")
        try:
            result = handler(await _params(request))
            if inspect.isawaitable(result):  # getUpdates long-polls
                result = await result
            return JSONResponse({"ok": True, "result": result})
        except BadRequest as exc:
            return _error(400, f"Bad Request: {exc}")
        except Refused as exc:
            return _error(exc.status, str(exc))

    def _get_my_star_balance(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"amount": self.star_balance, "nanostar_amount": 0}

    def _gift_premium_subscription(self, params: dict[str, Any]) -> bool:
        if self.gift_faults > 0:
            self.gift_faults -= 1
            raise Refused(502, "Bad Gateway")
        user_id = _count(params.get("user_id"), 0, "user_id")
        months = _count(params.get("month_count"), 0, "month_count")
        stars = _count(params.get("star_count"), 0, "star_count")
        price = PREMIUM_GIFT_STARS.get(months)
        if price is None:
            raise BadRequest("month_count must be one of 3, 6 or 12")
        if stars != price:
            raise BadRequest(f"star_count must be {price} for {months} months")
        if user_id not in self.users:
            raise BadRequest("user not found")
        if self.star_balance < stars:
            raise BadRequest("BALANCE_TOO_LOW")
        self.star_balance -= stars
        self.premium_gifts.append((user_id, months, stars))
        return True

    # --- the merchant bot: messages, updates, webhook ------------------------------------

    def user_message(self, chat_id: int, text: str, *, user_id: int | None = None,
                     chat_type: str = "private", title: str | None = None,
                     username: str | None = None) -> dict[str, Any]:
        """A person's text message to the bot, queued for getUpdates; returned too, for a
        test to post to the webhook instead."""
        sender: dict[str, Any] = {"id": user_id or chat_id, "is_bot": False, "first_name": "Merchant"}
        if username:
            sender["username"] = username
        self.users.add(user_id or chat_id)  # the bot has met whoever writes to it
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        chat.update({"title": title} if title else {"first_name": "Merchant"})
        update = {"update_id": self._update_id(), "message": {
            "message_id": self._serial, "date": int(self._now().timestamp()), "chat": chat,
            "from": sender, "text": text}}
        self.queue(update)
        return update

    def queue(self, update: dict[str, Any]) -> None:
        """Hold `update` for getUpdates (what Telegram does while no webhook is set)."""
        self.updates.append(update)

    def pre_checkout_update(self, link: str, payer_id: int = 100_001) -> dict[str, Any]:
        """The pre_checkout_query `pay` would send for `link`, for a test to queue."""
        invoice = self.invoices[link]
        query_id = self._next("pcq")
        self._asked.add(query_id)
        payer = {"id": payer_id, "is_bot": False, "first_name": "Devnet"}
        return {"update_id": self._update_id(), "pre_checkout_query": {
            "id": query_id, "from": payer, "currency": STARS, "total_amount": invoice.amount,
            "invoice_payload": invoice.payload}}

    def texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.sent.get(chat_id, [])]

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            chat_id = int(params.get("chat_id", ""))
        except ValueError:
            raise BadRequest("chat not found") from None
        text = params.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= 4096:
            raise BadRequest("message text is empty" if not text else "message is too long")
        mode = params.get("parse_mode")
        if mode == "HTML":
            _check_html(text)
        if chat_id in self.blocked:
            raise Refused(403, "Forbidden: bot was blocked by the user")
        self.sent.setdefault(chat_id, []).append(SentMessage(chat_id, text, mode))
        return {"message_id": self._update_id(), "date": int(self._now().timestamp()),
                "chat": {"id": chat_id, "type": "private"}, "text": text}

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise Refused(409, "Conflict: can't use getUpdates method while webhook is active; "
                               "use deleteWebhook to delete the webhook first")
        offset = _count(params.get("offset"), 0, "offset")
        limit = _count(params.get("limit"), 100, "limit")
        wait = _count(params.get("timeout"), 0, "timeout")
        # An offset confirms every update before it: they are never returned again.
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + wait
        # Polled, not an asyncio.Event: tests queue updates from another thread's loop.
        while not self.updates and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return self.updates[:max(1, min(limit, 100))]

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise BadRequest("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise BadRequest("secret token contains unallowed characters")
        self.webhook_url, self.webhook_secret = url, secret
        return True

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url, self.webhook_secret = "", None
        if _flag(params.get("drop_pending_updates", False)):
            self.updates.clear()
        return True

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": len(self.updates)}

    def _create_invoice_link(self, params: dict[str, Any]) -> str:
        title = _text(params, "title", 1, 32)
        description = _text(params, "description", 1, 255)
        payload = _text(params, "payload", 1, 128)
        if params.get("currency") != STARS:
            raise BadRequest("currency must be XTR for payments in Telegram Stars")
        if params.get("provider_token") not in (None, ""):
            raise BadRequest("provider_token must be empty for payments in Telegram Stars")
        amount = _one_price(params.get("prices"))
        period = _subscription_period(params.get("subscription_period"), amount)
        link = LINK_PREFIX + _slug(f"{self.token}:{self._next('inv')}")
        self.invoices[link] = StarsInvoice(link, title, description, payload, amount, period)
        return link

    def _refund_star_payment(self, params: dict[str, Any]) -> bool:
        charge = self.charges.get(str(params.get("telegram_payment_charge_id", "")))
        if charge is None or str(params.get("user_id")) != str(charge.payer_id):
            raise BadRequest("CHARGE_NOT_FOUND")
        if charge.refunded_at is not None:
            raise BadRequest("CHARGE_ALREADY_REFUNDED")
        charge.refunded_at = int(self._now().timestamp())
        return True

    def _get_star_transactions(self, params: dict[str, Any]) -> dict[str, Any]:
        offset = _count(params.get("offset"), 0, "offset")
        limit = _count(params.get("limit"), 100, "limit")
        if not 1 <= limit <= 100:
            raise BadRequest("limit must be between 1 and 100")
        return {"transactions": self.star_transactions()[offset:offset + limit]}

    def star_transactions(self) -> list[dict[str, Any]]:
        """The bot's StarTransactions: each payment, and each refund (same id) after it."""
        rows: list[tuple[int, dict[str, Any]]] = []
        for charge in self.charges.values():
            user = {"id": charge.payer_id, "is_bot": False, "first_name": "Devnet"}
            partner: dict[str, Any] = {"type": "user", "transaction_type": "invoice_payment",
                                       "user": user, "invoice_payload": charge.payload}
            if charge.subscription_period is not None:
                partner["subscription_period"] = charge.subscription_period
            rows.append((charge.date, {"id": charge.charge_id, "amount": charge.amount,
                                       "nanostar_amount": 0, "date": charge.date,
                                       "source": partner}))
            if charge.refunded_at is not None:
                rows.append((charge.refunded_at, {
                    "id": charge.charge_id, "amount": charge.amount, "date": charge.refunded_at,
                    "receiver": {"type": "user", "transaction_type": "invoice_payment",
                                 "user": user, "invoice_payload": charge.payload}}))
        return [row for _, row in sorted(rows, key=lambda r: r[0])]

    def _answer_pre_checkout_query(self, params: dict[str, Any]) -> bool:
        query_id = params.get("pre_checkout_query_id")
        if not isinstance(query_id, str) or query_id not in self._asked:
            raise BadRequest("query is too old and response timeout expired or query ID is invalid")
        ok = _flag(params.get("ok"))
        error_message = params.get("error_message")
        if not ok and not error_message:
            raise BadRequest("error_message is required when ok is false")
        self._asked.discard(query_id)
        self.answers[query_id] = Answer(ok, None if ok else str(error_message))
        return True

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Krypton devnet",
                "username": BOT_USERNAME}

    def _next(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}_{self._serial}_{_slug(f'{self.token}:{prefix}:{self._serial}')[:12]}"

    def _update_id(self) -> int:
        self._serial += 1
        return self._serial


_HTML_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code",
                        "pre", "tg-spoiler", "blockquote", "span"})


class _HtmlCheck(HTMLParser):
    """Telegram's HTML parse mode: its few tags, closed in order; `<`, `>` and `&` in text
    must be entities (the parser sees a bare `<` as a tag and refuses it)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise BadRequest(f"can't parse entities: Unsupported start tag \"{tag}\"")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            raise BadRequest(f"can't parse entities: Unmatched end tag \"{tag}\"")


def _check_html(text: str) -> None:
    if re.search(r"<(?![a-z/])|&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", text):
        raise BadRequest("can't parse entities: unescaped < or & in the text")
    check = _HtmlCheck()
    check.feed(text)
    check.close()
    if check.open:
        raise BadRequest(f"can't parse entities: Can't find end tag corresponding to start tag "
                         f"\"{check.open[-1]}\"")


def webhook(url: str, secret: str, *, client: httpx.AsyncClient | None = None) -> Deliver:
    """Deliver updates as Telegram does: POST JSON with the secret header; a refusal raises."""

    async def deliver(update: dict[str, Any]) -> None:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        if client is not None:
            response = await client.post(url, json=update, headers=headers)
        else:
            async with httpx.AsyncClient(timeout=10) as own:
                response = await own.post(url, json=update, headers=headers)
        response.raise_for_status()

    return deliver


async def _params(request: Request) -> dict[str, Any]:
    """The call's parameters, from the query string and a JSON or form body."""
    params: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    if not raw.strip():
        return params
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(raw)
        except ValueError:
            raise BadRequest("can't parse JSON body") from None
        if not isinstance(body, dict):
            raise BadRequest("the JSON body must be an object")
        params.update(body)
    else:
        params.update(parse_qsl(raw.decode(), keep_blank_values=True))
    return params


def _text(params: dict[str, Any], name: str, least: int, most: int) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not least <= len(value.encode()) <= most:
        raise BadRequest(f"{name} must be {least} to {most} bytes")
    return value


def _one_price(value: Any) -> int:
    if isinstance(value, str):  # a form field holds the array JSON-encoded
        try:
            value = json.loads(value)
        except ValueError:
            raise BadRequest("can't parse prices JSON object") from None
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        raise BadRequest("prices must hold exactly one price for payments in Telegram Stars")
    amount = value[0].get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise BadRequest("the price's amount must be a positive whole number of Stars")
    if not isinstance(value[0].get("label"), str):
        raise BadRequest("the price needs a label")
    return amount


def _subscription_period(value: Any, amount: int) -> int | None:
    if value in (None, ""):
        return None
    if str(value) != str(SUBSCRIPTION_PERIOD):
        raise BadRequest("SUBSCRIPTION_PERIOD_INVALID")
    if amount > SUBSCRIPTION_MAX_STARS:
        raise BadRequest("a subscription costs at most 10000 Telegram Stars")
    return SUBSCRIPTION_PERIOD


def _count(value: Any, default: int, name: str) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a number") from None


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "True", "1"):
        return True
    if value in ("false", "False", "0"):
        return False
    raise BadRequest("ok must be a Boolean")


def _slug(seed: str) -> str:
    return urlsafe_b64encode(hashlib.sha256(seed.encode()).digest()).decode().rstrip("=")[:22]


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error_code": status, "description": description},
                        status_code=status)
