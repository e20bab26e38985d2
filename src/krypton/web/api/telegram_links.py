"""/api/v1/merchant/telegram/link-code: a one-time code that links a Telegram chat to the
calling merchant (the bot's /link CODE, or its t.me deep link). Only the merchant's owner
may make one (a dashboard session with settings:manage, never an API key): a linked chat
sees the balances and creates invoices."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from krypton.app import merchant_bot
from krypton.domain.errors import Conflict
from krypton.domain.roles import Permission
from krypton.domain.users import UserPrincipal
from krypton.web.api.common import deps_of, json
from krypton.web.auth import require_permission

router = APIRouter(tags=["merchant"])
NO_BOT = ("There is no Telegram bot: set KRYPTON_TELEGRAM_BOT_TOKEN and "
          "KRYPTON_TELEGRAM_WEBHOOK_SECRET (on devnet the fake bot is always there).")


class LinkCodeOut(BaseModel):
    object: Literal["telegram_link_code"] = Field("telegram_link_code",
                                                  description="The kind of object.")
    code: str = Field(description="The one-time code: send `/link CODE` to the bot. Shown once.")
    merchant_id: str = Field(description="The merchant the chat will be linked to.")
    expires_at: datetime = Field(description="After this the code links nothing (10 minutes).")
    deep_link: str | None = Field(description="https://t.me/<bot>?start=CODE: opens the bot "
                                              "and links the chat; null when the bot's "
                                              "username is unknown right now.")


def link_code_body(issued: merchant_bot.IssuedCode) -> dict[str, object]:
    return {"object": "telegram_link_code", "code": issued.code,
            "merchant_id": issued.merchant_id, "expires_at": issued.expires_at.isoformat(),
            "deep_link": issued.deep_link}


@router.post("/merchant/telegram/link-code", response_model=LinkCodeOut, status_code=201,
             responses={409: {}}, summary="Create a one-time code linking a Telegram chat")
async def create_link_code(
        request: Request,
        who: UserPrincipal = Depends(require_permission(Permission.SETTINGS_MANAGE, "create")),
) -> JSONResponse:
    """The chat that sends the code to the bot gets this merchant's paid / underpaid /
    expired notifications and may use /balance and /invoice. Single use, valid 10 minutes."""
    kit = request.app.state.container.merchant_bot()
    if kit is None:
        raise Conflict(NO_BOT, code="bot_not_configured")
    assert who.merchant_id is not None  # the permission is a merchant owner's
    issued = await merchant_bot.create_link_code(deps_of(request), kit, who.merchant_id,
                                                 who.user_id)
    return json(link_code_body(issued), 201)
