"""Fragment (fragment.com) as a Stars supplier: Stars, and Telegram Premium (3, 6 or 12
months), for a Telegram username, paid in TON from the platform's hot wallet through the
signer. Fragment answers a purchase with the TON transfer to make (address, amount,
payload); the shop's signer signs it. Fragment never receives a key, a seed or a
mnemonic, only the session hash and cookie of the shop's account.

Fragment has no public API documentation: the calls are those of its web page, as the
open-source clients make them (README "Stars shop" names them and the fields relied on):
`POST /api?hash=…` with an application/x-www-form-urlencoded body (the page's own format;
the hash stays in the query string) holding `method=` and the call's fields. Stars:
searchStarsRecipient | updateStarsPrices | initBuyStarsRequest | getBuyStarsLink |
updateStarsBuyState. Premium: searchPremiumGiftRecipient (query, months) |
updatePremiumPrices (months) | initGiftPremiumRequest (recipient, months) |
getGiftPremiumLink | updatePremiumState. An answer with an "error" field is Fragment
refusing (HTTP 200): "No Telegram users found." means the username does not exist.
A Premium purchase's id is kept as "premium:<req_id>" so its status is asked of the right
method after a restart. Every call goes through the provider layer (rate limiter, breaker, endpoint
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
PREMIUM = "premium"
_PREMIUM_REF = "premium:"
# The calls of each product's page: (search, prices, init, link, state).
_METHODS = {
    "stars": ("searchStarsRecipient", "updateStarsPrices", "initBuyStarsRequest",
              "getBuyStarsLink", "updateStarsBuyState"),
    PREMIUM: ("searchPremiumGiftRecipient", "updatePremiumPrices", "initGiftPremiumRequest",
              "getGiftPremiumLink", "updatePremiumState"),
}
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
        self._prices: TtlCache[tuple[str, int], SupplierQuote] = TtlCache(PRICE_TTL, clock=clock)
        self._recipients: TtlCache[str, SupplierRecipient] = TtlCache(LOOKUP_TTL, clock=clock)
        # Premium's search answers its own recipient id, per username and period.
        self._gift_recipients: TtlCache[tuple[str, int], str] = TtlCache(LOOKUP_TTL, clock=clock)
        self._refs: dict[str, str] = {}  # order id -> req_id, for this process's purchases

    async def _call(self, method: str, priority: Priority = Priority.DISCOVERY,
                    **params: Any) -> dict[str, Any]:
        """One call; `priority` CONFIRM for the state of purchases already paid (their
        delivery is what payers wait for), served first when the rate limit is the queue."""
        form = {"method": method, **{k: str(v) for k, v in params.items()}}
        try:
            answer = await self._provider.post_form("/api", params={"hash": self._hash}, data=form,
                                                    priority=priority)
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

    async def quote(self, quantity: int, product: str = "stars") -> SupplierQuote:
        async def fetch() -> SupplierQuote:
            if product == PREMIUM:
                answer = await self._call(_METHODS[PREMIUM][1], months=quantity)
            else:
                answer = await self._call("updateStarsPrices", stars="", quantity=quantity)
            cost = nanoton(answer.get("cur_price"))
            return SupplierQuote(NAME, quantity, "TON", cost, cost, product=product)
        _methods(product)
        return await self._prices.get((product, quantity), fetch)

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
        product = quote.product
        _, _, init_method, _, _ = _methods(product)
        if product == PREMIUM:
            target = await self._gift_recipient(recipient, quantity)
            init = await self._call(init_method, recipient=target, months=quantity, ref=order_id)
        else:
            found = await self.lookup(recipient)
            init = await self._call(init_method, recipient=found.ref, quantity=quantity,
                                    ref=order_id)
        req_id = init.get("req_id")
        if not req_id:
            raise SupplierError(f"Fragment's {init_method} answered without a req_id",
                                retryable=True, code="bad_answer")
        ref = f"{_PREMIUM_REF}{req_id}" if product == PREMIUM else str(req_id)
        self._refs[order_id] = ref
        payment = await self._payment(ref)
        return SupplierOrder(order_id, "pending_payment", ref, payment)

    async def _gift_recipient(self, username: str, months: int) -> str:
        """Premium's own search (it answers its recipient id for the period asked)."""
        async def fetch() -> str:
            answer = await self._call(_METHODS[PREMIUM][0], query=username, months=months)
            found = answer.get("found")
            if not isinstance(found, dict) or not found.get("recipient"):
                raise SupplierError("Fragment's Premium search answered without a recipient",
                                    retryable=True, code="bad_answer")
            return str(found["recipient"])
        return await self._gift_recipients.get((username.lower(), months), fetch)

    async def _payment(self, ref: str) -> SupplierPayment:
        req_id, link_method = _split(ref)[0], _methods(_split(ref)[1])[3]
        # CONFIRM: a purchase already started is finished before new ones begin.
        link = await self._call(link_method, Priority.CONFIRM, id=req_id, transaction=1, show_sender=0)
        transaction = link.get("transaction")
        messages = transaction.get("messages") if isinstance(transaction, dict) else None
        if not isinstance(messages, list) or len(messages) != 1 or not isinstance(messages[0], dict):
            raise SupplierError(f"Fragment's {link_method} did not answer with one message to pay",
                                retryable=True, code="bad_answer")
        message = messages[0]
        try:
            amount = int(str(message["amount"]))
            comment = comment_from_boc(str(message["payload"])) if message.get("payload") else None
        except (KeyError, ValueError) as exc:
            raise SupplierError(f"Fragment's payment message is malformed ({exc})", retryable=True,
                                code="bad_answer") from None
        if message.get("payload") and comment is None:
            # Fragment finds its payment by this payload; the signer writes text comments only,
            # and a payment Fragment cannot find is money sent for nothing: never paid.
            raise SupplierError("Fragment asked for a payload that is not a text comment; the "
                                "signer cannot send it, so the purchase is not paid",
                                retryable=False, code="bad_answer")
        return SupplierPayment(str(message.get("address")), amount, comment)

    async def status(self, order_id: str, ref: str | None = None) -> SupplierOrder:
        known = ref or self._refs.get(order_id)
        if known is None:
            return SupplierOrder(order_id, "unknown")  # never started here: nothing paid
        req_id, product = _split(known)
        answer = await self._call(_methods(product)[4], Priority.CONFIRM, id=req_id, mode="new")
        status = _MODES.get(str(answer.get("mode")), "processing")
        if status == "pending_payment":
            # Not paid (or not seen yet): the transfer to make, should it need sending again.
            return SupplierOrder(order_id, status, known, await self._payment(known))
        failure = "Fragment's purchase request expired unpaid" if status == "failed" else None
        return SupplierOrder(order_id, status, known, failure=failure)

    async def balance(self) -> int | None:
        return None  # paid per purchase from the hot wallet: the signer's limits bound it


def _methods(product: str) -> tuple[str, str, str, str, str]:
    methods = _METHODS.get(product)
    if methods is None:
        raise SupplierError(f"Fragment does not sell '{product}'", retryable=False,
                            code="unsupported_product")
    return methods


def _split(ref: str) -> tuple[str, str]:
    """(req_id, product) of a purchase id as this module keeps it."""
    if ref.startswith(_PREMIUM_REF):
        return ref.removeprefix(_PREMIUM_REF), PREMIUM
    return ref, "stars"
