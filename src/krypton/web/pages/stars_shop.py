"""The Stars shop's pages: /stars on the web, /tg/stars inside Telegram (the same page in the
Mini App's colours, signed in from initData), and /stars/orders/{id}, one order followed live.

Rendered on the server with the limits; stars-shop.js then asks /api/v1/shop for who a
username is, the price (every 30 s) and the orders, and creates the order, which is paid on
the hosted checkout (/pay/{invoice_id}). The page shows no remote image: a recipient gets an
initials avatar, so the policy keeps img-src to this origin (TON Connect's wallet list aside).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from krypton.app import shop
from krypton.domain.errors import NotFound
from krypton.web.api import shop as shop_api
from krypton.web.api.common import deps_of
from krypton.web.pages import checkout, i18n, miniapp
from krypton.web.pages.render import page

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent.parent / "static"
FILES = {"stars-shop.css": "text/css", "stars-shop.js": "text/javascript"}
PRICE_SECONDS = 30
ORDER_POLL_SECONDS = 3
# The words the script shows, sent with the page (never HTML: the script sets text only).
SCRIPT_WORDS = (
    "shop_checking", "shop_recipient_unknown", "shop_range", "shop_fee_included", "shop_price_failed",
    "shop_pay", "shop_pay_disabled", "shop_creating", "shop_order_failed", "shop_signed_in",
    "shop_sign_in_failed", "shop_no_orders", "shop_order_for", "shop_wallets_unavailable",
    "asset_TON", "asset_USDT_TON", "outside_telegram", "session_failed",
    *(f"order_{s.value}" for s in shop.OrderStatus), *(f"order_hint_{s.value}" for s in shop.OrderStatus
                                                        if f"order_hint_{s.value}" in i18n.TEXT["en"]),
    "shop_premium_for", "shop_months")
# The Premium product's words, kept here beside the page that alone shows them (web/pages/i18n.py
# holds the rest); every language of i18n.NAMES has them, English standing in for a missing one.
PREMIUM_TEXT: dict[str, dict[str, str]] = {
    "en": {"shop_product": "What to buy", "shop_product_stars": "Stars",
           "shop_product_premium": "Telegram Premium", "shop_premium_period": "How long",
           "shop_months": "{months} months",
           "shop_premium_for": "Premium for {months} months for @{recipient}",
           "shop_premium_hint": "A Telegram Premium subscription, gifted to the account."},
    "ru": {"shop_product": "Что купить", "shop_product_stars": "Stars",
           "shop_product_premium": "Telegram Premium", "shop_premium_period": "Срок",
           "shop_months": "{months} мес.", "shop_premium_for": "Premium на {months} мес. для @{recipient}",
           "shop_premium_hint": "Подписка Telegram Premium в подарок этому аккаунту."},
}


def _text(language: str) -> dict[str, str]:
    """i18n's words with the Premium ones added."""
    return {**i18n.TEXT[language], **PREMIUM_TEXT["en"], **PREMIUM_TEXT.get(language, {})}


# Thousands grouped as each language writes them (1,000,000 and 1 000 000, with a no-break space).
GROUPING = {"en": ",", "ru": "\u00a0"}


def grouped(number: int, language: str) -> str:
    return f"{number:,}".replace(",", GROUPING.get(language, ","))


def _words(text: dict[str, str]) -> dict[str, str]:
    return {k: text[k] for k in SCRIPT_WORDS}


def _language(request: Request, lang: str | None) -> str:
    return i18n.choose(lang, request.cookies.get(checkout.LANG_COOKIE),
                       request.headers.get("accept-language"))


def _kit(request: Request) -> shop.ShopKit | None:
    try:
        return shop_api._kit(request)
    except NotFound:
        return None


@router.get("/stars-assets/{name}")
async def asset(name: str) -> FileResponse:
    if name not in FILES:
        raise NotFound(f"No file '{name[:64]}'.", field="name")
    return FileResponse(STATIC / name, media_type=FILES[name],
                        headers={"Cache-Control": "public, max-age=300"})


async def _shop_page(request: Request, lang: str | None, *, telegram: bool) -> Response:
    await request.app.state.limiter.check_ip(request)
    language = _language(request, lang)
    text = _text(language)
    kit = _kit(request)
    if kit is None:
        return page("stars_shop.html", {"lang": language, "t": text, "closed": True, "telegram": telegram,
                                        "view": "shop",
                                        "languages": i18n.NAMES, "devnet": False, "wallets": False},
                    status=404)
    bounds = await shop.limits(deps_of(request), kit)
    settings = request.app.state.settings
    # TON Connect's script and wallet list off the devnet only (the devnet's wallets are not
    # real ones), and not inside Telegram, where initData already says who the buyer is.
    wallets = checkout.TONCONNECT.exists() and settings.network != "devnet" and not telegram
    assets = await shop_api.accepted_assets(request, kit, bounds)
    default = next((q for q in bounds.presets if bounds.minimum <= q <= bounds.maximum), bounds.minimum)
    config: dict[str, Any] = {
        "api": "/api/v1/shop", "lang": language, "telegram": telegram, "wallets": wallets,
        "minimum": bounds.minimum, "maximum": bounds.maximum, "quantity": default, "assets": assets,
        "premium_months": list(bounds.premium_months),
        "price_seconds": PRICE_SECONDS, "text": _words(text)}
    response = page("stars_shop.html", {
        "lang": language, "t": text, "closed": False, "telegram": telegram, "languages": i18n.NAMES,
        "view": "shop", "range": text["shop_range"].format(
            min=grouped(bounds.minimum, language), max=grouped(bounds.maximum, language)),
        "devnet": settings.network == "devnet", "wallets": wallets, "limits": bounds,
        "quantity": default, "config": config, "assets": assets,
        "premium_months": list(bounds.premium_months),
        "wallet_options": checkout.tonconnect_options(settings)}, wallets=wallets)
    return miniapp._framable(response) if telegram else response


@router.get("/stars")
async def stars(request: Request, lang: str | None = None) -> Response:
    return await _shop_page(request, lang, telegram=False)


@router.get("/tg/stars")
async def tg_stars(request: Request, lang: str | None = None) -> Response:
    """The same page inside Telegram: framed by Telegram's web clients only, signed in from
    initData (no TON Connect)."""
    return await _shop_page(request, lang, telegram=True)


@router.get("/stars/orders/{order_id}")
async def order_page(order_id: str, request: Request, lang: str | None = None) -> Response:
    await request.app.state.limiter.check_ip(request)
    language = _language(request, lang)
    text = _text(language)
    kit = _kit(request)
    try:
        if kit is None or len(order_id) > 64:
            raise NotFound("No such order.")
        order = shop_api.order_json(request, await shop.get_order(deps_of(request), kit, order_id))
    except NotFound:
        return page("not_found.html", {"lang": language, "t": text}, status=404)
    # The checkout link relative: the page may be served under any host the proxy gives it.
    if order["checkout_url"]:
        order["checkout_url"] = "/pay/" + order["checkout_url"].rsplit("/pay/", 1)[1]
    config = {"api": "/api/v1/shop", "order_id": order["id"], "status": order["status"],
              "poll_seconds": ORDER_POLL_SECONDS, "text": _words(text)}
    return page("stars_shop.html", {"lang": language, "t": text, "languages": i18n.NAMES, "view": "order",
                                    "closed": False, "telegram": False, "devnet": False, "wallets": False,
                                    "order": order, "config": config})
