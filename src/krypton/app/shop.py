"""The Stars shop: a person pays cost + fee in TON and receives Telegram Stars at once.

The shop is a merchant of the platform's own. Its fee-collector contract's destination is
the signer's hot wallet: a paid order's cost is forwarded there instantly and the fee stays
in the contract (seed 001). app/fulfilment.py then pays a supplier from the hot wallet.

This module holds what a buyer does (limits, recipient lookup, quotes, orders and their
history); the web pages and the REST API call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from krypton.app import collectors, invoices, merchants
from krypton.app.deps import Deps
from krypton.app.ports import (
    CollectorChain,
    CollectorPlan,
    IdempotencyClash,
    PaymentSender,
    Signer,
    StarsSupplier,
    SupplierError,
    SupplierQuote,
    SupplierRecipient,
    UnitOfWork,
)
from krypton.domain import events, money
from krypton.domain.assets import TON
from krypton.domain.collector import CollectorStatus
from krypton.domain.errors import Conflict, DomainError, NotFound
from krypton.domain.order import Order, OrderStatus, event_type, totals

__all__ = ["Limits", "Order", "OrderBook", "OrderStatus", "Quote", "Recipient", "ShopKit",
           "ShopUnavailable", "create_order", "get_order", "limits", "lookup_recipient",
           "orders_of", "quote"]

MERCHANT_NAME = "Krypton Stars shop"
MAX_PAGE = 100
# Telegram usernames: 5 to 32 of letters, digits and underscores (4 for some collectible ones).
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_BUYER = re.compile(r"(tg:[1-9][0-9]{0,19}|ton:-?[0-9]{1,3}:[0-9a-f]{64})")


class ShopUnavailable(DomainError):
    """No supplier can quote or look up now: a temporary state, worth retrying."""

    code = "shop_unavailable"


@dataclass(frozen=True, slots=True)
class Recipient:
    username: str
    name: str
    photo_url: str | None


@dataclass(frozen=True, slots=True)
class Quote:
    quantity: int
    cost: int  # what the supplier is paid, nanoton
    fee: int  # the shop's fee, kept by the fee collector
    total: int  # cost + fee: what the payer pays
    asset: str
    supplier: str  # the cheapest available supplier now
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Limits:
    minimum: int
    maximum: int
    presets: tuple[int, ...]


class OrderBook(Protocol):
    """Where orders are kept (table shop_orders), in the unit of work's transaction."""

    async def add(self, order: Order) -> None:
        """Raises IdempotencyClash when another order holds its idempotency key."""
    async def save(self, order: Order) -> None: ...
    async def get(self, order_id: str, *, lock: bool = False) -> Order | None: ...
    async def by_invoice(self, invoice_id: str, *, lock: bool = False) -> Order | None: ...
    async def by_idempotency_key(self, key: str) -> Order | None: ...
    async def due(self, now: datetime, limit: int) -> list[str]: ...
    async def of_buyer(self, buyer: str, limit: int,
                       starting_after: str | None) -> tuple[list[Order], bool]: ...
    async def entry_id(self, kind: str, reference: str) -> int | None: ...


@dataclass
class ShopKit:
    """What the shop needs besides Deps; built by Container.shop()."""

    suppliers: Sequence[StarsSupplier]
    books: Callable[[UnitOfWork], OrderBook]
    signer: Signer | None  # the hot-wallet signer; None: paid orders wait for it
    hot_wallet: str | None  # the signer's address: the shop collector's destination
    senders: PaymentSender | None = None  # where a payment came from: refunds go there
    fee_bps: int = 100
    quote_ttl: timedelta = timedelta(minutes=5)
    deadline: timedelta = timedelta(minutes=15)
    retry_after: timedelta = timedelta(seconds=5)  # after a failed attempt (backs off)
    follow_after: timedelta = timedelta(seconds=2)  # a paid supplier's status, asked again
    network_fee: int = 10_000_000  # nanoton kept from a refund for sending it
    minimum: int = 50
    maximum: int = 1_000_000
    presets: tuple[int, ...] = (50, 100, 250, 500, 1_000, 2_500)
    # A supplier's price may rise this much (basis points of the cost) between the quote and
    # the purchase and still be paid: the hot wallet absorbs it rather than refund.
    price_tolerance_bps: int = 100
    collector_chain: CollectorChain | None = None  # activates the shop's collector
    deploy: Callable[[CollectorPlan], Awaitable[None]] | None = None  # devnet: deploys it
    # The order's page, where the checkout sends the payer back once paid (order id → URL).
    order_url: Callable[[str], str] | None = None
    merchant_id: str | None = None  # found or created on first use
    _merchant_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def normalise_username(username: str) -> str:
    name = username.strip().removeprefix("@")
    if name.startswith("https://t.me/"):
        name = name.removeprefix("https://t.me/")
    if not _USERNAME.fullmatch(name):
        raise DomainError(f"'{username}' is not a Telegram username: 4 to 32 letters, digits or "
                          "underscores, starting with a letter.", field="recipient")
    return name.lower()


def check_buyer(buyer: str) -> str:
    if not _BUYER.fullmatch(buyer):
        raise DomainError("A buyer is 'tg:<Telegram user id>' or 'ton:<raw TON address>'.",
                          field="buyer")
    return buyer


async def shop_merchant(deps: Deps, kit: ShopKit) -> str:
    """The shop's merchant id: found by name, else created with the shop's fee; its fee
    collector (destination: the hot wallet) prepared, deployed where the kit can (devnet)
    and activated once the chain shows it."""
    if kit.merchant_id is not None:
        return kit.merchant_id
    async with kit._merchant_lock:
        if kit.merchant_id is None:
            async with deps.uow(write=False) as uow:
                found = [m for m in await uow.merchants.list() if m.name == MERCHANT_NAME]
            if found:
                merchant_id = found[0].id
            else:
                merchant, _ = await merchants.create_merchant(deps, name=MERCHANT_NAME,
                                                              fee_bps=kit.fee_bps, methods=["ton"])
                merchant_id = merchant.id
            await _collector(deps, kit, merchant_id)
            kit.merchant_id = merchant_id
    return kit.merchant_id


async def _collector(deps: Deps, kit: ShopKit, merchant_id: str) -> None:
    if kit.hot_wallet is None:
        return
    collector, plan = await collectors.prepare(deps, merchant_id, destination=kit.hot_wallet,
                                               min_withdrawal=0)
    if collector.status is CollectorStatus.ACTIVE or kit.collector_chain is None:
        return
    if kit.deploy is not None:
        await kit.deploy(plan)
    with contextlib.suppress(DomainError):  # not on chain yet: the chain loop activates it
        await collectors.activate(deps, kit.collector_chain, merchant_id)


async def limits(deps: Deps, kit: ShopKit) -> Limits:
    presets = tuple(p for p in kit.presets if kit.minimum <= p <= kit.maximum)
    return Limits(kit.minimum, kit.maximum, presets)


async def lookup_recipient(deps: Deps, kit: ShopKit, username: str) -> Recipient:
    """The Telegram user behind `username`, as the suppliers see it (name and photo to show
    before paying). NotFound when every supplier that answered says there is none."""
    found = await _lookup(kit, normalise_username(username))
    return Recipient(found.username, found.name, found.photo_url)


async def _lookup(kit: ShopKit, name: str) -> SupplierRecipient:
    results = await asyncio.gather(*(s.lookup(name) for s in kit.suppliers), return_exceptions=True)
    missing = False
    for result in results:
        if isinstance(result, SupplierRecipient):
            return result
        if isinstance(result, SupplierError) and not result.retryable:
            missing = True
        elif isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
    if missing:
        raise NotFound(f"Telegram has no user @{name}: check the username.", field="recipient")
    raise ShopUnavailable("No Stars supplier can be reached right now; try again in a minute.")


async def best_quotes(kit: ShopKit, quantity: int) -> list[SupplierQuote]:
    """Every supplier's quote, asked in parallel, cheapest first; the unavailable left out."""
    results = await asyncio.gather(*(s.quote(quantity) for s in kit.suppliers), return_exceptions=True)
    quotes = [r for r in results if isinstance(r, SupplierQuote)]
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, Exception):
            raise r
    return sorted(quotes, key=lambda q: (q.cost_ton, q.supplier))


async def quote(deps: Deps, kit: ShopKit, quantity: int, asset: str = "TON") -> Quote:
    """The price of `quantity` Stars now, fee included: what an order made now would cost."""
    _check_quantity(kit, quantity)
    if asset != TON.code:
        raise DomainError(f"The Stars shop is paid in TON for now, not {asset}.", field="asset")
    quotes = await best_quotes(kit, quantity)
    if not quotes:
        raise ShopUnavailable("No Stars supplier can quote right now; try again in a minute.")
    best = quotes[0]
    total, fee = totals(best.cost_ton, kit.fee_bps)
    return Quote(quantity, best.cost_ton, fee, total, asset, best.supplier,
                 deps.clock.now() + kit.quote_ttl)


def _check_quantity(kit: ShopKit, quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) \
            or not kit.minimum <= quantity <= kit.maximum:
        raise DomainError(f"Buy between {kit.minimum} and {kit.maximum} Stars, a whole number.",
                          field="quantity")


async def create_order(deps: Deps, kit: ShopKit, *, buyer: str | None, recipient: str,
                       quantity: int, asset: str = "TON",
                       idempotency_key: str | None = None) -> Order:
    """An order for `quantity` Stars to `recipient`, with its checkout invoice (the payer
    pays `order.total` on /pay/{order.invoice_id}). The same idempotency key (per buyer)
    answers with the same order."""
    if buyer is not None:
        check_buyer(buyer)
    name = normalise_username(recipient)
    _check_quantity(kit, quantity)
    key = f"{buyer or 'anonymous'}:{idempotency_key}" if idempotency_key else None
    if key is not None and (same := await _replay(deps, kit, key, name, quantity)) is not None:
        return same
    await _lookup(kit, name)  # an unknown username is refused before anyone pays
    priced = await quote(deps, kit, quantity, asset)
    merchant_id = await shop_merchant(deps, kit)
    order_id = deps.ids.new("ord")
    request = invoices.InvoiceRequest(
        amount=money.format_units(priced.total, TON.decimals), currency=TON.code, methods=["ton"],
        order_id=order_id, description=f"{quantity} Telegram Stars for @{name}",
        metadata={"shop_order": order_id, "recipient": name, "quantity": quantity},
        redirect_url=kit.order_url(order_id) if kit.order_url is not None else None,
        expires_in=max(60, int(kit.quote_ttl.total_seconds())))
    created = await invoices.create_invoice(deps, merchant_id, request, view=lambda i: {"id": i.id})
    now = deps.clock.now()
    order = Order(order_id, buyer, name, quantity, OrderStatus.CREATED, created.view["id"],
                  asset, priced.total, priced.fee, now, cost=priced.cost, supplier=priced.supplier,
                  idempotency_key=key, updated_at=now)
    order.to(OrderStatus.AWAITING_PAYMENT)
    order.changes.insert(0, (OrderStatus.CREATED, OrderStatus.CREATED))  # order.created first
    try:
        async with deps.uow() as uow:
            await kit.books(uow).add(order)
            await record(uow, merchant_id, order, now)
            await uow.commit()
    except IdempotencyClash:
        # A twin request with the same key won: answer with its order (ours expires unpaid).
        assert key is not None
        same = await _replay(deps, kit, key, name, quantity)
        if same is None:
            raise Conflict("An order with this Idempotency-Key is being created; retry shortly.") from None
        return same
    return order


async def _replay(deps: Deps, kit: ShopKit, key: str, name: str, quantity: int) -> Order | None:
    async with deps.uow(write=False) as uow:
        same = await kit.books(uow).by_idempotency_key(key)
    if same is not None and (same.recipient, same.quantity) != (name, quantity):
        raise Conflict("This Idempotency-Key was used for another order (another recipient or "
                       "quantity).", field="idempotency_key", code="idempotency_key_reused")
    return same


def order_event(merchant_id: str | None, order: Order, type_: str) -> events.Event:
    return events.Event(type_, merchant_id, order.id, {
        "status": order.status.value, "invoice_id": order.invoice_id, "buyer": order.buyer,
        "recipient": order.recipient, "quantity": order.quantity, "asset": order.asset,
        "total": str(order.total), "fee": str(order.fee), "supplier": order.supplier or None,
        "failure": order.failure, "refund_tx": order.refund_tx})


async def record(uow: UnitOfWork, merchant_id: str | None, order: Order, now: datetime) -> None:
    """One event per status change the order went through, in the order's transaction."""
    for before, after in order.changes:
        event = order_event(merchant_id, order, event_type(after))
        event.data.update(status=after.value, previous_status=None if before is after else before.value)
        await uow.events.append(event, now)
    order.changes.clear()


async def get_order(deps: Deps, kit: ShopKit, order_id: str) -> Order:
    async with deps.uow(write=False) as uow:
        order = await kit.books(uow).get(order_id)
    if order is None:
        raise NotFound(f"No order '{order_id}'.", field="id")
    return order


async def orders_of(deps: Deps, kit: ShopKit, buyer: str, *, limit: int = 20,
                    starting_after: str | None = None) -> tuple[list[Order], bool]:
    """A buyer's orders, newest first, and whether more follow."""
    check_buyer(buyer)
    if not 1 <= limit <= MAX_PAGE:
        raise DomainError(f"limit must be between 1 and {MAX_PAGE}.", field="limit")
    async with deps.uow(write=False) as uow:
        return await kit.books(uow).of_buyer(buyer, limit, starting_after)
