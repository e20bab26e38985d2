"""POST /telegram/webhook: the updates Telegram posts for the Stars rail.

Telegram proves itself with the secret given to setWebhook, sent back in the header
X-Telegram-Bot-Api-Secret-Token (compared in constant time; a mismatch is 401). A
pre-checkout query is answered within the request: Telegram waits at most ten seconds for
it; an answer that fails is logged and the update still answered 200 (Telegram's retry
comes after its ten seconds, too late to answer). A successful payment is credited before
the request answers 200; any failure answers 5xx and Telegram delivers the update again,
which credits nothing twice (the charge id is the payment's key).
"""

from __future__ import annotations

import hmac
import json

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from krypton.adapters.telegram.bot_api import BotApiError, MalformedUpdate, parse_update
from krypton.app import stars
from krypton.web.api.common import deps_of
from krypton.web.errors import error_response

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
log = structlog.get_logger()


def router(bot: stars.StarsBot, secret: str) -> APIRouter:
    """The webhook's router, answering pre-checkout queries through `bot`; `secret` is the
    one given to setWebhook (an empty one refuses every update)."""
    api = APIRouter(tags=["telegram"], include_in_schema=False)

    @api.post("/telegram/webhook")
    async def webhook(request: Request) -> Response:
        if not _secret_matches(request.headers.get(SECRET_HEADER), secret):
            return error_response(401, "unauthorized",
                                  f"The {SECRET_HEADER} header is missing or wrong.")
        try:
            update = parse_update(json.loads(await request.body()))
        except (ValueError, MalformedUpdate) as exc:
            message = str(exc) if isinstance(exc, MalformedUpdate) else "The body is not JSON."
            return error_response(400, "invalid_request", message)
        deps = deps_of(request)
        if isinstance(update, stars.PreCheckout):
            ok, reason = await stars.answer_pre_checkout(deps, update)
            try:
                await bot.answer_pre_checkout(update.query_id, ok, reason)
            except BotApiError as exc:  # its message never holds the bot token
                log.warning("telegram_pre_checkout_unanswered", query_id=update.query_id,
                            invoice_id=update.payload, error=str(exc))
        elif isinstance(update, stars.StarsPayment):
            await stars.record_payment(deps, update)
        return JSONResponse({"ok": True})

    return api


def _secret_matches(given: str | None, expected: str) -> bool:
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
