"""The Telegram Mini App checkout, /tg/app/{invoice_id}: the hosted checkout (same view, words
and script) inside Telegram, in Telegram's colours, with Stars paid through
`Telegram.WebApp.openInvoice` and the payer's own purchases.

Who the payer is comes only from initData checked here (`POST /tg/app/{id}/session`): HMAC
with the bot token, or Telegram's Ed25519 signature for a bot whose token Krypton does not
hold. A verified user is bound to the invoice (the first one owns it) and gets a short-lived
token for `GET /tg/app/history`. The page may be framed by Telegram's web clients only.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from krypton.adapters.telegram.init_data import (
    TELEGRAM_PUBLIC_KEY,
    InitData,
    InvalidInitData,
    Reason,
    verify_hmac,
    verify_signature,
)
from krypton.app import miniapp, stars
from krypton.app.miniapp import Purchase
from krypton.domain import money
from krypton.domain.assets import ASSETS, PRICING_DECIMALS
from krypton.domain.errors import NotFound
from krypton.web.api.common import deps_of
from krypton.web.errors import ApiError
from krypton.web.pages import checkout, i18n
from krypton.web.pages.render import page
from krypton.web.pages.status import describe

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent.parent / "static"
# Telegram's own telegram-web-app.js, as the npm package @twa-dev/sdk ships it (its src/ copy:
# a plain script, not the ES module), installed by `make assets` and served from here: the
# page loads no script from telegram.org or anywhere else.
TELEGRAM_JS = checkout.VENDOR.parents[2] / "@twa-dev" / "sdk" / "src" / "telegram-web-apps.js"
FILES = {"miniapp.css": "text/css", "miniapp.js": "text/javascript"}
# Telegram's web clients (web.telegram.org/k and /a, and their older hosts) show a Mini App
# in an iframe; the mobile and desktop apps use a webview of their own, which frames nothing.
FRAMERS = "https://web.telegram.org https://webk.telegram.org https://webz.telegram.org"
# How long the history token lasts: a checkout's visit, not a login. The page asks again
# (the same initData, within its window) when it runs out.
TOKEN_SECONDS = 900
AUDIENCE = "krypton-miniapp"
ALGORITHM = "HS256"


# --- the page -----------------------------------------------------------------------------


@router.get("/tg/app-assets/{name}")
async def asset(name: str) -> FileResponse:
    if name == "telegram-web-app.js" and TELEGRAM_JS.exists():
        return FileResponse(TELEGRAM_JS, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})
    if name not in FILES:
        raise NotFound(f"No file '{name[:64]}'.", field="name")
    return FileResponse(STATIC / name, media_type=FILES[name],
                        headers={"Cache-Control": "public, max-age=300"})


@router.get("/tg/app/history")
async def history(request: Request, limit: int = miniapp.DEFAULT_PAGE,
                  starting_after: str | None = None, lang: str | None = None) -> JSONResponse:
    """The signed-in Telegram user's invoices, newest first: `Authorization: Bearer <token>`
    from `POST /tg/app/{id}/session`. Only an invoice's owner may list from its session."""
    await request.app.state.limiter.check_ip(request)
    claims = _claims(request)
    if not claims["own"]:
        raise ApiError(403, "not_owner", "This invoice was opened first by another Telegram user: "
                       "its purchases are theirs. You can still pay it.")
    text = i18n.TEXT[lang if lang in i18n.LANGUAGES else claims["lang"]]
    found, more = await miniapp.purchases(request.app.state.container.miniapp_bindings(),
                                          int(claims["sub"]), limit=limit, starting_after=starting_after)
    return JSONResponse({"object": "list", "data": [_purchase_json(p, text) for p in found],
                         "has_more": more}, headers={"Cache-Control": "no-store"})


@router.get("/tg/app/{invoice_id}")
async def mini_app(invoice_id: str, request: Request, lang: str | None = None) -> Response:
    await request.app.state.limiter.check_ip(request)
    language = i18n.choose(lang, request.cookies.get(checkout.LANG_COOKIE),
                           request.headers.get("accept-language"))
    text = i18n.TEXT[language]
    try:
        invoice = await checkout._invoice(request, invoice_id)
    except NotFound:
        return _framable(page("not_found.html", {"lang": language, "t": text}, status=404))
    settings = request.app.state.settings
    container = request.app.state.container
    wallets = checkout.TONCONNECT.exists() and settings.network != "devnet"
    base = f"/tg/app/{invoice['id']}"
    config = {"status_url": f"/pay/{invoice['id']}/status?lang={language}",
              "devnet_url": f"/pay/{invoice['id']}/devnet", "expires_at": invoice["expires_at"],
              "stars_devnet_url": "/devnet/control/stars/pay", "invoice_id": invoice["id"],
              "redirect_url": invoice["redirect_url"], "poll_seconds": checkout.POLL_SECONDS,
              "hurry_minutes": checkout.HURRY_MINUTES,
              "text": {k: text[k] for k in ("copy", "copied", "time_left", "hurry", "redirecting",
                                            "back_to_shop", "wallet_sent", "wallet_failed")}}
    mini = {"session_url": f"{base}/session", "stars_url": f"{base}/stars-link",
            "history_url": "/tg/app/history", "invoice_id": invoice["id"], "lang": language,
            "lang_given": lang in i18n.LANGUAGES,
            "text": {k: text[k] for k in (
                "pay_stars", "stars_paid", "stars_failed", "stars_cancelled", "no_purchases",
                "not_owner", "session_failed", "outside_telegram", "more", "status_paid")}}
    return _framable(page("miniapp.html", {
        "lang": language, "t": text, "languages": i18n.NAMES, "invoice": invoice,
        "shown": describe(invoice, text), "devnet": container.devnet_wallet() is not None,
        "stars": container.stars_bot() is not None, "wallets": wallets,
        "manifest": f"{settings.public_url.rstrip('/')}/tonconnect-manifest.json",
        "config": config, "mini": mini}, wallets=wallets))


def _framable(response: Response) -> Response:
    """The page's own policy, but framed by Telegram's web clients rather than by no one."""
    policy = response.headers["Content-Security-Policy"]
    response.headers["Content-Security-Policy"] = policy.replace(
        "frame-ancestors 'none'", f"frame-ancestors {FRAMERS}")
    return response


# --- who the payer is -----------------------------------------------------------------------


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Telegram.WebApp.initData as the page got it: a query string, well under 64 KB.
    init_data: str = Field(max_length=65_536)


@router.post("/tg/app/{invoice_id}/session")
async def session(invoice_id: str, body: SessionIn, request: Request) -> JSONResponse:
    """initData verified, its user bound to the invoice (the first one owns it), and a token
    for the user's purchases. 401 with the reason when initData proves nothing."""
    await request.app.state.limiter.check_ip(request)
    data = _verified(request, body.init_data)
    if data.user is None:
        raise ApiError(401, "invalid_init_data", "The initData names no Telegram user: open the "
                       "Mini App from a chat with the bot.", field="init_data")
    bound = await miniapp.bind(deps_of(request), request.app.state.container.miniapp_bindings(),
                               invoice_id, data.user.id)
    code = (data.user.language_code or "").lower().split("-")[0]
    language = code if code in i18n.LANGUAGES else "en"
    now = deps_of(request).clock.now()
    token = jwt.encode({"sub": str(bound.telegram_user_id), "inv": invoice_id, "own": bound.owner,
                        "lang": language, "iat": int(now.timestamp()),
                        "exp": int(now.timestamp()) + TOKEN_SECONDS, "aud": AUDIENCE,
                        "jti": secrets.token_urlsafe(9)}, _key(request), algorithm=ALGORITHM)
    return JSONResponse({"token": token, "expires_in": TOKEN_SECONDS, "owner": bound.owner,
                         "lang": language, "user": {"first_name": data.user.first_name}},
                        headers={"Cache-Control": "no-store"})


def _verified(request: Request, init_data: str) -> InitData:
    """HMAC with the bot token when Krypton has one; else, or when that fails and a third-party
    bot id is configured, Telegram's Ed25519 signature for that bot."""
    container = request.app.state.container
    settings = request.app.state.settings
    token, bot_id = container.miniapp_bot_token(), settings.telegram_bot_id
    if token is None and bot_id is None:
        raise ApiError(404, "not_found", "Telegram sign-in is not set up on this server: it needs "
                       "KRYPTON_TELEGRAM_BOT_TOKEN or KRYPTON_TELEGRAM_BOT_ID.")
    now = deps_of(request).clock.now()
    window = timedelta(seconds=settings.miniapp_auth_max_age_seconds)
    first: InvalidInitData | None = None
    try:
        if token is not None:
            try:
                return verify_hmac(init_data, token, now=now, max_age=window)
            except InvalidInitData as exc:
                # Only a hash that is not this bot's may be another bot's signed data; stale,
                # future or malformed data is refused as such.
                if bot_id is None or exc.reason not in (Reason.BAD_HASH, Reason.MISSING_HASH):
                    raise
                first = exc
        assert bot_id is not None
        return verify_signature(init_data, bot_id, public_key_hex=TELEGRAM_PUBLIC_KEY, now=now,
                                max_age=window)
    except InvalidInitData as exc:
        refused = first if first is not None and exc.reason in (
            Reason.MISSING_SIGNATURE, Reason.BAD_SIGNATURE) else exc
        raise ApiError(401, "invalid_init_data", f"Telegram sign-in refused: {refused}",
                       field="init_data") from None


def _key(request: Request) -> bytes:
    """The token key, derived from the secret keys: every process that shares them agrees."""
    state = request.app.state
    key: bytes | None = getattr(state, "miniapp_token_key", None)
    if key is None:
        ring, _ = state.container.secret_keys()
        key = state.miniapp_token_key = ring.derive(b"miniapp-history-token")
    return key


def _claims(request: Request) -> dict[str, Any]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthenticated", "Send the token from POST /tg/app/{id}/session as "
                       "'Authorization: Bearer <token>'.")
    try:
        claims: dict[str, Any] = jwt.decode(
            token.strip(), _key(request), algorithms=[ALGORITHM], audience=AUDIENCE,
            options={"require": ["sub", "exp", "aud", "own", "lang"], "verify_exp": False})
    except jwt.PyJWTError:
        raise ApiError(401, "unauthenticated", "The Mini App token is not valid; open the Mini "
                       "App again.") from None
    # Expiry against Krypton's clock (the one tests drive), not the library's.
    if deps_of(request).clock.now().timestamp() >= claims["exp"]:
        raise ApiError(401, "unauthenticated", "The Mini App token has expired; open the Mini "
                       "App again.")
    if not str(claims["sub"]).isdigit() or claims["lang"] not in i18n.LANGUAGES:
        raise ApiError(401, "unauthenticated", "The Mini App token is not valid; open the Mini "
                       "App again.")
    return claims


# --- Stars inside Telegram ------------------------------------------------------------------


@router.post("/tg/app/{invoice_id}/stars-link")
async def stars_link(invoice_id: str, request: Request) -> JSONResponse:
    """The invoice's Stars payment link, for `Telegram.WebApp.openInvoice` (which takes the
    link itself, not a redirect to it)."""
    await request.app.state.limiter.check_ip(request)
    container = request.app.state.container
    bot = container.stars_bot()
    if bot is None:
        raise NotFound("Telegram Stars payments are not set up on this server.", field="method")
    link = await stars.invoice_link(deps_of(request), bot, invoice_id, links=container.stars_links())
    return JSONResponse({"link": link}, headers={"Cache-Control": "no-store"})


def _purchase_json(p: Purchase, text: dict[str, str]) -> dict[str, Any]:
    state = "underpaid" if p.exception == "underpaid" and p.status == "pending" else p.status
    paid = p.asset is not None and p.amount_paid > 0
    return {
        "id": p.id, "status": p.status, "exception": p.exception,
        "status_text": text.get(f"status_{state}", p.status),
        "amount": money.format_units(p.price_amount, PRICING_DECIMALS[p.price_currency]),
        "currency": p.price_currency, "asset": p.asset,
        "amount_paid": money.format_units(p.amount_paid, ASSETS[p.asset].decimals)
        if paid and p.asset in ASSETS else None,
        "description": p.description, "created_at": p.created_at.isoformat(),
        "paid_at": p.paid_at.isoformat() if p.paid_at else None, "url": f"/tg/app/{p.id}",
    }
