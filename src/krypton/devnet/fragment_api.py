"""A fake Fragment (fragment.com) for the Stars shop, speaking the subset of its web API the
open-source clients use (there is no official documentation; README "Stars shop" says which
clients and fields were relied on). Mounted at /devnet/fragment.

    POST /fragment/api?hash=<session hash>   application/x-www-form-urlencoded body:
                                             method=<method>&<params> (as Fragment's page
                                             sends it; a GET, or another body, is refused 405/415)
      searchStarsRecipient  query=<username>&quantity=
          {"ok": true, "found": {"recipient": "<id>", "name": "...", "photo": "<img src=\"...\">"}}
          {"error": "No Telegram users found."}
      updateStarsPrices     quantity=<n>
          {"ok": true, "cur_price": "<TON for n Stars, decimal>"}
      initBuyStarsRequest   recipient=<id>&quantity=<n>[&ref=<order id>]
          {"req_id": "...", "amount": "<TON decimal>", "myself": false}
      getBuyStarsLink       id=<req_id>&transaction=1&show_sender=0
          {"ok": true, "transaction": {"validUntil": <unix s>, "messages": [
              {"address": "<Fragment's wallet>", "amount": "<nanoton>", "payload": "<base64 BOC>"}]}}
      updateStarsBuyState   id=<req_id>
          {"ok": true, "mode": "new" | "pending" | "done" | "expired"}
      searchPremiumGiftRecipient  query=<username>&months=3|6|12   (as searchStarsRecipient)
      updatePremiumPrices   months=3|6|12     {"ok": true, "cur_price": "<TON decimal>"}
      initGiftPremiumRequest  recipient=<id>&months=<m>[&ref=<order id>]  (as initBuyStarsRequest)
      getGiftPremiumLink    id=<req_id>&transaction=1&show_sender=0   (as getBuyStarsLink)
      updatePremiumState    id=<req_id>       (as updateStarsBuyState)
    POST /fragment/control/fault   {"kind": "timeout"|"5xx"|"not_found"|"price_change", "count": n}
    POST /fragment/control/price   {"nano_per_star": n} and/or {"premium": {"3": nanoton, ...}}
    POST /fragment/control/users   {"username": "...", "name": "..."}
    GET  /fragment/control/state

`ref` is this fake's one extension: the caller's order id, the purchase's idempotency key
(the same ref answers the same req_id) and what the payment's comment must contain.
A purchase is delivered once the devnet chain shows a payment from any wallet to Fragment's
address of at least the amount with a comment naming its `Ref#<ref>` (the payload
getBuyStarsLink gave; `ref` is the order id when given, else the req_id): it watches the
chain, as Fragment does. A rate limit (requests per second, on the devnet's clock) answers
429 beyond it, like Fragment's anti-flood.
"""

from __future__ import annotations

import base64
import re
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast
from urllib.parse import parse_qsl

from pytoniq_core.boc.builder import Builder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.comments import text_comment
from krypton.adapters.signer.wallet import WalletVersion, default_wallet_id, state_init
from krypton.devnet.common import DevnetError, InvalidInput, named
from krypton.devnet.devnet import Devnet
from krypton.devnet.requests import read_object, refused

# Fragment's wallet: a deployed wallet contract (v4r2, a key nobody holds), so a bounceable
# payment to it is accepted as on mainnet.
_WALLET_INIT = state_init(WalletVersion.V4R2, named("fragment", "wallet-key"),
                          default_wallet_id(WalletVersion.V4R2, "testnet"))
FRAGMENT_WALLET = TonAddress(0, cast(Any, _WALLET_INIT).hash)
DEFAULT_NANO_PER_STAR = 15_000_000  # 0.015 TON a Star: 50 Stars for 0.75 TON
# Premium by months, in nanoton: about Fragment's USD prices at 5 USD a TON.
DEFAULT_PREMIUM_PRICES = {3: 2_398_000_000, 6: 3_198_000_000, 12: 5_798_000_000}
PREMIUM = "premium"
DEFAULT_USERS = {"durov": "Pavel Durov", "alice_tg": "Alice", "bob_tg": "Bob", "carol_tg": "Carol"}
WALLET_FLOAT = 10**9  # what Fragment's devnet wallet holds before any sale
FAULTS = ("timeout", "5xx", "not_found", "price_change")
NOT_FOUND = "No Telegram users found."

# A payment comment's "Ref#<ref>" words (up to the first character no ref holds).
_REF = re.compile(r"Ref#([\w.:-]+)")

@dataclass(slots=True)
class Purchase:
    req_id: str
    ref: str | None
    recipient: str
    quantity: int
    amount: int  # nanoton
    valid_until: int
    delivered: bool = False
    product: str = "stars"  # quantity: Stars, or months of Premium


@dataclass
class FakeFragment:
    devnet: Devnet
    rate_per_second: float = 20.0
    nano_per_star: int = DEFAULT_NANO_PER_STAR
    premium_prices: dict[int, int] = field(default_factory=lambda: dict(DEFAULT_PREMIUM_PRICES))
    users: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_USERS))
    faults: dict[str, int] = field(default_factory=dict)  # kind -> how many calls it hits
    purchases: dict[str, Purchase] = field(default_factory=dict)  # by req_id
    by_ref: dict[str, str] = field(default_factory=dict)  # ref -> req_id
    delivered: list[tuple[str, str, int]] = field(default_factory=list)  # (username, req_id, stars)
    calls: int = 0
    throttled: int = 0
    _window: deque[float] = field(default_factory=deque)
    _serial: int = 0

    def __post_init__(self) -> None:
        if self.devnet.ton.wallet(FRAGMENT_WALLET) is None:
            self.devnet.ton.deploy_wallet_contract(_WALLET_INIT, WALLET_FLOAT)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/api", self._api, methods=["GET", "POST"]),
            Route("/control/fault", self._fault, methods=["POST"]),
            Route("/control/price", self._price, methods=["POST"]),
            Route("/control/users", self._user, methods=["POST"]),
            Route("/control/state", self._state, methods=["GET"]),
        ], exception_handlers={DevnetError: refused})

    # -- faults and the rate limit ---------------------------------------------------------

    def inject(self, kind: str, count: int = 1) -> None:
        if kind not in FAULTS:
            raise InvalidInput(f"kind must be one of {', '.join(FAULTS)}.", field="kind")
        self.faults[kind] = self.faults.get(kind, 0) + count

    def _hit(self, kind: str) -> bool:
        left = self.faults.get(kind, 0)
        if left <= 0:
            return False
        self.faults[kind] = left - 1
        return True

    def _allowed(self) -> bool:
        now = self.devnet.clock().timestamp()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate_per_second:
            return False
        self._window.append(now)
        return True

    # -- the API -----------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        if request.method != "POST":
            # Fragment's page POSTs its calls; a client sending GET parameters is wrong.
            return JSONResponse({"error": "Method not allowed: POST a form"}, status_code=405,
                                headers={"Allow": "POST"})
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return JSONResponse({"error": "Send application/x-www-form-urlencoded"}, status_code=415)
        params: dict[str, str] = {"hash": request.query_params.get("hash", "")}
        # Parsed here: Starlette's form parser needs python-multipart, not a dependency.
        form = parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True)
        params.update({k: v for k, v in form if k != "hash"})
        self.calls += 1
        if not self._allowed():
            self.throttled += 1
            return JSONResponse({"error": "FLOOD_WAIT"}, status_code=429, headers={"Retry-After": "1"})
        if not params.get("hash"):
            return JSONResponse({"error": "Access denied"}, status_code=403)
        if self._hit("5xx"):
            return JSONResponse({"error": "Internal error"}, status_code=502)
        if self._hit("timeout"):
            return Response("", status_code=504)  # the gateway's answer when Fragment hangs
        method = params.get("method", "")
        handler = {"searchStarsRecipient": self._search, "updateStarsPrices": self._prices,
                   "initBuyStarsRequest": self._init, "getBuyStarsLink": self._link,
                   "updateStarsBuyState": self._buy_state,
                   "searchPremiumGiftRecipient": self._search_premium,
                   "updatePremiumPrices": self._premium_prices,
                   "initGiftPremiumRequest": self._init_premium,
                   "getGiftPremiumLink": self._link, "updatePremiumState": self._buy_state,
                   }.get(method)
        if handler is None:
            return JSONResponse({"error": "Unknown method"})
        try:
            return JSONResponse(handler(params))
        except _Refused as exc:
            return JSONResponse({"error": str(exc)})

    def _search(self, params: dict[str, str]) -> dict[str, Any]:
        username = params.get("query", "").strip().lstrip("@").lower()
        if self._hit("not_found") or username not in self.users:
            raise _Refused(NOT_FOUND)
        return {"ok": True, "found": {
            "recipient": _recipient_id(username), "name": self.users[username],
            "photo": f'<img src="https://cdn.devnet.example/{username}.jpg" />'}}

    def _prices(self, params: dict[str, str]) -> dict[str, Any]:
        quantity = _quantity(params)
        return {"ok": True, "cur_price": _ton(quantity * self.nano_per_star)}

    def _search_premium(self, params: dict[str, str]) -> dict[str, Any]:
        _months(params)
        return self._search(params)

    def _premium_prices(self, params: dict[str, str]) -> dict[str, Any]:
        return {"ok": True, "cur_price": _ton(self.premium_prices[_months(params)])}

    def _init_premium(self, params: dict[str, str]) -> dict[str, Any]:
        return self._init(params, PREMIUM)

    def _init(self, params: dict[str, str], product: str = "stars") -> dict[str, Any]:
        quantity = _months(params) if product == PREMIUM else _quantity(params)
        recipient = params.get("recipient", "")
        username = next((u for u in self.users if _recipient_id(u) == recipient), None)
        if username is None:
            raise _Refused(NOT_FOUND)
        ref = params.get("ref") or None
        if ref is not None and ref in self.by_ref:  # the same order: the same purchase
            existing = self.purchases[self.by_ref[ref]]
            return {"req_id": existing.req_id, "amount": _ton(existing.amount), "myself": False}
        if self._hit("price_change"):  # 20 % dearer than the quote
            self.nano_per_star += self.nano_per_star // 5
            self.premium_prices = {m: p + p // 5 for m, p in self.premium_prices.items()}
        self._serial += 1
        req_id = f"frg{self._serial:08d}"
        now = int(self.devnet.clock().timestamp())
        amount = self.premium_prices[quantity] if product == PREMIUM else quantity * self.nano_per_star
        purchase = Purchase(req_id, ref, username, quantity, amount, now + 900, product=product)
        self.purchases[req_id] = purchase
        if ref is not None:
            self.by_ref[ref] = req_id
        return {"req_id": req_id, "amount": _ton(purchase.amount), "myself": False}

    def _link(self, params: dict[str, str]) -> dict[str, Any]:
        purchase = self._purchase(params)
        ref = purchase.ref or purchase.req_id
        what = f"Telegram Premium for {purchase.quantity} months" if purchase.product == PREMIUM \
            else f"{purchase.quantity} Telegram Stars"
        text = f"{what} for @{purchase.recipient}\n\nRef#{ref}"
        payload = Builder().store_uint(0, 32).store_snake_string(text).end_cell().to_boc()
        return {"ok": True, "transaction": {"validUntil": purchase.valid_until, "messages": [{
            "address": FRAGMENT_WALLET.friendly(bounceable=True, testnet=True),
            "amount": str(purchase.amount), "payload": base64.b64encode(payload).decode()}]}}

    def _buy_state(self, params: dict[str, str]) -> dict[str, Any]:
        purchase = self._purchase(params)
        self.watch()
        if purchase.delivered:
            mode = "done"
        elif int(self.devnet.clock().timestamp()) > purchase.valid_until:
            mode = "expired"
        else:
            mode = "new"
        return {"ok": True, "mode": mode}

    def _purchase(self, params: dict[str, str]) -> Purchase:
        purchase = self.purchases.get(params.get("id", ""))
        if purchase is None:
            raise _Refused("Request not found")
        return purchase

    def watch(self) -> int:
        """Deliver every purchase whose payment the chain shows (final or pending: Fragment
        credits on the first sight); returns how many were delivered now."""
        done = 0
        for tx in self.devnet.ton.transactions(FRAGMENT_WALLET, include_pending=True):
            # Only the "Ref#<ref>" its payment link's payload gave counts (as on Fragment), as
            # a whole word: an order id alone, or Ref#frg1 inside Ref#frg12, pays nothing.
            for token in _REF.findall(text_comment(tx.in_msg.body) or ""):
                purchase = self._named(token)
                if purchase is None or purchase.delivered:
                    continue
                kept = not (tx.aborted and tx.in_msg.bounce)  # else it bounced back to the payer
                if kept and (tx.credit or 0) >= purchase.amount and not tx.in_msg.bounced:
                    purchase.delivered = True
                    self.delivered.append((purchase.recipient, purchase.req_id, purchase.quantity))
                    done += 1
        return done

    def _named(self, token: str) -> Purchase | None:
        """The purchase whose payment payload names `token` (its ref, or its req_id when it
        has none)."""
        if token in self.by_ref:
            return self.purchases[self.by_ref[token]]
        found = self.purchases.get(token)
        return found if found is not None and found.ref is None else None

    # -- control -----------------------------------------------------------------------------

    async def _fault(self, request: Request) -> Response:
        body = await read_object(request, {"kind", "count"})
        count = body.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise InvalidInput("count must be a positive integer.", field="count")
        self.inject(str(body.get("kind")), count)
        return JSONResponse({"faults": self.faults})

    async def _price(self, request: Request) -> Response:
        body = await read_object(request, {"nano_per_star", "premium"})
        price = body.get("nano_per_star", self.nano_per_star)
        if not isinstance(price, int) or price < 1:
            raise InvalidInput("nano_per_star must be a positive integer.", field="nano_per_star")
        premium = body.get("premium", {})
        if not isinstance(premium, dict) or any(
                k not in ("3", "6", "12") or not isinstance(v, int) or v < 1 for k, v in premium.items()):
            raise InvalidInput("premium maps \"3\", \"6\" or \"12\" (months) to a positive nanoton "
                               "price.", field="premium")
        self.nano_per_star = price
        self.premium_prices.update({int(k): v for k, v in premium.items()})
        return JSONResponse({"nano_per_star": price,
                             "premium": {str(k): v for k, v in self.premium_prices.items()}})

    async def _user(self, request: Request) -> Response:
        body = await read_object(request, {"username", "name"})
        username, name = body.get("username"), body.get("name")
        if not isinstance(username, str) or not isinstance(name, str) or not username:
            raise InvalidInput("Send {\"username\": ..., \"name\": ...}.", field="username")
        self.users[username.lower()] = name
        return JSONResponse({"users": sorted(self.users)})

    async def _state(self, request: Request) -> Response:
        return JSONResponse({"nano_per_star": self.nano_per_star, "faults": self.faults,
                             "calls": self.calls, "throttled": self.throttled,
                             "purchases": len(self.purchases), "delivered": len(self.delivered),
                             "wallet": FRAGMENT_WALLET.raw})


class _Refused(Exception):
    """Fragment's application-level error: HTTP 200 with {"error": ...}."""


def _recipient_id(username: str) -> str:
    return base64.urlsafe_b64encode(named("fragment", "user", username)[:18]).decode()


def _quantity(params: dict[str, str]) -> int:
    try:
        quantity = int(params.get("quantity", ""))
    except ValueError:
        raise _Refused("Invalid quantity") from None
    if not 50 <= quantity <= 1_000_000:
        raise _Refused("Invalid quantity")
    return quantity


def _months(params: dict[str, str]) -> int:
    months = params.get("months", "")
    if months not in ("3", "6", "12"):
        raise _Refused("Invalid months")
    return int(months)


def _ton(nanoton: int) -> str:
    return format(Decimal(nanoton).scaleb(-9).normalize(), "f")

