"""The hosted checkout, /pay/{invoice_id}: what a payer sees. Rendered on the server from the
same public view of the invoice the API gives (no fee, no merchant internals); the page's
script then follows the invoice through /api/v1/public/invoice/{id} without a reload."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict

from krypton.adapters.chains.ton import address as ton_address
from krypton.adapters.chains.ton import wallet_messages
from krypton.adapters.chains.ton.cells import cell_to_boc
from krypton.app import stars
from krypton.config import Settings
from krypton.domain.assets import METHODS
from krypton.domain.assets import asset as get_asset
from krypton.domain.errors import DomainError, NotFound
from krypton.web.api.common import deps_of, public_invoice_json
from krypton.web.pages import i18n
from krypton.web.pages.render import page
from krypton.web.pages.status import describe

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent.parent / "static"
# TON Connect UI, installed from npm by the set-up (`make assets`) and served from here.
VENDOR = Path(__file__).parents[4] / "web-assets" / "node_modules" / "@tonconnect" / "ui" / "dist"
TONCONNECT = VENDOR / "tonconnect-ui.min.js"


def tonconnect_options(settings: Settings) -> dict[str, Any]:
    """TON Connect UI's options for a page (its `wallet-config`): the manifest, and inside
    Telegram where a wallet sends the payer back (the Mini App's link, when configured)."""
    options: dict[str, Any] = {
        "manifestUrl": f"{settings.public_url.rstrip('/')}/tonconnect-manifest.json",
        "buttonRootId": "ton-connect"}
    if settings.telegram_miniapp_link:
        options["actionsConfiguration"] = {"twaReturnUrl": settings.telegram_miniapp_link}
    return options
LANG_COOKIE = "krypton_lang"
# The countdown turns prominent this close to the end, not before: a timer that runs from
# the first second only makes people anxious.
HURRY_MINUTES = 3
POLL_SECONDS = 2.5
FILES = {"checkout.css": "text/css", "checkout.js": "text/javascript", "icon.png": "image/png"}


async def _invoice(request: Request, invoice_id: str) -> dict[str, Any]:
    """The public view, its QR links relative: the page loads them from wherever it was
    loaded (its policy allows this origin's images only), whatever KRYPTON_PUBLIC_URL says."""
    invoice = await public_invoice_json(request, invoice_id)
    for option in invoice["payment_options"]:
        if option["qr_url"]:
            option["qr_url"] = urlsplit(option["qr_url"]).path
    return invoice


def _language(request: Request, lang: str | None) -> str:
    return i18n.choose(lang, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


@router.get("/pay/{invoice_id}")
async def checkout(invoice_id: str, request: Request, lang: str | None = None) -> Response:
    await request.app.state.limiter.check_ip(request)
    language = _language(request, lang)
    text = i18n.TEXT[language]
    try:
        invoice = await _invoice(request, invoice_id)
    except NotFound:
        return page("not_found.html", {"lang": language, "t": text}, status=404)
    settings = request.app.state.settings
    wallets = TONCONNECT.exists() and settings.network != "devnet"
    shown = describe(invoice, text)
    response = page("checkout.html", {
        "lang": language, "t": text, "languages": i18n.NAMES, "invoice": invoice, "shown": shown,
        "devnet": request.app.state.container.devnet_wallet() is not None,
        "stars": request.app.state.container.stars_bot() is not None,
        "wallets": wallets, "wallet_options": tonconnect_options(settings),
        "config": {"status_url": f"/pay/{invoice['id']}/status?lang={language}",
                   "devnet_url": f"/pay/{invoice['id']}/devnet", "expires_at": invoice["expires_at"],
                   "stars_devnet_url": "/devnet/control/stars/pay", "invoice_id": invoice["id"],
                   "redirect_url": invoice["redirect_url"],
                   "poll_seconds": POLL_SECONDS, "hurry_minutes": HURRY_MINUTES,
                   "text": {k: text[k] for k in ("copy", "copied", "time_left", "hurry", "redirecting",
                                                 "back_to_shop", "wallet_sent", "wallet_failed")}}},
        wallets=wallets)
    if lang in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="strict")
    return response


@router.get("/pay/{invoice_id}/status")
async def status(invoice_id: str, request: Request, lang: str | None = None) -> JSONResponse:
    """What the page shows now: the state in words and the invoice's public view."""
    await request.app.state.limiter.check_ip(request)
    invoice = await _invoice(request, invoice_id)
    shown = describe(invoice, i18n.TEXT[_language(request, lang)])
    return JSONResponse({"shown": shown.as_json(), "invoice": invoice},
                        headers={"Cache-Control": "no-store"})


@router.get("/pay-assets/{name}")
async def asset(name: str) -> FileResponse:
    if name == "tonconnect-ui.min.js" and TONCONNECT.exists():
        return FileResponse(TONCONNECT, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})
    if name not in FILES:
        raise NotFound(f"No file '{name[:64]}'.", field="name")
    return FileResponse(STATIC / name, media_type=FILES[name],
                        headers={"Cache-Control": "public, max-age=300"})


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    return FileResponse(STATIC / "icon.png", media_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/tonconnect-manifest.json")
async def tonconnect_manifest(request: Request) -> JSONResponse:
    """What a TON Connect wallet shows about the site asking it to pay."""
    base = request.app.state.settings.public_url.rstrip("/")
    return JSONResponse({"url": base, "name": "Krypton checkout", "iconUrl": f"{base}/pay-assets/icon.png"})


@router.get("/pay/{invoice_id}/stars")
async def pay_with_stars(invoice_id: str, request: Request) -> Response:
    """The Stars button: the invoice's Telegram payment link (made by the bot on the first
    click, kept after), as a redirect: the page itself calls no Bot API."""
    await request.app.state.limiter.check_ip(request)
    container = request.app.state.container
    bot = container.stars_bot()
    if bot is None:
        raise NotFound("Telegram Stars payments are not set up on this server.", field="method")
    link = await stars.invoice_link(deps_of(request), bot, invoice_id, links=container.stars_links())
    return RedirectResponse(link, status_code=303, headers={"Cache-Control": "no-store"})


# How long a wallet may take to sign what the page asks it to send.
WALLET_VALID = 600


@router.get("/pay/{invoice_id}/ton-connect")
async def ton_connect(invoice_id: str, request: Request, method: str, owner: str = "") -> JSONResponse:
    """The transaction a TON Connect wallet is asked to send for this invoice (the shape of
    `sendTransaction`): TON with the memo as comment, or for USDT on TON a jetton transfer
    to the connected wallet's own jetton wallet with the memo forwarded."""
    await request.app.state.limiter.check_ip(request)
    invoice = await _invoice(request, invoice_id)
    option = next((o for o in invoice["payment_options"] if o["method"] == method), None)
    if method not in ("ton", "usdt_ton") or option is None or not option["address"] or not option["memo"]:
        raise DomainError(f"This invoice cannot be paid with {method[:32]} through a TON wallet now.",
                          field="method")
    units = int(Decimal(option["amount"]) * Decimal(10) ** get_asset(option["asset"]).decimals)
    valid = int(request.app.state.deps.clock.now().timestamp()) + WALLET_VALID
    if method == "ton":
        body = wallet_messages.comment_body(option["memo"])
        message = {"address": option["address"], "amount": str(units), "payload": cell_to_boc(body)}
        return JSONResponse({"validUntil": valid, "messages": [message]})
    try:
        payer = ton_address.parse(owner, network="testnet")  # either form; the network is the wallet's
    except (ton_address.InvalidAddress, ValueError):
        raise DomainError("owner must be the connected wallet's TON address.", field="owner") from None
    wallet = await request.app.state.container.payer_jetton_wallet(payer)
    destination = ton_address.parse(option["address"], network="testnet")
    body = wallet_messages.jetton_transfer(units, destination, payer, option["memo"])
    message = {"address": wallet.friendly(bounceable=True, testnet=settings_testnet(request)),
               "amount": str(wallet_messages.JETTON_TRANSFER_TON), "payload": cell_to_boc(body)}
    return JSONResponse({"validUntil": valid, "messages": [message]})


def settings_testnet(request: Request) -> bool:
    return bool(request.app.state.settings.network == "testnet")


class DevnetPay(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str
    variant: Literal["exact", "under", "over"] = "exact"


# What the devnet buttons send, as a share of what is due: half, or a tenth more.
VARIANTS = {"exact": Decimal(1), "under": Decimal("0.5"), "over": Decimal("1.1")}


@router.post("/pay/{invoice_id}/devnet")
async def devnet_pay(invoice_id: str, body: DevnetPay, request: Request) -> JSONResponse:
    """Devnet only: pay this invoice from the devnet's funded wallet, as a payer would."""
    wallet = request.app.state.container.devnet_wallet()
    if wallet is None:
        raise NotFound("Paying from a devnet wallet exists on the devnet only.", field="method")
    if body.method not in METHODS:
        raise DomainError(f"method must be one of {', '.join(METHODS)}.", field="method")
    invoice = await _invoice(request, invoice_id)
    option: dict[str, Any] | None = next(
        (o for o in invoice["payment_options"] if o["method"] == body.method), None)
    if option is None or option["address"] is None:
        raise DomainError(f"This invoice cannot be paid with {body.method} now.", field="method")
    decimals = Decimal(10) ** get_asset(option["asset"]).decimals
    units = int(Decimal(option["amount"]) * VARIANTS[body.variant] * decimals)
    sent = wallet(body.method, option["address"], units, option["memo"])
    return JSONResponse({"sent": str(units), "tx": sent.get("tx_hash") or sent.get("tx_id")}, status_code=201)

