"""The payer's refund page, /refund/{token}: the claim link a merchant sends for a chain
refund (BTCPay's pull-payment idea). The signed token in the path is the only credential:
whoever holds the link is the payer, and the page lets them give the address the refund goes
to, once. Rendered on the server; a small script submits, fills the address from a TON
Connect wallet where wallets are offered, and follows the status without a reload.

A forged or foreign token: 404; an expired one: 410; a used one shows the refund's status
(the address cannot be changed): nothing else is told and nothing changes."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from krypton.app import refunds
from krypton.domain import money
from krypton.domain.assets import asset as get_asset
from krypton.domain.errors import DomainError, NotFound
from krypton.domain.refund import Refund, RefundStatus
from krypton.web.api.common import deps_of
from krypton.web.pages import i18n
from krypton.web.pages.checkout import TONCONNECT, tonconnect_options
from krypton.web.pages.render import page

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent.parent / "static"
FILES = {"refund-claim.css": "text/css", "refund-claim.js": "text/javascript"}
LANG_COOKIE = "krypton_lang"
POLL_SECONDS = 3.0
MAX_BODY = 4096  # an address and a little JSON


def _language(request: Request, lang: str | None) -> str:
    return i18n.choose(lang, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def _state(refund: Refund) -> str:
    """claim (the form) | pending | succeeded | failed."""
    if refund.status is RefundStatus.PENDING:
        return "claim" if refund.destination is None else "pending"
    return refund.status.value


def _shown(refund: Refund) -> dict[str, Any]:
    decimals = get_asset(refund.asset).decimals
    return {"state": _state(refund), "asset": refund.asset,
            "amount": money.format_units(refund.amount, decimals),
            "fee": money.format_units(refund.fee, decimals),
            "net": money.format_units(refund.amount - refund.fee, decimals),
            "destination": refund.destination,
            "valid_until": refund.claim_expires_at.strftime("%Y-%m-%d %H:%M")
            if refund.claim_expires_at else None}


def _gone(language: str, key: str, status: int) -> Response:
    text = i18n.TEXT[language]
    return page("refund_claim.html", {"lang": language, "t": text, "refund": None,
                                      "message": text[key], "config": {}}, status=status)


def _failure(exc: Exception, language: str) -> Response:
    if isinstance(exc, refunds.ClaimGone):
        return _gone(language, "refund_used" if exc.code == "claim_used" else "refund_expired",
                     409 if exc.code == "claim_used" else 410)
    return _gone(language, "refund_not_found", 404)


@router.get("/refund/{token}")
async def claim_page(token: str, request: Request, lang: str | None = None,
                     error: str | None = None) -> Response:
    await request.app.state.limiter.check_ip(request)
    language = _language(request, lang)
    container = request.app.state.container
    try:
        refund = await refunds.open_claim(deps_of(request), container.refund_kit(), token)
    except (refunds.ClaimNotFound, refunds.ClaimGone) as exc:
        return _failure(exc, language)
    settings = request.app.state.settings
    wallets = TONCONNECT.exists() and settings.network != "devnet"
    text = i18n.TEXT[language]
    shown = _shown(refund)
    return page("refund_claim.html", {
        "lang": language, "t": text, "languages": i18n.NAMES, "refund": shown, "token": token,
        "message": None, "error": error[:300] if error else None, "wallets": wallets,
        "wallet_options": tonconnect_options(settings),
        "config": {"claim_url": f"/refund/{token}", "status_url": f"/refund/{token}/status",
                   "poll_seconds": POLL_SECONDS, "state": shown["state"]}}, wallets=wallets)


@router.get("/refund/{token}/status")
async def claim_status(token: str, request: Request) -> JSONResponse:
    """What the page shows now (its script polls this while the refund is on its way)."""
    await request.app.state.limiter.check_ip(request)
    container = request.app.state.container
    refund = await refunds.open_claim(deps_of(request), container.refund_kit(), token)
    return JSONResponse(_shown(refund), headers={"Cache-Control": "no-store"})


@router.post("/refund/{token}")
async def claim(token: str, request: Request, lang: str | None = None) -> Response:
    """The payer's address: JSON {"address"} from the page's script (answers JSON), or the
    plain form without script (answers with the page again, 303)."""
    await request.app.state.limiter.check_ip(request)
    language = _language(request, lang)
    raw = await request.body()
    as_json = request.headers.get("content-type", "").startswith("application/json")
    address = _address(raw, as_json)
    container = request.app.state.container
    try:
        refund = await refunds.claim_refund(deps_of(request), container.refund_kit(), token, address)
    except (refunds.ClaimNotFound, refunds.ClaimGone) as exc:
        if as_json:
            raise
        return _failure(exc, language)
    except DomainError as exc:
        if as_json:
            raise
        text = i18n.TEXT[language]
        why = text["refund_bad_address"].format(why=exc.message)
        return RedirectResponse(f"/refund/{token}?" + _query(why), status_code=303)
    if as_json:
        return JSONResponse(_shown(refund), headers={"Cache-Control": "no-store"})
    return RedirectResponse(f"/refund/{token}", status_code=303)


def _address(raw: bytes, as_json: bool) -> str:
    if len(raw) > MAX_BODY:
        raise DomainError("The request is too large: send the address only.", field="address")
    try:
        if as_json:
            body = jsonlib.loads(raw.decode())
            value = body.get("address") if isinstance(body, dict) else None
        else:
            values = parse_qs(raw.decode()).get("address")
            value = values[0] if values else None
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, str) or not value.strip():
        raise DomainError("Give the TON address to send the refund to.", field="address")
    return value


def _query(error: str) -> str:
    return urlencode({"error": error})


@router.get("/refund-assets/{name}")
async def claim_asset(name: str) -> FileResponse:
    if name not in FILES:
        raise NotFound(f"No file '{name[:64]}'.", field="name")
    return FileResponse(STATIC / name, media_type=FILES[name],
                        headers={"Cache-Control": "public, max-age=300"})
