"""Fragment (fragment.com) as a Stars supplier: Stars for a Telegram username, paid in TON
from the platform's hot wallet through the signer. Fragment answers a purchase with the TON
transfer to make (address, amount, payload); the shop's signer signs it. Fragment never
receives a key, a seed or a mnemonic, only the session hash and cookie of the shop's account.

Fragment has no public API documentation: the calls are those of its web page, as the
open-source clients make them (README "Stars shop" names them and the fields relied on):
`POST /api?hash=…` with `method=searchStarsRecipient | updateStarsPrices |
initBuyStarsRequest | getBuyStarsLink | updateStarsBuyState`. An answer with an "error"
field is Fragment refusing (HTTP 200): "No Telegram users found." means the username does
not exist. Every call goes through the provider layer (rate limiter, breaker, endpoint
choice); prices are cached 30 s, lookups 5 minutes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from krypton.adapters.chains.provider import Priority, ProviderClient
from krypton.adapters.chains.provider.cache import TtlCache
from krypton.adapters.chains.provider.errors import ProviderError
from krypton.adapters.chains.ton.comments import comment_from_boc
from krypton.app.ports import (
    SupplierError,
    SupplierOrder,
    SupplierPayment,
    SupplierQuote,
    SupplierRecipient,
)

NAME = "fragment"
PRICE_TTL = 30.0  # seed 003: prices 30 s
LOOKUP_TTL = 300.0
NOT_FOUND = "No Telegram users found"
_DECIMAL = re.compile(r"\d+(?:\.\d+)?")
_IMG = re.compile(r'src="([^"]+)"')
# updateStarsBuyState's modes, as the order sees them.
_MODES = {"new": "pending_payment", "pending": "processing", "done": "delivered",
          "expired": "failed"}


def nanoton(text: Any) -> int:
    """A TON amount as Fragment writes it ("0.75", or inside its HTML), in nanoton."""
    found = _DECIMAL.search(str(text).replace(",", ""))
    if found is None:
        raise SupplierError(f"Fragment sent a price without a number: {str(text)[:80]!r}",
                            retryable=True, code="bad_answer")
    try:
        return int(Decimal(found.group(0)).scaleb(9).to_integral_exact())
    except InvalidOperation:
        raise SupplierError("Fragment sent a price below a nanoton", retryable=True,
                            code="bad_answer") from None


class FragmentSupplier:
    name = NAME

    def __init__(self, provider: ProviderClient, api_hash: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._provider = provider
        self._hash = api_hash
        self._prices: TtlCache[int, SupplierQuote] = TtlCache(PRICE_TTL, clock=clock)
        self._recipients: TtlCache[str, SupplierRecipient] = TtlCache(LOOKUP_TTL, clock=clock)
        self._refs: dict[str, str] = {}  # order id -> req_id, for this process's purchases

    async def _call(self, method: str, priority: Priority = Priority.DISCOVERY,
                    **params: Any) -> dict[str, Any]:
        """One call; `priority` CONFIRM for the state of purchases already paid (their
        delivery is what payers wait for), served first when the rate limit is the queue."""
        query = {"hash": self._hash, "method": method, **{k: str(v) for k, v in params.items()}}
        try:
            answer = await self._provider.get_json("/api", params=query, priority=priority)
        except ProviderError as exc:
            raise SupplierError(f"Fragment did not answer {method}: {exc}",
                                retryable=exc.retryable or exc.status == 403, code="unavailable") from None
        if not isinstance(answer, dict):
            raise SupplierError(f"Fragment answered {method} with something else than an object",
                                retryable=True, code="bad_answer")
        error = answer.get("error")
        if error:
            if NOT_FOUND in str(error):
                raise SupplierError(f"Fragment knows no Telegram user for this username ({error})",
                                    retryable=False, code="recipient_not_found")
            raise SupplierError(f"Fragment refused {method}: {str(error)[:200]}", retryable=False,
                                code="refused")
        return answer

    async def quote(self, quantity: int) -> SupplierQuote:
        async def fetch() -> SupplierQuote:
            answer = await self._call("updateStarsPrices", stars="", quantity=quantity)
            cost = nanoton(answer.get("cur_price"))
            return SupplierQuote(NAME, quantity, "TON", cost, cost)
        return await self._prices.get(quantity, fetch)

    async def lookup(self, username: str) -> SupplierRecipient:
        async def fetch() -> SupplierRecipient:
            answer = await self._call("searchStarsRecipient", query=username, quantity="")
            found = answer.get("found")
            if not isinstance(found, dict) or not found.get("recipient"):
                raise SupplierError("Fragment's search answered without a recipient", retryable=True,
                                    code="bad_answer")
            photo = _IMG.search(str(found.get("photo") or ""))
            return SupplierRecipient(username, str(found.get("name") or username),
                                     photo.group(1) if photo else None, str(found["recipient"]))
        return await self._recipients.get(username.lower(), fetch)

    async def purchase(self, order_id: str, recipient: str, quantity: int,
                       quote: SupplierQuote) -> SupplierOrder:
        """Start the purchase and get the transfer to make. Nothing is bought until that
        transfer arrives at Fragment: an unpaid request lapses on its own."""
        found = await self.lookup(recipient)
        init = await self._call("initBuyStarsRequest", recipient=found.ref, quantity=quantity,
                                ref=order_id)
        req_id = init.get("req_id")
        if not req_id:
            raise SupplierError("Fragment's initBuyStarsRequest answered without a req_id",
                                retryable=True, code="bad_answer")
        self._refs[order_id] = str(req_id)
        payment = await self._payment(str(req_id))
        return SupplierOrder(order_id, "pending_payment", str(req_id), payment)

    async def _payment(self, req_id: str) -> SupplierPayment:
        link = await self._call("getBuyStarsLink", id=req_id, transaction=1, show_sender=0)
        transaction = link.get("transaction")
        messages = transaction.get("messages") if isinstance(transaction, dict) else None
        if not isinstance(messages, list) or len(messages) != 1 or not isinstance(messages[0], dict):
            raise SupplierError("Fragment's getBuyStarsLink did not answer with one message to pay",
                                retryable=True, code="bad_answer")
        message = messages[0]
        try:
            amount = int(str(message["amount"]))
            comment = comment_from_boc(str(message["payload"])) if message.get("payload") else None
        except (KeyError, ValueError) as exc:
            raise SupplierError(f"Fragment's payment message is malformed ({exc})", retryable=True,
                                code="bad_answer") from None
        return SupplierPayment(str(message.get("address")), amount, comment)

    async def status(self, order_id: str, ref: str | None = None) -> SupplierOrder:
        req_id = ref or self._refs.get(order_id)
        if req_id is None:
            return SupplierOrder(order_id, "unknown")  # never started here: nothing paid
        answer = await self._call("updateStarsBuyState", Priority.CONFIRM, id=req_id, mode="new")
        status = _MODES.get(str(answer.get("mode")), "processing")
        if status == "pending_payment":
            # Not paid (or not seen yet): the transfer to make, should it need sending again.
            return SupplierOrder(order_id, status, req_id, await self._payment(req_id))
        failure = "Fragment's purchase request expired unpaid" if status == "failed" else None
        return SupplierOrder(order_id, status, req_id, failure=failure)

    async def balance(self) -> int | None:
        return None  # paid per purchase from the hot wallet: the signer's limits bound it
