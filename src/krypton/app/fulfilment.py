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
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

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
from krypton.domain.assets import TON, XTR
from krypton.domain.invoice import InvoiceStatus
from krypton.domain.order import (
    REFUND,
    SUPPLIER_PAYMENT,
    Order,
    OrderStatus,
    describe,
    received,
    refund_amount,
    refunded,
    stars_spent,
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
# The signer's states of a payment signed and not yet in a block (SignOutcome.status).
_ON_ITS_WAY = frozenset({"recorded", "broadcast"})
PARALLEL = 64  # orders advanced at once: each waits on suppliers and the signer, not the CPU
# The pool looks for new events and due orders this often when nothing wakes it sooner (an
# order finishing wakes it at once); a step lasts SLICE_SECONDS, the lease asked in between.
POLL_SECONDS = 0.25
CONSUME_BATCH = 100  # events the pool's consumer reads at a time
# How soon the signer is asked again about a payment not yet in a block: it costs nothing at
# the supplier (one local call), and the supplier is asked only once it is in a block.
SIGNER_FOLLOW = timedelta(milliseconds=500)
SLICE_SECONDS = 1.0


def _ton(units: int) -> str:
    return money.format_units(units, TON.decimals)


# --- the event-log consumer ---------------------------------------------------------------

async def consume(deps: Deps, kit: ShopKit, batch: int = 500, *, peek: bool = False) -> int:
    """Apply the next batch of events to the shop's orders; returns how many were read.
    `peek`: look read-only first (the consumer's position must exist: a first consume made
    it), so that finding nothing new takes no write transaction (on SQLite, the write lock):
    the pool looks several times a second and mostly finds nothing."""
    merchant_id = await shop_merchant(deps, kit)
    if peek:
        async with deps.uow(write=False) as uow:
            position = await uow.events.consumer_position(CONSUMER)
            if not await uow.events.read(position, 1, merchant_id=merchant_id,
                                         types=(PAID_EVENT, *CLOSED_EVENTS)):
                return 0
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


class Pool:
    """The worker's "shop" job as a continuous pool: up to `parallel` orders advanced at once,
    the next due order started as soon as one's `advance` returns, and newly due orders (made
    paid by the event consumer, or their `next_attempt_at` reached) started without waiting
    for the others, unlike rounds, which waited for their slowest order.

    The worker's job runner calls `step` while this process holds the shop's lease (each
    step runs for at most `slice_seconds`, so the lease is asked again that often) and
    `stop` when the lease is lost or the worker stops: the orders in flight are then
    cancelled. Cancelling one is a crash mid-advance, which `advance` is built for (every
    step is idempotent and its state is in the database); another process may hold the lease
    next, so nothing of this process may go on advancing. An order is never advanced twice
    at once here (the in-flight set), and one order's exception stops no other: that order
    rests `error_rest` before it is tried again.
    """

    def __init__(self, deps: Deps, kit: ShopKit, *, parallel: int = PARALLEL,
                 poll_seconds: float = POLL_SECONDS, slice_seconds: float = SLICE_SECONDS,
                 error_rest: float | None = None) -> None:
        self.deps, self.kit = deps, kit
        self.parallel = parallel
        self.poll_seconds = poll_seconds
        self.slice_seconds = slice_seconds
        self.error_rest = kit.retry_after.total_seconds() if error_rest is None else error_rest
        self._flying: dict[str, asyncio.Task[None]] = {}
        self._resting: dict[str, float] = {}  # order id -> loop time it may start again
        self._wake = asyncio.Event()
        self._consumed_at = float("-inf")
        self._consumed = False  # a first consume made the consumer's position
        self.started = 0  # orders started since this pool was made (for tests and logs)
        self.looks = 0  # how often it asked the database for due orders

    @property
    def in_flight(self) -> frozenset[str]:
        return frozenset(self._flying)

    def poke(self) -> None:
        """Look for events and due orders now rather than at the next poll."""
        self._consumed_at = float("-inf")
        self._wake.set()

    async def step(self) -> int:
        """Run the pool for one slice; returns how many orders it started (the pool rests on
        its own: the runner need not rest between steps)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.slice_seconds
        started = 0
        while True:
            self._wake.clear()
            try:
                started += await self._fill(loop.time())
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away: the orders in flight go on, look again later
                log.exception("the shop's pool could not look for due orders")
                self._consumed_at = loop.time() + self.error_rest - self.poll_seconds
            left = end - loop.time()
            if left <= 0:
                return started
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(left, self._rest_for(loop.time())))

    async def stop(self) -> None:
        """Cancel the orders in flight and wait for them (the lease is lost or the worker is
        stopping: another process may take them over)."""
        tasks = list(self._flying.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._flying.clear()

    def _rest_for(self, now: float) -> float:
        # Until the next poll of the events and the due orders, or an order's rest ends
        # (that one matters only with a slot free: else a finishing order wakes the pool).
        until = self._consumed_at + self.poll_seconds
        ends = [t for t in self._resting.values() if t > now]
        if ends and len(self._flying) < self.parallel:
            until = min(until, min(ends))
        return max(until - now, 0.001)

    async def _fill(self, now: float) -> int:
        if now >= self._consumed_at + self.poll_seconds:
            self._consumed_at = now
            try:
                # One batch, then the due orders: in a burst the first orders start while
                # later events are still read (a full batch means more: read on at once).
                if await consume(self.deps, self.kit, CONSUME_BATCH, peek=self._consumed) == CONSUME_BATCH:
                    self.poke()
                self._consumed = True
            except Exception:  # the orders already due are still advanced meanwhile
                log.exception("the shop's event consumer failed")
                self._consumed_at = now + self.error_rest - self.poll_seconds
        self._resting = {i: t for i, t in self._resting.items() if t > now}
        free = self.parallel - len(self._flying)
        if free <= 0:
            return 0
        # The due ones include those in flight or resting (still due in the database): ask
        # for enough that `free` others are among them. Committed orders come first (due's
        # order): their delivery is what payers wait for.
        async with self.deps.uow(write=False) as uow:
            due = await self.kit.books(uow).due(self.deps.clock.now(),
                                                free + len(self._flying) + len(self._resting))
        self.looks += 1
        fresh = [i for i in due if i not in self._flying and i not in self._resting][:free]
        for order_id in fresh:
            self._flying[order_id] = asyncio.create_task(self._advance(order_id),
                                                         name=f"shop-order-{order_id}")
        self.started += len(fresh)
        return len(fresh)

    async def _advance(self, order_id: str) -> None:
        rest = 0.0
        try:
            order = await advance(self.deps, self.kit, order_id)
            if _still_due(order, self.deps.clock.now()):
                rest = self.poll_seconds  # nothing moved it on: not again at once
        except asyncio.CancelledError:
            raise
        except Exception:  # one order's trouble must not stop the others
            log.exception("shop order %s failed to advance", order_id)
            rest = self.error_rest
        finally:
            self._flying.pop(order_id, None)
            self._wake.set()  # a slot is free: the next due order starts now
        if rest:
            self._resting[order_id] = asyncio.get_running_loop().time() + rest


def _still_due(order: Order, now: datetime) -> bool:
    return order.status in (OrderStatus.PAID, OrderStatus.FULFILLING, OrderStatus.FAILED) \
        and (order.next_attempt_at is None or order.next_attempt_at <= now) \
        and not (order.status is OrderStatus.FAILED and order.refund_tx is not None)


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


def _soon(deps: Deps, kit: ShopKit, order: Order, after: timedelta | None = None) -> None:
    # A supplier paid or being paid: look again shortly, delivery is what the payer waits for.
    # By default: a payment through the signer is next looked at by asking the signer (it
    # costs the supplier nothing), so soon; a supplier's own state after `follow_after`.
    if after is None:
        after = min(SIGNER_FOLLOW, kit.follow_after) if order.supplier_request == order.id \
            else kit.follow_after
    order.next_attempt_at = deps.clock.now() + after


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
    for offer in await best_quotes(kit, order.quantity, order.product.value):
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
        what = describe(order.product, order.quantity, brand=False)
        order.fail(f"The price of {what} rose after the order was made "
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
    if offer.asset == XTR.code and purchase.status == "delivered":
        entries.append(stars_spent(order.id, offer.cost))  # the bot's own Stars paid the gift
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
                          payment.address, "supplier", entry_id, comment=payment.comment)
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
    paid_by_us = order.supplier_request == order.id
    sent = await _signed(kit, order.id) if paid_by_us else None
    if sent is not None and sent.status in _ON_ITS_WAY:
        # Our payment is not in a block yet: the supplier cannot have seen it, and asking
        # would spend its rate limit (the shop's bottleneck) for nothing. The signer, asked
        # first, costs nothing at the supplier.
        _soon(deps, kit, order)
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
    _soon(deps, kit, order, kit.follow_after)  # the supplier was asked: not again at once
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
    # The payer's address stored with the payment; the chain is asked only for a payment
    # recorded before Krypton kept it.
    order.payer_address = order.payer_address or confirmed[0].sender
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

