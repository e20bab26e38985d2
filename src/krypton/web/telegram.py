"""POST /telegram/webhook: the updates Telegram posts in webhook mode (the default).

Telegram proves itself with the secret given to setWebhook, sent back in the header
X-Telegram-Bot-Api-Secret-Token (compared in constant time; a mismatch is 401). The update
then goes to the one handler both modes share (adapters/telegram/updates.py): a pre-checkout
query is answered within the request (Telegram waits at most ten seconds; an answer that
fails is logged and the update still answered 200); a successful payment is credited before
the request answers 200, and any failure answers 5xx so that Telegram delivers the update
again, which credits nothing twice (the charge id is the payment's key); a merchant's
command is answered with a message of the bot's own.
"""

from __future__ import annotations

import hmac
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from krypton.adapters.telegram.bot_api import MalformedUpdate
from krypton.adapters.telegram.updates import Met, UpdateHandler
from krypton.app import merchant_bot, stars
from krypton.web.api.common import deps_of
from krypton.web.errors import error_response

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def router(bot: stars.StarsBot, secret: str, kit: merchant_bot.Kit | None = None,
           met: Met | None = None) -> APIRouter:
    """The webhook's router, answering pre-checkout queries through `bot` and merchants'
    commands through `kit` (None: Stars only); `secret` is the one given to setWebhook (an
    empty one refuses every update)."""
    api = APIRouter(tags=["telegram"], include_in_schema=False)

    @api.post("/telegram/webhook")
    async def webhook(request: Request) -> Response:
        if not _secret_matches(request.headers.get(SECRET_HEADER), secret):
            return error_response(401, "unauthorized",
                                  f"The {SECRET_HEADER} header is missing or wrong.")
        try:
            update = json.loads(await request.body())
        except ValueError:
            return error_response(400, "invalid_request", "The body is not JSON.")
        try:
            await UpdateHandler(deps_of(request), bot, kit, met).handle(update)
        except MalformedUpdate as exc:
            return error_response(400, "invalid_request", str(exc))
        return JSONResponse({"ok": True})

    return api


def _secret_matches(given: str | None, expected: str) -> bool:
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
