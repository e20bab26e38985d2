"""/api/v1/shop: the Stars shop for buyers, without a merchant key, rate-limited per client IP.
It sells two products: Telegram Stars (quantity = Stars) and Telegram Premium (quantity =
months: 3, 6 or 12), chosen with `product` ("stars", the default, or "premium").

Prices, recipients and orders come from app/shop.py through `Container.shop()`; an order
pays through its checkout invoice (/pay/{invoice_id}). A buyer may sign in, to see their
orders and spending: with Telegram's initData (the Mini App, as /tg/app does) or with a TON
Connect `ton_proof` on the web, both checked here. Either gives a short session: an HttpOnly
cookie for the web page, the same token as a bearer for the Mini App (whose webview may not
keep third-party cookies). A buyer is "tg:<user id>" or "ton:<raw address>".
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import jwt
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from krypton.adapters.chains.ton import address as ton_address
from krypton.adapters.tonconnect import proof as ton_proof
from krypton.adapters.tonconnect.payloads import PayloadSigner, SqlUsedPayloads
from krypton.app import shop
from krypton.domain import money
from krypton.domain.assets import ASSETS
from krypton.domain.errors import DomainError, NotFound
from krypton.web.api.common import deps_of, json
from krypton.web.errors import ApiError
from krypton.web.pages import miniapp as miniapp_page

# Keyless (buyers, limited per client IP; a buyer's own list needs a buyer session): web/app.py
# names it exempt from the API-key check.
router = APIRouter(prefix="/shop", tags=["shop"])

COOKIE = "krypton_shop"
# Sent to the shop's API only: no page and no other API ever sees the buyer's session.
COOKIE_PATH = "/api/v1/shop"
AUDIENCE = "krypton-shop"
ALGORITHM = "HS256"
# A web sign-in lasts a working day; the Mini App signs in again from initData when it ends,
# so its token may be short, like /tg/app's.
TON_SESSION_SECONDS = 86_400
TELEGRAM_SESSION_SECONDS = 3_600
# How long a ton_proof payload may wait for the wallet to sign it, and how old a signed proof
# may be when it arrives: a QR scanned and approved on a phone takes a minute or two.
PAYLOAD_SECONDS = 900
PROOF_MAX_AGE = 900
SHOP_ASSETS = ("TON", "USDT_TON")
TESTNET_CHAIN = "-3"  # TON Connect's chain id for the testnet
# Telegram usernames: 5 to 32 of a-z, 0-9 and _, starting with a letter (Telegram's rule).
USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,30}[A-Za-z0-9]$")
# What counts as spent: money that left the buyer and was not given back.
SPENT = frozenset({"paid", "fulfilling", "delivered", "failed"})
MAX_SPENDING_PAGES = 50


# --- shapes ---------------------------------------------------------------------------------


class ShopLimitsOut(BaseModel):
    minimum: int = Field(description="The fewest Stars one order may buy.")
    maximum: int = Field(description="The most Stars one order may buy.")
    presets: list[int] = Field(description="Quantities offered as one-tap choices.")
    assets: list[str] = Field(description="Assets an order may be paid in.")
    premium_months: list[int] = Field(description="Telegram Premium's periods, in months "
                                      "(product \"premium\": the quantity is one of them).")


class ShopQuoteOut(BaseModel):
    product: Literal["stars", "premium"] = Field(description="What is quoted: Stars or Premium.")
    quantity: int = Field(description="Stars quoted, or months of Premium.")
    asset: str = Field(description="Asset the price is in.")
    cost: str = Field(description="What the Stars or Premium cost from the supplier (decimal).")
    fee: str = Field(description="Krypton's fee, included in `total` (decimal).")
    total: str = Field(description="The one amount the payer pays: cost plus fee (decimal).")
    expires_at: str = Field(description="Until when this price holds (ISO 8601).")
    equivalents: dict[str, str] = Field(description=(
        "The total in other currencies at the current rates, for reading only (e.g. USDT)."))


class ShopRecipientOut(BaseModel):
    username: str = Field(description="The Telegram username, without @.")
    name: str = Field(description="The account's display name, to check before paying.")
    photo_url: str | None = Field(description="The account's photo as the supplier gave it, if any.")
    initials: str = Field(description="One or two letters for an avatar without a photo.")


class ShopOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recipient: str = Field(max_length=33, description="Telegram username to receive the Stars (@ optional).")
    product: Literal["stars", "premium"] = Field("stars", description=(
        "What to buy: Telegram Stars (quantity = Stars) or Telegram Premium (quantity = months)."))
    quantity: int = Field(description="How many Stars, or months of Premium (3, 6 or 12).")
    asset: Literal["TON", "USDT_TON"] = Field("TON", description="What the payer pays in.")


class ShopOrderOut(BaseModel):
    id: str = Field(description="The order's id (unguessable: whoever has it may follow it).")
    status: shop.OrderStatus = Field(description="Where the order is.")
    recipient: str = Field(description="Who receives the Stars or Premium.")
    product: Literal["stars", "premium"] = Field(description="What the order buys.")
    quantity: int = Field(description="How many Stars, or months of Premium.")
    asset: str = Field(description="What the payer pays in.")
    total: str = Field(description="What the payer pays, fee included (decimal).")
    fee: str = Field(description="Krypton's fee within `total` (decimal).")
    created_at: str = Field(description="When the order was made (ISO 8601).")
    delivered_at: str | None = Field(description="When the Stars arrived (ISO 8601).")
    failure: str | None = Field(description="Why the order failed, in words.")
    refund_tx: str | None = Field(description="The refund's transaction hash, once sent.")
    checkout_url: str | None = Field(description="Where to pay (the hosted checkout).")
    order_url: str = Field(description="The order's own page, to follow it.")


class ShopOrderList(BaseModel):
    object: Literal["list"] = Field(description="Always `list`.")
    data: list[ShopOrderOut] = Field(description="The buyer's orders, newest first.")
    has_more: bool = Field(description="Whether another page follows.")
    buyer: str = Field(description="Who is signed in: tg:<id> or ton:<raw address>.")
    spent: dict[str, str] = Field(description="Total paid per asset (decimal), refunds excluded.")


class TonProofPayloadOut(BaseModel):
    payload: str = Field(description="What the wallet must sign in its ton_proof.")
    expires_at: str = Field(description="Until when it is accepted (ISO 8601).")


class TonProofDomainIn(BaseModel):
    lengthBytes: int = Field(ge=0, le=253, description="The domain's length in bytes.")
    value: str = Field(max_length=253, description="The site the wallet saw.")


class TonProofReplyIn(BaseModel):
    timestamp: int = Field(ge=0, description="When the wallet signed (unix seconds).")
    domain: TonProofDomainIn = Field(description="The site the wallet signed for.")
    payload: str = Field(max_length=256, description="The payload from GET .../ton-proof/payload.")
    signature: str = Field(max_length=100, description="Ed25519 signature, base64.")


class TonProofIn(BaseModel):
    address: str = Field(max_length=100, description="The wallet's address (raw or user-friendly).")
    network: str | None = Field(None, max_length=8, description="TON Connect's chain id (-239, -3).")
    proof: TonProofReplyIn = Field(description="TON Connect's ton_proof reply.")
    state_init: str | None = Field(None, max_length=8192, description=(
        "The wallet's StateInit (base64 BOC), as TON Connect gives it."))


class ShopTelegramIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    init_data: str = Field(max_length=65_536, description="Telegram.WebApp.initData as the page got it.")


class ShopSessionOut(BaseModel):
    buyer: str = Field(description="Who is signed in: tg:<id> or ton:<raw address>.")
    kind: Literal["telegram", "ton"] = Field(description="How the buyer signed in.")
    name: str = Field(description="What to call the buyer on the page.")
    token: str | None = Field(description="A bearer token (Mini App); the web page uses the cookie.")
    expires_at: str = Field(description="When the session ends (ISO 8601).")


# --- plumbing -------------------------------------------------------------------------------


def _kit(request: Request) -> shop.ShopKit:
    kit: shop.ShopKit | None = request.app.state.container.shop()
    if kit is None:
        raise NotFound("The Stars shop is not set up on this server.", field="shop")
    return kit


def _units(amount: int, asset: str) -> str:
    return money.format_units(amount, ASSETS[asset].decimals)


def _asset(asset: str) -> str:
    if asset not in SHOP_ASSETS:
        raise DomainError(f"asset must be one of {', '.join(SHOP_ASSETS)}.", field="asset")
    return asset


def _username(text: str) -> str:
    name = text.strip().removeprefix("@")
    if not USERNAME.fullmatch(name):
        raise DomainError("A Telegram username has 5 to 32 letters, digits or underscores and "
                          "starts with a letter.", field="username")
    return name


async def _in_range(request: Request, kit: shop.ShopKit, quantity: int, product: str = "stars") -> None:
    bounds = await shop.limits(deps_of(request), kit)
    if product == "premium":
        if quantity not in bounds.premium_months:
            raise DomainError("Telegram Premium is sold for 3, 6 or 12 months: quantity is the number "
                              f"of months; got {quantity}.", field="quantity")
        return
    if not bounds.minimum <= quantity <= bounds.maximum:
        raise DomainError(f"quantity must be between {bounds.minimum} and {bounds.maximum} Stars; "
                          f"got {quantity}.", field="quantity")


def initials(name: str, username: str) -> str:
    words = [w for w in re.split(r"\s+", name.strip()) if w and w[0].isalnum()]
    letters = "".join(w[0] for w in words[:2]) or username[:1]
    return letters.upper()


def order_json(request: Request, order: shop.Order) -> dict[str, Any]:
    base = request.app.state.settings.public_url.rstrip("/")
    return {
        "id": order.id, "status": order.status.value, "recipient": order.recipient,
        "product": order.product.value, "quantity": order.quantity, "asset": order.asset,
        "total": _units(order.total, order.asset),
        "fee": _units(order.fee, order.asset), "created_at": order.created_at.isoformat(),
        "delivered_at": order.delivered_at.isoformat() if order.delivered_at else None,
        "failure": order.failure, "refund_tx": order.refund_tx,
        "checkout_url": f"{base}/pay/{order.invoice_id}" if order.invoice_id else None,
        "order_url": f"{base}/stars/orders/{order.id}",
    }


def _no_store(body: Any, status: int = 200) -> JSONResponse:
    response = json(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- buyer sessions -------------------------------------------------------------------------


def _key(request: Request, purpose: bytes) -> bytes:
    """Keys derived from the secret keys (every process that shares them agrees)."""
    state = request.app.state
    cache: dict[bytes, bytes] = getattr(state, "shop_keys", None) or {}
    if purpose not in cache:
        ring, _ = state.container.secret_keys()
        cache[purpose] = ring.derive(purpose)
        state.shop_keys = cache
    return cache[purpose]


def _now(request: Request) -> int:
    return int(deps_of(request).clock.now().timestamp())


def _session(request: Request, buyer: str, kind: str, name: str, seconds: int) -> dict[str, Any]:
    now = _now(request)
    token = jwt.encode({"sub": buyer, "kind": kind, "name": name, "iat": now, "exp": now + seconds,
                        "aud": AUDIENCE, "jti": secrets.token_urlsafe(9)},
                       _key(request, b"shop-buyer-session"), algorithm=ALGORITHM)
    return {"buyer": buyer, "kind": kind, "name": name, "token": token,
            "expires_at": datetime.fromtimestamp(now + seconds, UTC).isoformat()}


def _signed_in(request: Request, body: dict[str, Any], seconds: int, *, bearer: bool) -> JSONResponse:
    """The session as a cookie (HttpOnly, Lax; Secure except on the devnet's plain http);
    the token in the body only for the Mini App, which keeps it in memory."""
    token = body["token"]
    response = _no_store({**body, "token": token if bearer else None})
    response.set_cookie(COOKIE, token, max_age=seconds, path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=request.app.state.settings.network != "devnet")
    return response


def session_claims(request: Request) -> dict[str, Any] | None:
    """The buyer's claims from `Authorization: Bearer` or the cookie; None when neither is
    sent. A bearer that does not verify is refused (401); a stale cookie counts as none (the
    page then shows the sign-in again)."""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    token = bearer.strip() if scheme.lower() == "bearer" and bearer.strip() else None
    from_cookie = token is None
    token = token or request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token, _key(request, b"shop-buyer-session"), algorithms=[ALGORITHM], audience=AUDIENCE,
            options={"require": ["sub", "exp", "aud", "kind"], "verify_exp": False})
    except jwt.PyJWTError:
        claims = {}
    # Expiry against Krypton's clock (the one tests drive), not the library's.
    if claims and _now(request) < int(claims["exp"]) and str(claims["sub"]).startswith(("tg:", "ton:")):
        return claims
    if from_cookie:
        return None
    raise ApiError(401, "unauthenticated", "The sign-in has expired or is not valid: sign in again.")


def _buyer(request: Request) -> str:
    claims = session_claims(request)
    if claims is None:
        raise ApiError(401, "unauthenticated", "Sign in (TON Connect, or Telegram in the Mini App) "
                       "to see your orders.")
    return str(claims["sub"])


# --- prices, recipients, orders ---------------------------------------------------------------


@router.get("/limits", response_model=ShopLimitsOut, summary="How many Stars one order may buy")
async def get_limits(request: Request) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    kit = _kit(request)
    bounds = await shop.limits(deps_of(request), kit)
    return json({"minimum": bounds.minimum, "maximum": bounds.maximum,
                 "presets": list(bounds.presets), "assets": await accepted_assets(request, kit, bounds),
                 "premium_months": list(bounds.premium_months)})


async def accepted_assets(request: Request, kit: shop.ShopKit, bounds: shop.Limits) -> list[str]:
    """The assets the shop's core prices an order in now (it names a refused one with
    field "asset"; any other failure, a supplier down, says nothing about the asset)."""
    accepted = []
    for code in SHOP_ASSETS:
        try:
            await shop.quote(deps_of(request), kit, bounds.minimum, code)
        except DomainError as exc:
            if exc.field == "asset":
                continue
        accepted.append(code)
    return accepted


async def equivalents(request: Request, total: int, asset: str) -> dict[str, str]:
    """The total in USDT (or TON for a USDT total) at the rates Krypton prices with, cut to
    cents (or 0.001 TON): for reading only, so a missing or stale rate just leaves it out."""
    other = "USDT" if asset == "TON" else "TON"
    deps = deps_of(request)
    try:
        mine, theirs = await deps.rates.usd_rate(ASSETS[asset].currency), await deps.rates.usd_rate(other)
    except DomainError:
        return {}
    now = deps.clock.now()
    if not (mine.usable(now) and theirs.usable(now)) or Decimal(theirs.rate) <= 0:
        return {}
    whole = Decimal(total) / Decimal(10) ** ASSETS[asset].decimals * Decimal(mine.rate) / Decimal(theirs.rate)
    step = Decimal("0.01") if other == "USDT" else Decimal("0.001")
    return {other: str(whole.quantize(step, rounding=ROUND_HALF_UP))}


@router.get("/quote", response_model=ShopQuoteOut,
            summary="The price of Stars or Premium, fee included (one total)")
async def get_quote(request: Request, quantity: Annotated[int, Query(
                        description="How many Stars, or months of Premium (3, 6 or 12).")],
                    asset: Annotated[str, Query(max_length=16, description="TON or USDT_TON.")] = "TON",
                    product: Annotated[Literal["stars", "premium"], Query(
                        description="stars (the default) or premium.")] = "stars",
                    ) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    kit = _kit(request)
    await _in_range(request, kit, quantity, product)
    found = await shop.quote(deps_of(request), kit, quantity, _asset(asset), product)
    return _no_store({"product": found.product.value, "quantity": found.quantity, "asset": found.asset,
                      "cost": _units(found.cost, found.asset), "fee": _units(found.fee, found.asset),
                      "total": _units(found.total, found.asset), "expires_at": found.expires_at.isoformat(),
                      "equivalents": await equivalents(request, found.total, found.asset)})


@router.get("/recipients/{username}", response_model=ShopRecipientOut,
            summary="Who a Telegram username is, to check before paying")
async def get_recipient(username: str, request: Request) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    kit = _kit(request)
    name = _username(username)
    try:
        found = await shop.lookup_recipient(deps_of(request), kit, name)
    except NotFound:
        raise NotFound(f"No Telegram account '@{name}' can receive Stars: check the username.",
                       field="username") from None
    return json({"username": found.username, "name": found.name, "photo_url": found.photo_url,
                 "initials": initials(found.name, found.username)})


@router.post("/orders", response_model=ShopOrderOut, status_code=201,
             summary="Order Stars for a username: pay through the order's checkout_url")
async def create_order(body: ShopOrderIn, request: Request,
                       idempotency_key: Annotated[str | None, Header(
                           max_length=255, description="Retry safely: the same key, the same order.")] = None,
                       ) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    kit = _kit(request)
    recipient = _username(body.recipient)
    await _in_range(request, kit, body.quantity, body.product)
    claims = session_claims(request)
    try:
        order = await shop.create_order(deps_of(request), kit, buyer=str(claims["sub"]) if claims else None,
                                        recipient=recipient, quantity=body.quantity, asset=body.asset,
                                        idempotency_key=idempotency_key, product=body.product)
    except NotFound as exc:
        raise NotFound(str(exc) or f"No Telegram account '@{recipient}' can receive Stars.",
                       field="recipient") from None
    return _no_store(order_json(request, order), 201)


@router.get("/orders/{order_id}", response_model=ShopOrderOut,
            summary="An order's status (by its unguessable id; never who bought it)")
async def get_order(order_id: str, request: Request) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    kit = _kit(request)
    if len(order_id) > 64:
        raise NotFound("No such order.", field="id")
    return _no_store(order_json(request, await shop.get_order(deps_of(request), kit, order_id)))


@router.get("/me/orders", response_model=ShopOrderList,
            summary="The signed-in buyer's orders, newest first, and what they spent")
async def my_orders(request: Request,
                    limit: Annotated[int, Query(ge=1, le=100, description="Page size, 1 to 100.")] = 20,
                    starting_after: Annotated[str | None, Query(
                        max_length=64, description="Id of the last order of the previous page.")] = None,
                    ) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    kit = _kit(request)
    buyer = _buyer(request)
    deps = deps_of(request)
    found, more = await shop.orders_of(deps, kit, buyer, limit=limit, starting_after=starting_after)
    return _no_store({"object": "list", "data": [order_json(request, o) for o in found],
                      "has_more": more, "buyer": buyer, "spent": await _spent(request, kit, buyer)})


async def _spent(request: Request, kit: shop.ShopKit, buyer: str) -> dict[str, str]:
    """Paid per asset over every order of the buyer (pages of 100, bounded)."""
    totals: dict[str, int] = {}
    after: str | None = None
    for _ in range(MAX_SPENDING_PAGES):
        found, more = await shop.orders_of(deps_of(request), kit, buyer, limit=100, starting_after=after)
        for order in found:
            if order.status.value in SPENT:
                totals[order.asset] = totals.get(order.asset, 0) + order.total
        if not more or not found:
            break
        after = found[-1].id
    return {asset: _units(total, asset) for asset, total in sorted(totals.items())}


# --- signing in -----------------------------------------------------------------------------


@router.get("/me", response_model=ShopSessionOut, summary="Who is signed in (401 when no one)")
async def me(request: Request) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    claims = session_claims(request)
    if claims is None:
        raise ApiError(401, "unauthenticated", "No one is signed in.")
    ends = datetime.fromtimestamp(int(claims["exp"]), UTC).isoformat()
    return _no_store({"buyer": claims["sub"], "kind": claims["kind"], "name": claims.get("name", ""),
                      "token": None, "expires_at": ends})


@router.get("/auth/ton-proof/payload", response_model=TonProofPayloadOut,
            summary="A fresh payload for TON Connect's ton_proof (signed, expiring, single use)")
async def proof_payload(request: Request) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    now = _now(request)
    payload = PayloadSigner(_key(request, b"shop-ton-proof-payload")).issue(now, PAYLOAD_SECONDS)
    return _no_store({"payload": payload,
                      "expires_at": datetime.fromtimestamp(now + PAYLOAD_SECONDS, UTC).isoformat()})


def proof_domain(request: Request) -> str:
    """The domain wallets sign for: the host (and port) of the site's public URL, which is
    where the TON Connect manifest says the site is."""
    url: str = request.app.state.settings.public_url
    return urlsplit(url).netloc.rpartition("@")[2]


async def _verify_proof(request: Request, account: ton_address.TonAddress, signed: ton_proof.Proof,
                        state_init: str | None, now: int) -> None:
    """Every check on what was sent; only a wallet whose key is in neither the state_init's
    known layouts nor anywhere else costs a get_public_key on the chain (after the domain,
    time and state_init checks have passed)."""
    domain = proof_domain(request)
    try:
        ton_proof.verify(account, signed, state_init, domain=domain, now=now, max_age=PROOF_MAX_AGE)
    except ton_proof.InvalidProof as exc:
        if exc.reason is not ton_proof.Reason.UNKNOWN_WALLET:
            raise
        key = await request.app.state.container.wallet_public_key(account)
        ton_proof.verify(account, signed, state_init, domain=domain, now=now, max_age=PROOF_MAX_AGE,
                         public_key=key)


@router.post("/auth/ton-proof", response_model=ShopSessionOut,
             summary="Sign in with a TON wallet: its ton_proof, checked here")
async def sign_in_ton(body: TonProofIn, request: Request) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    now = _now(request)
    try:
        account = ton_address.parse(body.address, network="testnet")  # the wallet's network
    except (ton_address.InvalidAddress, ValueError):
        raise DomainError("address must be the connected wallet's TON address.", field="address") from None
    if request.app.state.settings.network == "mainnet" and body.network == TESTNET_CHAIN:
        raise DomainError("This wallet is connected to the TON testnet; this site is on mainnet.",
                          field="network")
    try:
        if body.proof.domain.lengthBytes != len(body.proof.domain.value.encode("utf-8")):
            raise ton_proof.InvalidProof(ton_proof.Reason.MALFORMED, "The proof's domain length "
                                         "does not match the domain.")
        signer = PayloadSigner(_key(request, b"shop-ton-proof-payload"))
        nonce, expires = signer.check(body.proof.payload, now)
        signed = ton_proof.Proof(body.proof.timestamp, body.proof.domain.value, body.proof.payload,
                                 ton_proof.parse_signature(body.proof.signature))
        await _verify_proof(request, account, signed, body.state_init, now)
    except ton_proof.InvalidProof as exc:
        raise ApiError(401, "invalid_proof", f"TON sign-in refused: {exc}", field="proof") from None
    # Used only once it proved something: a bad try does not burn a good payload.
    used = SqlUsedPayloads(request.app.state.container.db)
    if not await used.use(nonce, expires, deps_of(request).clock.now()):
        raise ApiError(401, "invalid_proof", "TON sign-in refused: this proof was already used; "
                       "sign in again.", field="proof")
    friendly = account.friendly(bounceable=False, testnet=request.app.state.settings.network != "mainnet")
    session = _session(request, f"ton:{account.raw}", "ton", f"{friendly[:4]}…{friendly[-4:]}",
                       TON_SESSION_SECONDS)
    return _signed_in(request, session, TON_SESSION_SECONDS, bearer=False)


@router.post("/auth/telegram", response_model=ShopSessionOut,
             summary="Sign in inside Telegram: the Mini App's initData, checked here")
async def sign_in_telegram(body: ShopTelegramIn, request: Request) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    # The Mini App's own check (HMAC with the bot token, or Telegram's Ed25519 signature).
    data = miniapp_page._verified(request, body.init_data)
    if data.user is None:
        raise ApiError(401, "invalid_init_data", "The initData names no Telegram user: open the "
                       "shop from the bot.", field="init_data")
    # The bot has now met this user: a Premium gift to their username can name their id.
    kit: shop.ShopKit | None = request.app.state.container.shop()
    if kit is not None:
        await shop.remember_user(deps_of(request), kit, data.user.username, data.user.id)
    session = _session(request, f"tg:{data.user.id}", "telegram", data.user.first_name or "",
                       TELEGRAM_SESSION_SECONDS)
    return _signed_in(request, session, TELEGRAM_SESSION_SECONDS, bearer=True)


@router.post("/auth/logout", status_code=204, summary="Sign out (forget the session cookie)")
async def sign_out(request: Request) -> Response:
    await request.app.state.limiter.check_ip(request)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax",
                           secure=request.app.state.settings.network != "devnet")
    return response
