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

from krypton.app import collectors, invoices
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
    TelegramUsers,
    UnitOfWork,
)
from krypton.domain import events, money
from krypton.domain.assets import TON
from krypton.domain.collector import CollectorStatus
from krypton.domain.errors import Conflict, DomainError, NotFound
from krypton.domain.merchant import Merchant
from krypton.domain.order import (
    PREMIUM_MONTHS,
    Order,
    OrderStatus,
    Product,
    check_quantity,
    describe,
    event_type,
    parse_product,
    totals,
)

__all__ = ["Limits", "Order", "OrderBook", "OrderStatus", "Product", "Quote", "Recipient", "ShopKit",
           "ShopUnavailable", "check_quantity", "create_order", "get_order", "limits",
           "lookup_recipient", "orders_of", "quote", "remember_user"]

MERCHANT_NAME = "Krypton Stars shop"
# The shop merchant's claim: a platform-wide unique key (idempotency_keys' primary key, under
# an owner no merchant id can be) naming the one shop merchant.
SHOP_CLAIM = ("platform", "shop_merchant")
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
    product: Product = Product.STARS  # quantity: Stars, or months of Premium


@dataclass(frozen=True, slots=True)
class Limits:
    minimum: int
    maximum: int
    presets: tuple[int, ...]
    premium_months: tuple[int, ...] = PREMIUM_MONTHS  # Premium's periods


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
    users: TelegramUsers | None = None  # usernames the bot met (Premium gifts need the id)
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
    async with kit._merchant_lock:  # one first use at a time in this process
        if kit.merchant_id is None:
            merchant_id = await _claimed_merchant(deps, kit)
            try:
                await _collector(deps, kit, merchant_id)
            except DomainError:
                raise
            except Exception:
                # Two processes preparing the collector at once: the second's insert clashes
                # with the first's (a database error); once more, it finds that one and keeps it.
                await _collector(deps, kit, merchant_id)
            kit.merchant_id = merchant_id
    return kit.merchant_id


async def _claimed_merchant(deps: Deps, kit: ShopKit) -> str:
    """Find or create the shop's merchant, claimed under one platform-wide unique key in
    the same transaction: of two processes (API and worker) creating it at once, one
    commits and the other's insert of the claim clashes, rolling its merchant back; it then
    reads the winner's claim."""
    for _ in range(3):
        try:
            async with deps.uow() as uow:  # write: on SQLite the write lock is taken up front
                claimed = await uow.idempotency.get(*SHOP_CLAIM)
                if claimed is not None:
                    return str(claimed[1]["merchant_id"])
                now = deps.clock.now()
                # A shop made before the claim existed is found by name (the oldest) and claimed.
                found = [m for m in await uow.merchants.list() if m.name == MERCHANT_NAME]
                merchant = found[0] if found else await _new_merchant(deps, kit, uow, now)
                await uow.idempotency.save(*SHOP_CLAIM, "", {"merchant_id": merchant.id}, now)
                await uow.commit()
                return merchant.id
        except IdempotencyClash:
            continue  # another process claimed it first: read its claim
    raise Conflict("The Stars shop's merchant is being created by another process; retry shortly.")


async def _new_merchant(deps: Deps, kit: ShopKit, uow: UnitOfWork, now: datetime) -> Merchant:
    # No API key: the shop is the platform's own merchant, driven from inside (app/shop.py,
    # app/fulfilment.py); a key nobody holds would only be something to leak.
    merchant = Merchant(deps.ids.new("mer"), MERCHANT_NAME, fee_bps=kit.fee_bps, methods=("ton",))
    await uow.merchants.add(merchant, now)
    await uow.events.append(events.Event(events.MERCHANT_CREATED, merchant.id, merchant.id, {
        "name": merchant.name, "fee_bps": merchant.fee_bps}), now)
    return merchant


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


async def best_quotes(kit: ShopKit, quantity: int, product: str = Product.STARS.value,
                      recipient: str | None = None) -> list[SupplierQuote]:
    """Every supplier's quote, asked in parallel, cheapest first; the unavailable left out
    (with `recipient`: also those that cannot reach that username, e.g. a Premium gift to a
    user the bot never met)."""
    suppliers = list(kit.suppliers)
    if recipient is not None:
        found = await asyncio.gather(*(s.lookup(recipient) for s in suppliers), return_exceptions=True)
        suppliers = [s for s, f in zip(suppliers, found, strict=True) if isinstance(f, SupplierRecipient)]
    # Stars are asked as before the products existed: a supplier written for Stars only
    # (quote(quantity)) keeps working.
    asks = (s.quote(quantity) if product == Product.STARS.value else s.quote(quantity, product)
            for s in suppliers)
    results = await asyncio.gather(*asks, return_exceptions=True)
    quotes = [r for r in results if isinstance(r, SupplierQuote)]
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, Exception):
            raise r
    return sorted(quotes, key=lambda q: (q.cost_ton, q.supplier))


async def quote(deps: Deps, kit: ShopKit, quantity: int, asset: str = "TON",
                product: str = Product.STARS.value, recipient: str | None = None) -> Quote:
    """The price of `quantity` Stars (or months of Premium) now, fee included: what an order
    made now would cost (for `recipient`: from the suppliers that can reach them)."""
    kind = parse_product(product)
    _check_quantity(kit, quantity, kind)
    if asset != TON.code:
        raise DomainError(f"The Stars shop is paid in TON for now, not {asset}.", field="asset")
    quotes = await best_quotes(kit, quantity, kind.value, recipient)
    if not quotes:
        who = "No Stars supplier" if kind is Product.STARS else \
            f"No supplier of {describe(kind, quantity)}"
        raise ShopUnavailable(f"{who} can quote right now; try again in a minute.")
    best = quotes[0]
    total, fee = totals(best.cost_ton, kit.fee_bps)
    return Quote(quantity, best.cost_ton, fee, total, asset, best.supplier,
                 deps.clock.now() + kit.quote_ttl, kind)


def _check_quantity(kit: ShopKit, quantity: int, product: Product = Product.STARS) -> None:
    check_quantity(product, quantity, kit.minimum, kit.maximum)


async def remember_user(deps: Deps, kit: ShopKit, username: str | None, user_id: int) -> None:
    """The bot met a Telegram user (a Mini-App sign-in): keep their username's id, which a
    Premium gift needs. A user without a username, or a shop without the store, is skipped."""
    if kit.users is None or not username or not _USERNAME.fullmatch(username):
        return
    await kit.users.remember(username.lower(), user_id, deps.clock.now())


async def create_order(deps: Deps, kit: ShopKit, *, buyer: str | None, recipient: str,
                       quantity: int, asset: str = "TON",
                       idempotency_key: str | None = None,
                       product: str = Product.STARS.value) -> Order:
    """An order for `quantity` Stars (or months of Premium) to `recipient`, with its checkout
    invoice (the payer pays `order.total` on /pay/{order.invoice_id}). The same idempotency
    key (per buyer) answers with the same order."""
    if buyer is not None:
        check_buyer(buyer)
    kind = parse_product(product)
    name = normalise_username(recipient)
    _check_quantity(kit, quantity, kind)
    key = f"{buyer or 'anonymous'}:{idempotency_key}" if idempotency_key else None
    if key is not None and (same := await _replay(deps, kit, key, name, quantity, kind)) is not None:
        return same
    await _lookup(kit, name)  # an unknown username is refused before anyone pays
    # Priced by the suppliers that can reach this recipient: the order never counts on a
    # cheaper one that could not deliver to them.
    priced = await quote(deps, kit, quantity, asset, kind.value, recipient=name)
    what = describe(kind, quantity)
    merchant_id = await shop_merchant(deps, kit)
    order_id = deps.ids.new("ord")
    request = invoices.InvoiceRequest(
        amount=money.format_units(priced.total, TON.decimals), currency=TON.code, methods=["ton"],
        order_id=order_id, description=f"{what} for @{name}",
        metadata={"shop_order": order_id, "recipient": name, "quantity": quantity,
                  "product": kind.value},
        redirect_url=kit.order_url(order_id) if kit.order_url is not None else None,
        expires_in=max(60, int(kit.quote_ttl.total_seconds())))
    created = await invoices.create_invoice(deps, merchant_id, request, view=lambda i: {"id": i.id})
    now = deps.clock.now()
    order = Order(order_id, buyer, name, quantity, OrderStatus.CREATED, created.view["id"],
                  asset, priced.total, priced.fee, now, cost=priced.cost, supplier=priced.supplier,
                  idempotency_key=key, updated_at=now, product=kind)
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
        same = await _replay(deps, kit, key, name, quantity, kind)
        if same is None:
            raise Conflict("An order with this Idempotency-Key is being created; retry shortly.") from None
        return same
    return order


async def _replay(deps: Deps, kit: ShopKit, key: str, name: str, quantity: int,
                  product: Product = Product.STARS) -> Order | None:
    async with deps.uow(write=False) as uow:
        same = await kit.books(uow).by_idempotency_key(key)
    if same is not None and (same.recipient, same.quantity, same.product) != (name, quantity, product):
        raise Conflict("This Idempotency-Key was used for another order (another recipient, "
                       "product or quantity).", field="idempotency_key", code="idempotency_key_reused")
    return same


def order_event(merchant_id: str | None, order: Order, type_: str) -> events.Event:
    return events.Event(type_, merchant_id, order.id, {
        "status": order.status.value, "invoice_id": order.invoice_id, "buyer": order.buyer,
        "recipient": order.recipient, "product": order.product.value, "quantity": order.quantity,
        "asset": order.asset,
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
