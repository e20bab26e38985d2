"""A fake Fragment (fragment.com) for the Stars shop, speaking the subset of its web API the
open-source clients use (there is no official documentation; README "Stars shop" says which
clients and fields were relied on). Mounted at /devnet/fragment.

    GET|POST /fragment/api?hash=<session hash>&method=<method>&<params>
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
    POST /fragment/control/fault   {"kind": "timeout"|"5xx"|"not_found"|"price_change", "count": n}
    POST /fragment/control/price   {"nano_per_star": n}
    POST /fragment/control/users   {"username": "...", "name": "..."}
    GET  /fragment/control/state

`ref` is this fake's one extension: the caller's order id, the purchase's idempotency key
(the same ref answers the same req_id) and what the payment's comment must contain.
A purchase is delivered once the devnet chain shows a payment from any wallet to Fragment's
address of at least the amount with a comment naming the ref or the req_id: it watches the
chain, as Fragment does. A rate limit (requests per second, on the devnet's clock) answers
429 beyond it, like Fragment's anti-flood.
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

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
DEFAULT_USERS = {"durov": "Pavel Durov", "alice_tg": "Alice", "bob_tg": "Bob", "carol_tg": "Carol"}
WALLET_FLOAT = 10**9  # what Fragment's devnet wallet holds before any sale
FAULTS = ("timeout", "5xx", "not_found", "price_change")
NOT_FOUND = "No Telegram users found."


@dataclass(slots=True)
class Purchase:
    req_id: str
    ref: str | None
    recipient: str
    quantity: int
    amount: int  # nanoton
    valid_until: int
    delivered: bool = False


@dataclass
class FakeFragment:
    devnet: Devnet
    rate_per_second: float = 20.0
    nano_per_star: int = DEFAULT_NANO_PER_STAR
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
        params: dict[str, str] = dict(request.query_params)
        if request.method == "POST":
            form = await request.form()
            params.update({k: str(v) for k, v in form.items()})
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
                   "updateStarsBuyState": self._buy_state}.get(method)
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

    def _init(self, params: dict[str, str]) -> dict[str, Any]:
        quantity = _quantity(params)
        recipient = params.get("recipient", "")
        username = next((u for u in self.users if _recipient_id(u) == recipient), None)
        if username is None:
            raise _Refused(NOT_FOUND)
        ref = params.get("ref") or None
        if ref is not None and ref in self.by_ref:  # the same order: the same purchase
            existing = self.purchases[self.by_ref[ref]]
            return {"req_id": existing.req_id, "amount": _ton(existing.amount), "myself": False}
        if self._hit("price_change"):
            self.nano_per_star += self.nano_per_star // 5  # 20 % dearer than the quote
        self._serial += 1
        req_id = f"frg{self._serial:08d}"
        now = int(self.devnet.clock().timestamp())
        purchase = Purchase(req_id, ref, username, quantity, quantity * self.nano_per_star, now + 900)
        self.purchases[req_id] = purchase
        if ref is not None:
            self.by_ref[ref] = req_id
        return {"req_id": req_id, "amount": _ton(purchase.amount), "myself": False}

    def _link(self, params: dict[str, str]) -> dict[str, Any]:
        purchase = self._purchase(params)
        ref = purchase.ref or purchase.req_id
        text = f"{purchase.quantity} Telegram Stars for @{purchase.recipient}\n\nRef#{ref}"
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
            comment = text_comment(tx.in_msg.body) or ""
            for purchase in self.purchases.values():
                keys = {purchase.req_id} | ({purchase.ref} if purchase.ref else set())
                if purchase.delivered or not any(k in comment for k in keys):
                    continue
                kept = not (tx.aborted and tx.in_msg.bounce)  # else it bounced back to the payer
                if kept and (tx.credit or 0) >= purchase.amount and not tx.in_msg.bounced:
                    purchase.delivered = True
                    self.delivered.append((purchase.recipient, purchase.req_id, purchase.quantity))
                    done += 1
        return done

    # -- control -----------------------------------------------------------------------------

    async def _fault(self, request: Request) -> Response:
        body = await read_object(request, {"kind", "count"})
        count = body.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise InvalidInput("count must be a positive integer.", field="count")
        self.inject(str(body.get("kind")), count)
        return JSONResponse({"faults": self.faults})

    async def _price(self, request: Request) -> Response:
        body = await read_object(request, {"nano_per_star"})
        price = body.get("nano_per_star")
        if not isinstance(price, int) or price < 1:
            raise InvalidInput("nano_per_star must be a positive integer.", field="nano_per_star")
        self.nano_per_star = price
        return JSONResponse({"nano_per_star": price})

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


def _ton(nanoton: int) -> str:
    return format(Decimal(nanoton).scaleb(-9).normalize(), "f")

