"""Refunds: giving a confirmed payment's money back to its payer.

A refund is recorded `pending` in one transaction (after checking that the merchant's
balance covers it), the rail is asked to pay it back outside any transaction, and the
outcome is recorded in a second one: `succeeded` with its ledger entry, the payment and
invoice moved to `refunded` and `refund.succeeded`; or `failed` with the rail's reason.

A crash between the two leaves a pending refund. Asking again (the same request, any
refund request for the invoice, or `resolve_pending` in the worker) repeats the rail call,
which never pays twice: Telegram refuses a second refund of a charge with
CHARGE_ALREADY_REFUNDED, which means our first call went through, so it counts as success.

Only Telegram Stars has a refund rail today; a chain payment is refused with 409 until
payouts (issue 17) add `_execute`'s chain branch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Protocol

from krypton.app.deps import Deps
from krypton.app.invoices import IdempotencyMismatch, save_invoice
from krypton.app.ports import IdempotencyClash, UnitOfWork
from krypton.app.stars_book import StarsBook, StarsBooks
from krypton.domain import events, ledger, money
from krypton.domain.assets import XTR
from krypton.domain.errors import Conflict, DomainError, NotFound
from krypton.domain.invoice import Invoice, InvoiceStatus
from krypton.domain.payment import Payment, PaymentStatus
from krypton.domain.refund import ACTIVE, REASON_MAX, Refund, RefundStatus, covers, split_debit

# Telegram's answer when the charge was refunded already: by our own earlier call.
ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"
# How old a pending refund must be before the worker takes it over from its request.
RESOLVE_AFTER = timedelta(minutes=1)


class RefundRefused(Exception):
    """The rail refused the refund for good (Telegram's 400 and its description)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RailUnavailable(DomainError):
    code = "rail_unavailable"


class StarsRefunder(Protocol):
    async def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        """Give a Stars payment back; RefundRefused if Telegram says no, another error if
        it could not be asked (then nothing is known: ask again later)."""


class PayerLookup(Protocol):
    async def payer_of(self, charge_id: str) -> int | None:
        """Who paid a charge, from Telegram's own history (getStarTransactions)."""


@dataclass(frozen=True, slots=True)
class RefundKit:
    books: StarsBooks
    bot: StarsRefunder | None
    payers: PayerLookup | None = None


@dataclass(frozen=True, slots=True)
class RefundRequest:
    amount: str | None = None
    reason: str | None = None
    payment_id: str | None = None

    def fingerprint(self, invoice_id: str) -> str:
        body = json.dumps({"invoice_id": invoice_id, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


async def refund_invoice(deps: Deps, kit: RefundKit, merchant_id: str, invoice_id: str,
                         req: RefundRequest, *, idempotency_key: str | None = None) -> Refund:
    """Refund the invoice's payment (the whole payment: Telegram refunds nothing less)."""
    fingerprint = req.fingerprint(invoice_id)
    if idempotency_key is not None:
        replay = await _by_key(deps, kit, merchant_id, idempotency_key, fingerprint)
        if replay is not None:
            return await _resume(deps, kit, replay)
    refund = await _create(deps, kit, merchant_id, invoice_id, req, idempotency_key, fingerprint)
    return await _resume(deps, kit, refund)


async def list_refunds(deps: Deps, kit: RefundKit, merchant_id: str, invoice_id: str) -> list[Refund]:
    async with deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(invoice_id)
        _owned(invoice, merchant_id, invoice_id)
        return await kit.books(uow).refunds_for_invoice(invoice_id)


async def resolve_pending(deps: Deps, kit: RefundKit, *, older_than: timedelta = RESOLVE_AFTER,
                          limit: int = 50) -> int:
    """Finish refunds left pending by a crash (the worker's job); how many were resolved."""
    async with deps.uow(write=False) as uow:
        stuck = await kit.books(uow).pending_refunds(deps.clock.now() - older_than, limit)
    done = 0
    for refund in stuck:
        try:
            resolved = await _resume(deps, kit, refund)
        except RailUnavailable:
            continue  # Telegram unreachable: the next round asks again
        done += resolved.status is not RefundStatus.PENDING
    return done


async def _by_key(deps: Deps, kit: RefundKit, merchant_id: str, key: str,
                  fingerprint: str) -> Refund | None:
    async with deps.uow(write=False) as uow:
        found = await kit.books(uow).refund_by_key(merchant_id, key)
    if found is None:
        return None
    refund, stored = found
    if stored != fingerprint:
        raise IdempotencyMismatch(
            "This Idempotency-Key was already used with a different refund request; use a new "
            "key for a new request.", field="Idempotency-Key")
    return refund


async def _create(deps: Deps, kit: RefundKit, merchant_id: str, invoice_id: str,
                  req: RefundRequest, key: str | None, fingerprint: str) -> Refund:
    reason = (req.reason or "").strip()[:REASON_MAX] or None
    now = deps.clock.now()
    async with deps.uow() as uow:
        book = kit.books(uow)
        invoice = await uow.invoices.get(invoice_id, for_update=True)
        invoice = _owned(invoice, merchant_id, invoice_id)
        payment = await _refundable(uow, book, invoice, req.payment_id)
        if isinstance(payment, Refund):  # one is already under way: finish it
            return payment
        _check_amount(req.amount, payment)
        await _check_balance(uow, book, payment, "")
        refund = Refund(id=deps.ids.new("ref"), merchant_id=merchant_id, invoice_id=invoice.id,
                        payment_id=payment.id, asset=payment.asset, amount=payment.amount,
                        reason=reason, created_at=now)
        try:
            await book.add_refund(refund, key, fingerprint if key is not None else None)
        except IdempotencyClash:  # the same Idempotency-Key raced us: answer with its refund
            clash = True
        else:
            clash = False
            await uow.events.append(_event(events.REFUND_CREATED, refund), now)
            await uow.commit()
    if clash:
        assert key is not None
        replay = await _by_key(deps, kit, merchant_id, key, fingerprint)
        if replay is None:
            raise Conflict("A refund with this Idempotency-Key is in progress; retry shortly.")
        return replay
    return refund


def _owned(invoice: Invoice | None, merchant_id: str, invoice_id: str) -> Invoice:
    if invoice is None or invoice.merchant_id != merchant_id:
        raise NotFound(f"No invoice '{invoice_id}'.", field="invoice_id")
    return invoice


async def _refundable(uow: UnitOfWork, book: StarsBook, invoice: Invoice,
                      payment_id: str | None) -> Payment | Refund:
    """The payment to refund, or the refund of it already pending."""
    payments = [p for p in await uow.payments.for_invoice(invoice.id)
                if payment_id is None or p.id == payment_id]
    if payment_id is not None and not payments:
        raise NotFound(f"Invoice '{invoice.id}' has no payment '{payment_id}'.", field="payment_id")
    refunds = await book.refunds_for_invoice(invoice.id)
    for refund in refunds:
        if refund.status is RefundStatus.PENDING and any(p.id == refund.payment_id for p in payments):
            return refund
    confirmed = [p for p in payments if p.status is PaymentStatus.CONFIRMED and not p.dust]
    if not confirmed:
        done = [r for r in refunds if r.status in ACTIVE]
        if done:
            raise Conflict(f"Invoice '{invoice.id}' was refunded already ({done[0].id}).",
                           code="already_refunded")
        raise Conflict(f"Invoice '{invoice.id}' has no confirmed payment to refund.")
    if len(confirmed) > 1 and payment_id is None:
        raise DomainError(f"Invoice '{invoice.id}' has {len(confirmed)} confirmed payments; say "
                          "which to refund with payment_id.", field="payment_id")
    payment = confirmed[0]
    if payment.asset != XTR.code:
        raise Conflict(f"Refunds of {payment.asset} payments come with payouts; only Telegram "
                       "Stars payments can be refunded for now.", code="refund_unsupported")
    return payment


def _check_amount(amount: str | None, payment: Payment) -> None:
    if amount is None:
        return
    asked = money.parse_units(amount, XTR.decimals)
    if asked != payment.amount:
        raise DomainError(f"Telegram refunds whole Stars payments only: amount must be "
                          f"{payment.amount} (the payment) or left out.", field="amount")


async def _held_of(uow: UnitOfWork, book: StarsBook, payment: Payment) -> tuple[str | None, int]:
    """The payment's settlement still held by the hold period, and what of it is left."""
    ids = {s.id for s in await uow.settlements.for_invoice(payment.invoice_id)}
    own = "set_" + payment.id.removeprefix("pay_")
    chosen = own if own in ids else ("set_" + payment.invoice_id.removeprefix("inv_"))
    held = await book.held_settlement(chosen, for_update=True) if chosen in ids else None
    if held is None:
        return None, 0
    return held.id, await book.held_left(held)


async def _check_balance(uow: UnitOfWork, book: StarsBook, payment: Payment, refund_id: str) -> None:
    _, held_left = await _held_of(uow, book, payment)
    available = (await uow.ledger.balances(ledger.merchant_account(payment.merchant_id, payment.asset))
                 ).get((ledger.merchant_account(payment.merchant_id, payment.asset), payment.asset), 0)
    reserved = await book.reserved(payment.merchant_id, payment.asset, refund_id)
    if not covers(payment.amount, held_left, available, reserved):
        short = payment.amount - (held_left + available - reserved)
        raise Conflict(f"The balance cannot cover this refund of {payment.amount} "
                       f"{payment.asset}: {short} more is needed (the platform fee is not "
                       "returned, so a refund takes the whole payment from the merchant).",
                       code="insufficient_balance")


async def _resume(deps: Deps, kit: RefundKit, refund: Refund) -> Refund:
    """Ask the rail for a pending refund and record the outcome; a finished one as it is."""
    if refund.status is not RefundStatus.PENDING:
        return refund
    charge_id, payer_id = await _charge(deps, kit, refund)
    if kit.bot is None:
        raise RailUnavailable("Telegram Stars has no bot configured: the refund stays pending.")
    try:
        await kit.bot.refund_star_payment(payer_id, charge_id)
    except RefundRefused as exc:
        if ALREADY_REFUNDED in exc.reason:
            return await _finish(deps, kit, refund.id, None)
        return await _finish(deps, kit, refund.id, exc.reason)
    except Exception as exc:  # not known whether Telegram did it: stays pending, asked again
        raise RailUnavailable(f"Telegram could not be asked to refund ({exc}); the refund "
                              f"{refund.id} stays pending and is retried.") from None
    return await _finish(deps, kit, refund.id, None)


async def _charge(deps: Deps, kit: RefundKit, refund: Refund) -> tuple[str, int]:
    async with deps.uow(write=False) as uow:
        payment = await uow.payments.get(refund.payment_id)
        assert payment is not None
        payer = await kit.books(uow).payer(payment.tx_id)
    if payer is None and kit.payers is not None:
        payer = await kit.payers.payer_of(payment.tx_id)
    if payer is None:
        raise RailUnavailable(f"The payer of charge {payment.tx_id} is not known; the refund "
                              f"{refund.id} stays pending.")
    return payment.tx_id, payer


async def _finish(deps: Deps, kit: RefundKit, refund_id: str, failure: str | None) -> Refund:
    """Record the rail's answer once: a concurrent resolver that finished first wins."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        book = kit.books(uow)
        refund = await book.refund(refund_id)
        assert refund is not None
        invoice = await uow.invoices.get(refund.invoice_id, for_update=True)
        refund = await book.refund(refund_id)  # again, under the invoice's lock
        assert refund is not None and invoice is not None
        if refund.status is not RefundStatus.PENDING:
            return refund
        if failure is not None:
            refund.fail(failure, now)
            await book.save_refund(refund)
            event = _event(events.REFUND_FAILED, refund)
            event.data["failure"] = refund.failure
            await uow.events.append(event, now)
        else:
            await _succeed(uow, book, invoice, refund, now)
        await uow.commit()
    return refund


async def _succeed(uow: UnitOfWork, book: StarsBook, invoice: Invoice, refund: Refund,
                   now: datetime) -> None:
    payment = await uow.payments.get(refund.payment_id)
    assert payment is not None
    settlement_id, held_left = await _held_of(uow, book, payment)
    from_held, from_available = split_debit(refund.amount, held_left)
    refund.succeed(now, from_held, settlement_id)
    await book.save_refund(refund)
    # Telegram has paid it back: recorded even if the balance went short since (the check
    # at creation reserved it; the ledger shows a negative balance rather than hide it).
    await uow.ledger.post(ledger.refunded(refund.id, refund.merchant_id, refund.asset,
                                          from_held, from_available), now)
    if payment.status is PaymentStatus.CONFIRMED:
        payment.move(PaymentStatus.REFUNDED)
        await uow.payments.save(payment)
        for _, to in payment.changes:
            await uow.events.append(events.Event(
                events.payment_status_event(to.value), payment.merchant_id, payment.id, {
                    "invoice_id": payment.invoice_id, "asset": payment.asset,
                    "amount": str(payment.amount), "status": to.value,
                    "chain": payment.chain.value, "tx_id": payment.tx_id}), now)
        payment.changes.clear()
    others = [p for p in await uow.payments.for_invoice(invoice.id)
              if p.id != payment.id and p.status is PaymentStatus.CONFIRMED and not p.dust]
    if invoice.status is InvoiceStatus.PAID and not others:
        invoice.move(InvoiceStatus.REFUNDED)
        await save_invoice(uow, invoice, now)
    await uow.events.append(_event(events.REFUND_SUCCEEDED, refund), now)


def _event(type_: str, refund: Refund) -> events.Event:
    return events.Event(type_, refund.merchant_id, refund.id, {
        "invoice_id": refund.invoice_id, "payment_id": refund.payment_id,
        "asset": refund.asset, "amount": str(refund.amount), "status": refund.status.value,
        "reason": refund.reason, "from_held": str(refund.from_held)})
