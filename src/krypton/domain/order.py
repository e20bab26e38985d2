"""A Stars shop order: its states, the only transitions between them, and its ledger entries.

An order buys one product (`Product`): Telegram Stars (quantity = Stars) or Telegram Premium
(quantity = months: 3, 6 or 12).

created → awaiting_payment (its checkout invoice exists) → paid (the invoice is paid) →
fulfilling (a supplier is being paid) → delivered | failed → refunded. An invoice that
expires unpaid ends the order as expired: nothing to deliver, nothing to give back.

Pure: the clock, ids and amounts are arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from krypton.domain import ledger
from krypton.domain.errors import DomainError
from krypton.domain.transitions import move


class Product(StrEnum):
    STARS = "stars"  # quantity: Stars
    PREMIUM = "premium"  # quantity: months of Telegram Premium


# Telegram sells Premium for these periods only (Fragment's page and the Bot API's gifts).
PREMIUM_MONTHS = (3, 6, 12)
# giftPremiumSubscription's prices, fixed by the Bot API: star_count must be exactly this.
PREMIUM_GIFT_STARS = {3: 1000, 6: 1500, 12: 2500}


def parse_product(value: str) -> Product:
    try:
        return Product(value)
    except ValueError:
        raise DomainError(f"'{value}' is not a product: choose "
                          f"{' or '.join(repr(p.value) for p in Product)}.", field="product") from None


def check_quantity(product: Product, quantity: int, minimum: int, maximum: int) -> None:
    """A whole number of Stars within the shop's limits, or one of Premium's periods."""
    whole = isinstance(quantity, int) and not isinstance(quantity, bool)
    if product is Product.PREMIUM:
        if not whole or quantity not in PREMIUM_MONTHS:
            raise DomainError("Telegram Premium is sold for 3, 6 or 12 months: quantity is the "
                              "number of months.", field="quantity")
    elif not whole or not minimum <= quantity <= maximum:
        raise DomainError(f"Buy between {minimum} and {maximum} Stars, a whole number.",
                          field="quantity")


def describe(product: Product, quantity: int, *, brand: bool = True) -> str:
    """What the order buys, in words ("50 Telegram Stars", "Telegram Premium for 3 months";
    without `brand`: "50 Stars", "Premium for 3 months")."""
    telegram = "Telegram " if brand else ""
    if product is Product.PREMIUM:
        return f"{telegram}Premium for {quantity} months"
    return f"{quantity} {telegram}Stars"


class OrderStatus(StrEnum):
    CREATED = "created"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    FULFILLING = "fulfilling"
    DELIVERED = "delivered"
    FAILED = "failed"
    REFUNDED = "refunded"
    EXPIRED = "expired"


TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.CREATED: frozenset({OrderStatus.AWAITING_PAYMENT, OrderStatus.FAILED}),
    OrderStatus.AWAITING_PAYMENT: frozenset({OrderStatus.PAID, OrderStatus.EXPIRED}),
    # paid → failed: impossible before any supplier was asked (unknown username, no supplier).
    OrderStatus.PAID: frozenset({OrderStatus.FULFILLING, OrderStatus.FAILED}),
    OrderStatus.FULFILLING: frozenset({OrderStatus.DELIVERED, OrderStatus.FAILED}),
    OrderStatus.FAILED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
    # A payment after the invoice expired still pays it (paid late): deliver, or refund.
    OrderStatus.EXPIRED: frozenset({OrderStatus.PAID}),
}

TERMINAL = frozenset({OrderStatus.DELIVERED, OrderStatus.REFUNDED})

# Journal kinds. The supplier payment and the refund are the signer's kinds (it checks the
# entry's kind against the request's); the journal's unique (kind, reference = order id)
# makes each one at most once per order.
SUPPLIER_PAYMENT = "supplier_payment"
REFUND = "refund"
HOT_WALLET_RECEIVED = "shop_received"
SUPPLIER_VOID = "supplier_payment_void"
STARS_SPENT = "premium_gift"  # the bot's own Stars paid for a Premium gift


def hot_wallet(asset: str) -> str:
    """The platform's hot wallet (the signer's), as a ledger account."""
    return f"hot_wallet:{asset}"


def event_type(status: OrderStatus) -> str:
    return f"order.{status.value}"


EVENT_TYPES = frozenset(event_type(s) for s in OrderStatus) | {"order.attempt_failed"}


@dataclass(slots=True)
class Order:
    id: str
    buyer: str | None  # "tg:<user id>" | "ton:<raw address>"
    recipient: str  # a Telegram username, without "@"
    quantity: int
    status: OrderStatus
    invoice_id: str | None
    asset: str
    total: int  # cost + fee, smallest units of `asset`: what the payer pays
    fee: int
    created_at: datetime
    delivered_at: datetime | None = None
    failure: str | None = None
    refund_tx: str | None = None
    cost: int = 0
    supplier: str = ""
    supplier_ref: str | None = None
    supplier_request: str | None = None  # set once: the order is then committed to `supplier`
    supplier_amount: int | None = None
    attempts: int = 0
    payer_address: str | None = None
    refund_amount: int | None = None
    refund_request: str | None = None
    idempotency_key: str | None = None
    updated_at: datetime | None = None
    paid_at: datetime | None = None
    deadline_at: datetime | None = None
    next_attempt_at: datetime | None = None
    product: Product = Product.STARS
    changes: list[tuple[OrderStatus, OrderStatus]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.product = Product(self.product)  # storage hands back the plain string

    def to(self, target: OrderStatus) -> None:
        self.status = move(TRANSITIONS, self.status, target, "shop order", self.changes)

    def fail(self, reason: str) -> None:
        self.to(OrderStatus.FAILED)
        self.failure = reason[:500]

    @property
    def committed(self) -> bool:
        """A supplier payment was asked of the signer: only that supplier may deliver now."""
        return self.supplier_request is not None


def totals(cost: int, fee_bps: int) -> tuple[int, int]:
    """(total, fee) for a supplier cost: the total the payer pays, and the fee the collector
    keeps of it. The contract takes floor(total * bps / 10000) and forwards the rest, so the
    total is the smallest one whose forwarded part still covers the cost."""
    if cost <= 0:
        raise ValueError("a cost is a positive integer of the asset's smallest unit")
    if not 0 <= fee_bps < 10_000:
        raise ValueError("fee_bps is between 0 and 9999")
    total = -(-cost * 10_000 // (10_000 - fee_bps))  # ceil: never short of the cost
    while total - 1 - (total - 1) * fee_bps // 10_000 >= cost:  # floor may allow one less
        total -= 1
    return total, total * fee_bps // 10_000


def forwarded(total: int, fee_bps: int) -> int:
    """What the fee collector forwards of a payment of `total` (the rest is its fee)."""
    return total - total * fee_bps // 10_000


def received(order_id: str, merchant_id: str, asset: str, on_chain: int,
             in_balance: int) -> ledger.JournalEntry:
    """The order's cost reaches the hot wallet: `on_chain` forwarded by the fee collector
    (it left the books as external), `in_balance` settled to the shop merchant's balance
    where the shop has no active collector (the platform's receiving address holds it)."""
    postings = [ledger.Posting(hot_wallet(asset), asset, on_chain + in_balance)]
    if on_chain:
        postings.append(ledger.Posting(ledger.external(asset), asset, -on_chain))
    if in_balance:
        postings.append(ledger.Posting(ledger.merchant_account(merchant_id, asset), asset, -in_balance))
    return ledger.JournalEntry(HOT_WALLET_RECEIVED, order_id, tuple(postings))


def supplier_paid(order_id: str, asset: str, amount: int) -> ledger.JournalEntry:
    """The hot wallet pays the supplier: what the signer's ledger check reads."""
    return ledger.JournalEntry(SUPPLIER_PAYMENT, order_id, (
        ledger.Posting(hot_wallet(asset), asset, -amount),
        ledger.Posting(ledger.external(asset), asset, amount)))


def supplier_void(order_id: str, asset: str, amount: int) -> ledger.JournalEntry:
    """A supplier payment the signer never sent (refused, bounced): back to the hot wallet."""
    return ledger.JournalEntry(SUPPLIER_VOID, order_id, (
        ledger.Posting(ledger.external(asset), asset, -amount),
        ledger.Posting(hot_wallet(asset), asset, amount)))


def refund_amount(total: int, network_fee: int) -> int:
    """What goes back to the payer: everything paid but the network fee of sending it."""
    return max(total - network_fee, 0)


def refunded(order_id: str, asset: str, amount: int) -> ledger.JournalEntry:
    """The hot wallet gives the payer back `amount` (its own reserve pays what the fee collector
    keeps: the fee is the platform's, returned because it did not deliver)."""
    return ledger.JournalEntry(REFUND, order_id, (
        ledger.Posting(hot_wallet(asset), asset, -amount),
        ledger.Posting(ledger.external(asset), asset, amount)))


def stars_spent(order_id: str, stars: int) -> ledger.JournalEntry:
    """The bot's Stars balance pays a Premium gift (Bot API giftPremiumSubscription). The
    platform's own Stars in that balance are `owner:XTR` (fee sweeps of Stars end there): the
    gift is paid from them, never from a merchant's Stars held in the same balance."""
    return ledger.JournalEntry(STARS_SPENT, order_id, (
        ledger.Posting(ledger.owner("XTR"), "XTR", -stars),
        ledger.Posting(ledger.external("XTR"), "XTR", stars)))
