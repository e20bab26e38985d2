"""A small fake of the Telegram Bot API for Stars, speaking its JSON format.

    POST /bot{token}/createInvoiceLink       XTR only, one price, empty provider token
    POST /bot{token}/answerPreCheckoutQuery  recorded, once per query
    POST /bot{token}/getMe                   who the bot is (a client's first sanity check)

Parameters come as the Bot API takes them: a JSON body, a form (aiogram sends one, with
`prices` JSON-encoded) or the query string. Answers are {"ok": true, "result": …} or
{"ok": false, "error_code": …, "description": "Bad Request: …"}.

`pay` plays a payer: it posts the `pre_checkout_query` update for a link to the bot's
webhook (a `Deliver` callback: `webhook` POSTs to a URL with the secret header, tests may
pass their own), and only if the bot answered ok, the message with `successful_payment`.
No real Stars update JSON is public: these are built from the Bot API's schema.
"""

from __future__ import annotations

import hashlib
import json
from base64 import urlsafe_b64encode
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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


@dataclass(frozen=True, slots=True)
class StarsInvoice:
    """What a created link charges."""

    link: str
    title: str
    description: str
    payload: str
    amount: int


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
        self._serial = 0

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

    def payment_update(self, invoice: StarsInvoice, charge_id: str, payer_id: int,
                       amount: int) -> dict[str, Any]:
        """The message Telegram sends once it charged the payer (delivered again by a test to
        play Telegram retrying a webhook)."""
        payer = {"id": payer_id, "is_bot": False, "first_name": "Devnet", "language_code": "en"}
        return {"update_id": self._update_id(), "message": {
            "message_id": self._serial, "date": int(self._now().timestamp()),
            "chat": {"id": payer_id, "type": "private", "first_name": "Devnet"}, "from": payer,
            "successful_payment": {
                "currency": STARS, "total_amount": amount, "invoice_payload": invoice.payload,
                "telegram_payment_charge_id": charge_id, "provider_payment_charge_id": ""}}}

    async def _call(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "createInvoiceLink": self._create_invoice_link,
            "answerPreCheckoutQuery": self._answer_pre_checkout_query,
            "getMe": self._get_me,
        }
        handler = handlers.get(request.path_params["method"])
        if handler is None:
            return _error(404, "Not Found")
        try:
            return JSONResponse({"ok": True, "result": handler(await _params(request))})
        except BadRequest as exc:
            return _error(400, f"Bad Request: {exc}")

    def _create_invoice_link(self, params: dict[str, Any]) -> str:
        title = _text(params, "title", 1, 32)
        description = _text(params, "description", 1, 255)
        payload = _text(params, "payload", 1, 128)
        if params.get("currency") != STARS:
            raise BadRequest("currency must be XTR for payments in Telegram Stars")
        if params.get("provider_token") not in (None, ""):
            raise BadRequest("provider_token must be empty for payments in Telegram Stars")
        amount = _one_price(params.get("prices"))
        link = LINK_PREFIX + _slug(f"{self.token}:{self._next('inv')}")
        self.invoices[link] = StarsInvoice(link, title, description, payload, amount)
        return link

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
