"""The Stars shop's fulfilment orchestrator (seed 003): a paid order gets its Stars from the
cheapest supplier that can deliver, or its money back.

Two steps, run by the worker under the "shop" lease:

- `consume`: the event-log consumer "shop". The shop merchant's invoice.paid makes its
  order paid (with the cost the fee collector forwarded to the hot wallet booked), and an
  expired or cancelled invoice expires it; the position is stored in the same transaction.
- `fulfil_due`: every order with work to do. paid → fulfilling; quotes asked of every
  supplier in parallel, the cheapest used, the next one on failure. A supplier that wants
  TON gets it from the hot wallet through the signer.

Never pay a supplier twice: the order id is the supplier's idempotency key and the signer's
request id (one request id is signed once); the order is committed to one supplier (with
its ledger entry) in a transaction BEFORE the signer is asked, and from then on only that
supplier's status and the signer's are asked, never another purchase. A deadline passed
before any supplier was paid, or an impossible order (no such username), fails the order
and refunds the payer (to the paying wallet, less the network fee) through the signer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime

from krypton.app.deps import Deps
from krypton.app.ports import (
    SignerUnavailable,
    SignOutcome,
    SignRequest,
    StarsSupplier,
    SupplierError,
    SupplierOrder,
    SupplierPayment,
    SupplierQuote,
    UnitOfWork,
)
from krypton.app.shop import ShopKit, best_quotes, order_event, record, shop_merchant
from krypton.domain import events, ledger, money
from krypton.domain.assets import TON
from krypton.domain.invoice import InvoiceStatus
from krypton.domain.order import (
    REFUND,
    SUPPLIER_PAYMENT,
    Order,
    OrderStatus,
    received,
    refund_amount,
    refunded,
    supplier_paid,
    supplier_void,
)
from krypton.domain.payment import PaymentStatus

log = logging.getLogger(__name__)  # the app room logs through the standard library only

CONSUMER = "shop"
ATTEMPT_FAILED = "order.attempt_failed"
RECIPIENT_NOT_FOUND = "recipient_not_found"
REPLAYED = "replayed_request"  # the signer's refusal of a request id it signed before
PAID_EVENT = events.invoice_status_event(InvoiceStatus.PAID.value)
CLOSED_EVENTS = frozenset({events.invoice_status_event(InvoiceStatus.EXPIRED.value),
                           events.invoice_status_event(InvoiceStatus.CANCELLED.value)})
PARALLEL = 64  # orders advanced at once: each waits on suppliers and the signer, not the CPU


def _ton(units: int) -> str:
    return money.format_units(units, TON.decimals)


# --- the event-log consumer ---------------------------------------------------------------

async def consume(deps: Deps, kit: ShopKit, batch: int = 500) -> int:
    """Apply the next batch of events to the shop's orders; returns how many were read."""
    merchant_id = await shop_merchant(deps, kit)
    now = deps.clock.now()
    async with deps.uow() as uow:
        position = await uow.events.consumer_position(CONSUMER)
        # Only the shop's own invoices' events, found through the merchant's index: reading
        # every event of every merchant cost the API 7 % of its CPU under the invoice bench.
        stored = await uow.events.read(position, batch, merchant_id=merchant_id,
                                       types=(PAID_EVENT, *CLOSED_EVENTS))
        books = kit.books(uow)
        for event in stored:
            if event.type == PAID_EVENT:
                order = await books.by_invoice(event.subject_id, lock=True)
                if order is not None and order.status in (OrderStatus.AWAITING_PAYMENT,
                                                          OrderStatus.EXPIRED):
                    await _paid(uow, deps, kit, order, now)
                    await books.save(order)
                    await record(uow, merchant_id, order, now)
            elif event.type in CLOSED_EVENTS:
                order = await books.by_invoice(event.subject_id, lock=True)
                if order is not None and order.status is OrderStatus.AWAITING_PAYMENT:
                    order.to(OrderStatus.EXPIRED)
                    order.updated_at = now
                    await books.save(order)
                    await record(uow, merchant_id, order, now)
        if stored:
            await uow.events.set_consumer_position(CONSUMER, (stored[-1].txid, stored[-1].seq))
        await uow.commit()
    return len(stored)


async def _paid(work: UnitOfWork, deps: Deps, kit: ShopKit, order: Order, now: datetime) -> None:
    order.to(OrderStatus.PAID)
    order.paid_at = order.updated_at = order.next_attempt_at = now
    order.deadline_at = now + kit.deadline
    # What the fee collector forwarded to the hot wallet (the settlements' on-chain part),
    # and what settled to the shop's balance instead: the hot wallet pays the supplier.
    settled = await work.settlements.for_invoice(order.invoice_id or "")
    on_chain = sum(s.forwarded for s in settled)
    in_balance = sum(s.net for s in settled) - on_chain
    entry = received(order.id, order_merchant(kit), TON.code, on_chain, max(in_balance, 0))
    if (on_chain or in_balance > 0) and await kit.books(work).entry_id(entry.kind, order.id) is None:
        await work.ledger.post(entry, now)


def order_merchant(kit: ShopKit) -> str:
    assert kit.merchant_id is not None  # resolved by shop_merchant before any order exists
    return kit.merchant_id


# --- fulfilment ---------------------------------------------------------------------------

async def fulfil_due(deps: Deps, kit: ShopKit, limit: int = 4 * PARALLEL) -> int:
    """Advance the orders with work to do now, `limit` at a time, PARALLEL at once (those
    committed to a supplier first); returns how many were looked at."""
    async with deps.uow(write=False) as uow:
        due = await kit.books(uow).due(deps.clock.now(), limit)
    gate = asyncio.Semaphore(PARALLEL)

    async def one(order_id: str) -> None:
        async with gate:
            try:
                await advance(deps, kit, order_id)
            except Exception:  # one order's trouble must not stop the others
                log.exception("shop order %s failed to advance", order_id)
    await asyncio.gather(*(one(i) for i in due))
    return len(due)


async def run_round(deps: Deps, kit: ShopKit) -> int:
    """One round of the worker's "shop" job: the events, then the orders due."""
    read = 0
    while n := await consume(deps, kit):
        read += n
    return read + await fulfil_due(deps, kit)


async def advance(deps: Deps, kit: ShopKit, order_id: str) -> Order:
    """Take one order as far as it can go now."""
    async with deps.uow(write=False) as uow:
        order = await kit.books(uow).get(order_id)
    if order is None:
        raise LookupError(f"no order {order_id}")
    if order.status is OrderStatus.PAID:
        order.to(OrderStatus.FULFILLING)
        await _commit(deps, kit, order)
    if order.status is OrderStatus.FULFILLING:
        if order.committed:
            await _follow(deps, kit, order)
        else:
            await _fulfil(deps, kit, order)
    if order.status is OrderStatus.FAILED and order.refund_tx is None:
        await _refund(deps, kit, order)
    return order


async def _commit(deps: Deps, kit: ShopKit, order: Order, entries: Sequence[ledger.JournalEntry] = (),
                  extra: Sequence[events.Event] = ()) -> None:
    """Store the order with its events and ledger entries in one transaction."""
    now = deps.clock.now()
    order.updated_at = now
    merchant_id = await shop_merchant(deps, kit)
    async with deps.uow() as uow:
        books = kit.books(uow)
        await books.save(order)
        for entry in entries:
            if await books.entry_id(entry.kind, entry.reference) is None:  # once per order
                await uow.ledger.post(entry, now)
        await record(uow, merchant_id, order, now)
        for event in extra:
            await uow.events.append(event, now)
        await uow.commit()


def _later(deps: Deps, kit: ShopKit, order: Order) -> None:
    # Backs off with the attempts, up to a minute: a supplier that is down is not hammered.
    order.next_attempt_at = deps.clock.now() + kit.retry_after * min(2 ** min(order.attempts, 4), 12)


def _soon(deps: Deps, kit: ShopKit, order: Order) -> None:
    # A supplier paid or being paid: look again shortly, delivery is what the payer waits for.
    order.next_attempt_at = deps.clock.now() + kit.follow_after


def _supplier(kit: ShopKit, name: str) -> StarsSupplier | None:
    return next((s for s in kit.suppliers if s.name == name), None)


async def _fulfil(deps: Deps, kit: ShopKit, order: Order) -> None:
    """Buy from the cheapest supplier that can deliver; the next one when it cannot."""
    now = deps.clock.now()
    if order.deadline_at is not None and now >= order.deadline_at:
        order.fail(f"No supplier could deliver within {int(kit.deadline.total_seconds() // 60)} "
                   f"minutes ({order.failure or 'every supplier failed'}).")
        await _commit(deps, kit, order)
        return
    # The budget: what the order charged for the supplier, plus the tolerance the hot wallet
    # absorbs. A dearer supplier is never paid: the order is requoted to the next one.
    ceiling = order.cost + order.cost * kit.price_tolerance_bps // 10_000
    reasons: list[str] = []
    dearer = 0
    for offer in await best_quotes(kit, order.quantity):
        supplier = _supplier(kit, offer.supplier)
        if supplier is None:
            continue
        if offer.cost_ton > ceiling:
            dearer += 1
            reasons.append(f"{offer.supplier} now asks {_ton(offer.cost_ton)} TON, the order "
                           f"was priced at {_ton(order.cost)} TON")
            continue
        outcome = await _try(deps, kit, order, supplier, offer, ceiling)
        if outcome is None:
            return  # committed to this supplier, delivered, or failed for good
        if outcome.startswith("price:"):
            dearer += 1
            outcome = outcome.removeprefix("price:")
        reasons.append(outcome)
    if not reasons:
        reasons.append("no supplier could quote")
    order.attempts += 1
    order.failure = "; ".join(reasons)[:500]
    if dearer and dearer == len(reasons):
        order.fail(f"The price of {order.quantity} Stars rose after the order was made "
                   f"({order.failure}): the payment is given back.")
        await _commit(deps, kit, order)
        return
    _later(deps, kit, order)
    await _commit(deps, kit, order, extra=[_attempt_event(kit, order, reasons)])


def _attempt_event(kit: ShopKit, order: Order, reasons: list[str]) -> events.Event:
    event = order_event(kit.merchant_id, order, ATTEMPT_FAILED)
    event.data.update(attempt=order.attempts, reasons=reasons,
                      next_attempt_at=order.next_attempt_at.isoformat() if order.next_attempt_at else None)
    return event


async def _try(deps: Deps, kit: ShopKit, order: Order, supplier: StarsSupplier,
               offer: SupplierQuote, ceiling: int) -> str | None:
    """One supplier's attempt: None when the order moved on (committed, delivered or failed),
    else why this supplier could not (prefixed "price:" for a price rise)."""
    try:
        # Never pay twice: what does the supplier already know of this order?
        known = await supplier.status(order.id)
        purchase = known if known.status in ("pending_payment", "processing", "delivered") else \
            await supplier.purchase(order.id, order.recipient, order.quantity, offer)
    except SupplierError as exc:
        if exc.code == RECIPIENT_NOT_FOUND:
            order.fail(f"Telegram has no user @{order.recipient}, so the Stars cannot be delivered.")
            await _commit(deps, kit, order)
            return None
        return f"{supplier.name}: {exc.message}"
    if purchase.status == "failed":
        return f"{supplier.name}: {purchase.failure or 'the purchase failed'}"
    payment = purchase.payment
    if payment is not None and payment.amount > ceiling:
        return (f"price:{supplier.name} asked {_ton(payment.amount)} TON at purchase, the order "
                f"was priced at {_ton(order.cost)} TON")
    # Committed: from this transaction on, only this supplier may deliver the order.
    order.supplier, order.supplier_ref = supplier.name, purchase.ref
    order.supplier_request = order.id if payment is not None else f"{supplier.name}:{order.id}"
    order.supplier_amount = payment.amount if payment is not None else None
    order.attempts += 1
    entries = [supplier_paid(order.id, TON.code, payment.amount)] if payment is not None else []
    if purchase.status == "delivered":
        _deliver(deps, order)
    await _commit(deps, kit, order, entries)
    if payment is not None and order.status is OrderStatus.FULFILLING:
        await _pay(deps, kit, order, payment)
    return None


def _deliver(deps: Deps, order: Order) -> None:
    order.to(OrderStatus.DELIVERED)
    order.delivered_at = deps.clock.now()
    order.failure = None
    order.next_attempt_at = None


async def _pay(deps: Deps, kit: ShopKit, order: Order, payment: SupplierPayment) -> None:
    """Ask the signer to pay the supplier (request id = order id: signed at most once)."""
    async with deps.uow(write=False) as uow:
        entry_id = await kit.books(uow).entry_id(SUPPLIER_PAYMENT, order.id)
    assert entry_id is not None and order.supplier_amount is not None
    request = SignRequest(order.id, SUPPLIER_PAYMENT, TON.code, order.supplier_amount,
                          payment.address, "supplier", entry_id)
    outcome = await _sign(kit, request)
    if outcome is not None and outcome.status == "refused" and outcome.refusal != REPLAYED:
        # Never signed, never will be: release the commitment's money and give it back.
        order.fail(f"The signer refused to pay {order.supplier}: {outcome.reason}.")
        await _commit(deps, kit, order, [supplier_void(order.id, TON.code, order.supplier_amount)])
        return
    _soon(deps, kit, order)
    await _commit(deps, kit, order)


async def _sign(kit: ShopKit, request: SignRequest) -> SignOutcome | None:
    """The signer's outcome; None when it cannot be asked now (asked again next round)."""
    if kit.signer is None:
        return None
    try:
        [outcome] = await kit.signer.transfer([request])
    except SignerUnavailable as exc:
        log.warning("the signer is unavailable for %s: %s", request.request_id, exc)
        return None
    if outcome.status == "refused" and outcome.refusal == REPLAYED:
        try:
            return await kit.signer.status(request.request_id) or outcome
        except SignerUnavailable:
            return outcome
    return outcome


async def _follow(deps: Deps, kit: ShopKit, order: Order) -> None:
    """A committed order: ask its supplier, and the signer, how far it got; re-ask the
    signer for the same request when it never recorded it (a crash before recording)."""
    supplier = _supplier(kit, order.supplier)
    if supplier is None:
        log.error("shop order %s: its supplier %s is no longer configured", order.id, order.supplier)
        _later(deps, kit, order)
        await _commit(deps, kit, order)
        return
    try:
        known: SupplierOrder | None = await supplier.status(order.id, order.supplier_ref)
    except SupplierError:
        known = None
    if known is not None and known.status == "delivered":
        _deliver(deps, order)
        await _commit(deps, kit, order)
        return
    paid_by_us = order.supplier_request == order.id
    sent = await _signed(kit, order.id) if paid_by_us else None
    if known is not None and known.status == "failed":
        await _supplier_failed(deps, kit, order, known, sent)
        return
    if paid_by_us and sent is None and known is not None and known.payment is not None \
            and kit.signer is not None:
        await _pay(deps, kit, order, known.payment)  # same request id: never twice
        return
    if sent is not None and sent.status == "failed":
        order.fail(f"The payment to {order.supplier} failed on chain ({sent.reason or 'bounced'}).")
        await _commit(deps, kit, order, [supplier_void(order.id, TON.code, order.supplier_amount or 0)])
        return
    _soon(deps, kit, order)
    await _commit(deps, kit, order)


async def _signed(kit: ShopKit, request_id: str) -> SignOutcome | None:
    if kit.signer is None:
        return None
    try:
        return await kit.signer.status(request_id)
    except SignerUnavailable:
        return SignOutcome(request_id, "unknown")  # not "never recorded": do not re-send


async def _supplier_failed(deps: Deps, kit: ShopKit, order: Order, known: SupplierOrder,
                           sent: SignOutcome | None) -> None:
    why = known.failure or "the purchase failed"
    order.fail(f"{order.supplier} could not deliver: {why}.")
    never_sent = sent is None or sent.status in ("refused", "failed")
    void = [supplier_void(order.id, TON.code, order.supplier_amount)] \
        if never_sent and order.supplier_amount else []
    if not never_sent:
        # The supplier was paid and did not deliver: the payer is refunded all the same and
        # the supplier's money is to be recovered by hand (it stays on the supplier's books).
        log.error("shop order %s: %s failed after it was paid: recover by hand", order.id, order.supplier)
    await _commit(deps, kit, order, void)


# --- refunds ------------------------------------------------------------------------------

async def _refund(deps: Deps, kit: ShopKit, order: Order) -> None:
    """Give a failed order's payment back to the wallet it came from, less the network fee."""
    if order.refund_request is None:
        prepared = await _prepare_refund(deps, kit, order)
        if not prepared:
            return
    assert order.refund_request is not None and order.payer_address is not None
    async with deps.uow(write=False) as uow:
        entry_id = await kit.books(uow).entry_id(REFUND, order.id)
    if order.refund_amount == 0 or entry_id is None:  # nothing left once the fee is paid
        order.to(OrderStatus.REFUNDED)
        await _commit(deps, kit, order)
        return
    outcome = await _sign(kit, SignRequest(order.refund_request, REFUND, TON.code,
                                           order.refund_amount or 0, order.payer_address,
                                           "payer_wallet", entry_id))
    if outcome is None or outcome.status == "unknown":
        _later(deps, kit, order)
        await _commit(deps, kit, order)
    elif outcome.status in ("refused", "failed") and outcome.refusal != REPLAYED:
        # Needs a person (a limit, a bounce): the order stays failed, saying why.
        order.failure = f"{order.failure} The refund was not sent: {outcome.reason}."[:500]
        order.next_attempt_at = deps.clock.now() + kit.deadline
        await _commit(deps, kit, order)
    else:
        order.to(OrderStatus.REFUNDED)
        order.refund_tx = outcome.tx_hash or outcome.message_hash or order.refund_request
        order.next_attempt_at = None
        await _commit(deps, kit, order)


async def _prepare_refund(deps: Deps, kit: ShopKit, order: Order) -> bool:
    """Find the paying wallet and book the refund (its entry is what the signer checks)."""
    async with deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(order.invoice_id or "")
        payments = await uow.payments.for_invoice(order.invoice_id or "")
    confirmed = [p for p in payments if p.status is PaymentStatus.CONFIRMED]
    if invoice is None or not confirmed:
        log.error("shop order %s failed without a confirmed payment to refund", order.id)
        order.next_attempt_at = deps.clock.now() + kit.deadline
        await _commit(deps, kit, order)
        return False
    if order.payer_address is None and kit.senders is not None:
        order.payer_address = await kit.senders.sender_of(confirmed[0])
    if order.payer_address is None:
        _later(deps, kit, order)  # the chain has not said yet: ask again
        await _commit(deps, kit, order)
        return False
    paid = sum(p.amount for p in confirmed if p.asset == TON.code)
    order.refund_amount = refund_amount(paid, kit.network_fee)
    order.refund_request = f"{order.id}.refund"
    entries = [refunded(order.id, TON.code, order.refund_amount)] if order.refund_amount else []
    await _commit(deps, kit, order, entries)
    return True

