"""Refunds: giving a confirmed payment's money back to its payer.

A refund is recorded `pending` in one transaction (after checking that the merchant's
balance covers it), the rail is asked to pay it back outside any transaction, and the
outcome is recorded in a second one: `succeeded` with its ledger entry, the payment and
invoice moved to `refunded` and `refund.succeeded`; or `failed` with the rail's reason.

A crash between the two leaves a pending refund. Asking again (the same request, any
refund request for the invoice, or `resolve_pending` in the worker) repeats the rail call,
which never pays twice: Telegram refuses a second refund of a charge with
CHARGE_ALREADY_REFUNDED, which means our first call went through, so it counts as success.

Chain payments (TON; see `_create_chain`) are refunded through the hot-wallet signer.
Creating one reserves its amount (merchant available -> refund pending, under the invoice's
and the merchant's locks, so concurrent refunds exceed neither the payment nor the
balance). It goes to the payment's source address (`to: source`) or to the address the
payer gives on the claim link's page (`to: claim`): never to an address the merchant types.
Once the address is known, the `refund` entry (pending -> external, the network fee kept)
is booked and the signer asked to send it (the signer checks that entry); the signer's
status then makes it `succeeded`, or `failed` with the entry reversed. USDT on Tron has no
signer and is refused; USDT on TON waits for the signer's jetton transfers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Protocol

from krypton.app.deps import Deps
from krypton.app.invoices import IdempotencyMismatch, save_invoice
from krypton.app.ports import IdempotencyClash, UnitOfWork
from krypton.app.stars_book import StarsBook, StarsBooks
from krypton.domain import events, ledger, money
from krypton.domain.assets import XTR, Chain, asset
from krypton.domain.errors import Conflict, DomainError, NotFound
from krypton.domain.invoice import Invoice, InvoiceException, InvoiceStatus
from krypton.domain.payment import Payment, PaymentStatus
from krypton.domain.refund import (
    ACTIVE,
    CLAIM_VALID_FOR,
    NETWORK_FEES,
    REASON_MAX,
    Claim,
    ClaimExpired,
    ClaimInvalid,
    Refund,
    RefundStatus,
    RefundTarget,
    chain_amount,
    claim_token,
    covers,
    read_claim_token,
    split_debit,
)

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


@dataclass(slots=True)
class ChainDetail:
    """What a chain refund keeps beside its Refund (adapters/db/crypto_refunds.py)."""

    refund_id: str
    target: RefundTarget
    destination: str | None  # raw address; None until the payer claims
    fee: int
    claim_nonce: str | None
    claim_expires_at: datetime | None
    claimed_at: datetime | None
    ledger_entry_id: int | None  # the `refund` entry the signer checks, once booked
    signer_request_id: str | None
    updated_at: datetime


class ChainRefundBook(Protocol):
    async def lock_merchant(self, merchant_id: str) -> None: ...
    async def add(self, detail: ChainDetail) -> None: ...
    async def save(self, detail: ChainDetail) -> None: ...
    async def get(self, refund_id: str) -> ChainDetail | None: ...
    async def of(self, refund_ids: list[str]) -> dict[str, ChainDetail]: ...
    async def refunded_of(self, payment_id: str) -> int:
        """What pending and succeeded refunds take of the payment."""
    async def spend_claim(self, refund_id: str, nonce: str, destination: str, now: datetime) -> bool:
        """Set the payer's address: True only for the first use of the claim."""
    async def entry_id(self, kind: str, reference: str) -> int | None: ...
    async def pending(self, limit: int) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Sent:
    """The signer's answer: broadcast | recorded (on its way) | confirmed | failed | refused."""

    status: str
    reason: str | None = None
    refusal: str | None = None  # the signer's code for a refused request
    # For a confirmed transfer: whether the destination took it (False: it bounced back to
    # the hot wallet; None: not known yet).
    delivered: bool | None = True


class RefundSigner(Protocol):
    async def send(self, request_id: str, asset: str, amount: int, destination: str,
                   ledger_entry_id: int) -> Sent:
        """Ask the signer for a refund transfer to a payer's wallet; SignerDown if it cannot
        be asked (nothing is known: ask `status` later)."""

    async def status(self, request_id: str) -> Sent | None:
        """The transfer's status, None if the signer never recorded the request."""


class PaymentSources(Protocol):
    async def source_of(self, payment: Payment) -> str | None:
        """The address a payment came from (raw), None if not known."""


# The signer's refusals that mean "this request (or its ledger entry) is already being sent":
# another resolver of the same refund asked between our status and our send.
RACED = frozenset({"replayed_request", "ledger_entry_used"})


class SignerDown(Exception):
    """The signer could not be reached."""


@dataclass(frozen=True, slots=True)
class ChainRail:
    book: Callable[[UnitOfWork], ChainRefundBook]
    signer: RefundSigner | None
    claim_key: bytes  # HMAC key of the claim links (KeyRing.derive)
    public_url: str
    assets: frozenset[str]  # what the signer sends today
    sources: PaymentSources | None = None  # where `to: source` sends


@dataclass(frozen=True, slots=True)
class RefundKit:
    books: StarsBooks
    bot: StarsRefunder | None
    payers: PayerLookup | None = None
    chain: ChainRail | None = None


@dataclass(frozen=True, slots=True)
class RefundRequest:
    amount: str | None = None
    reason: str | None = None
    payment_id: str | None = None
    to: str | None = None  # chain refunds: "source" or "claim" (the default)

    def fingerprint(self, invoice_id: str) -> str:
        fields = asdict(self)
        if fields["to"] is None:  # as before chain refunds, so stored keys still match
            del fields["to"]
        body = json.dumps({"invoice_id": invoice_id, **fields}, sort_keys=True)
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
        return await _detailed(kit, uow, await kit.books(uow).refunds_for_invoice(invoice_id))


async def _detailed(kit: RefundKit, uow: UnitOfWork, found: list[Refund]) -> list[Refund]:
    """The refunds with their chain detail (destination, fee, claim expiry) filled in."""
    chain = [r.id for r in found if r.asset != XTR.code]
    if kit.chain is None or not chain:
        return found
    details = await kit.chain.book(uow).of(chain)
    for refund in found:
        detail = details.get(refund.id)
        if detail is not None:
            _fill(refund, detail)
    return found


def _fill(refund: Refund, detail: ChainDetail) -> Refund:
    refund.to, refund.destination, refund.fee = detail.target, detail.destination, detail.fee
    refund.claim_expires_at = detail.claim_expires_at if detail.destination is None else None
    return refund


def claim_url(kit: RefundKit, refund: Refund, detail: ChainDetail) -> str | None:
    """The payer's link while the claim is open (rebuilt from the stored nonce: the same
    link on every read)."""
    if (kit.chain is None or detail.claim_nonce is None or detail.claim_expires_at is None
            or detail.destination is not None or refund.status is not RefundStatus.PENDING):
        return None
    token = claim_token(kit.chain.claim_key, refund.id, detail.claim_nonce, detail.claim_expires_at)
    return f"{kit.chain.public_url.rstrip('/')}/refund/{token}"


async def link(deps: Deps, kit: RefundKit, refund: Refund) -> str | None:
    """A chain refund's open claim link, for the merchant to send to the payer."""
    if kit.chain is None or refund.to is not RefundTarget.CLAIM:
        return None
    async with deps.uow(write=False) as uow:
        detail = await kit.chain.book(uow).get(refund.id)
    return None if detail is None else claim_url(kit, refund, detail)


async def resolve_pending(deps: Deps, kit: RefundKit, *, older_than: timedelta = RESOLVE_AFTER,
                          limit: int = 50) -> int:
    """Finish refunds left pending by a crash (the worker's job); how many were resolved."""
    async with deps.uow(write=False) as uow:
        stuck = await kit.books(uow).pending_refunds(deps.clock.now() - older_than, limit)
    # Chain refunds have their own job (resolve_chain): a Stars-only process has no signer.
    stuck = [r for r in stuck if r.asset == XTR.code]
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
        detail: ChainDetail | None = None
        if payment.asset != XTR.code:
            refund, detail = await _open_chain(deps, kit, uow, invoice, payment, req, reason)
        else:
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
            if detail is not None:
                assert kit.chain is not None
                await kit.chain.book(uow).add(detail)
                await uow.ledger.post(ledger.refund_reserved(refund.id, merchant_id, refund.asset,
                                                             refund.amount), now)
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
        # A chain payment may have several (partial) refunds: only a Stars one is resumed.
        if (refund.status is RefundStatus.PENDING and refund.asset == XTR.code
                and any(p.id == refund.payment_id for p in payments)):
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
    return confirmed[0]


def _chain_rail(kit: RefundKit, payment: Payment) -> ChainRail:
    """The rail that can send this payment's asset back, or a 409 sentence why none can."""
    if payment.chain is Chain.TRON:
        raise Conflict("USDT on Tron cannot be refunded: Krypton has no Tron signer (the Tron "
                       "keys and energy are out of scope); refund the payer yourself.",
                       code="refund_unsupported")
    if kit.chain is None:
        raise Conflict(f"Refunds of {payment.asset} payments come with payouts: they need the "
                       "hot-wallet signer, which is not configured here.",
                       code="refund_unsupported")
    if payment.asset not in kit.chain.assets or payment.asset not in NETWORK_FEES:
        raise Conflict(f"The signer does not send {payment.asset} yet (it sends "
                       f"{', '.join(sorted(kit.chain.assets)) or 'nothing'}), so {payment.asset} "
                       "payments cannot be refunded yet.", code="refund_unsupported")
    return kit.chain


async def _open_chain(deps: Deps, kit: RefundKit, uow: UnitOfWork, invoice: Invoice,
                      payment: Payment, req: RefundRequest, reason: str | None
                      ) -> tuple[Refund, ChainDetail]:
    """A chain refund of the payment, checked against what is left of it and against the
    merchant's balance under the merchant's lock (the invoice's is held already)."""
    rail = _chain_rail(kit, payment)
    book = rail.book(uow)
    source = None
    if req.to == RefundTarget.SOURCE.value:
        source = await _source(rail, payment)
    target = _target(req.to, source)
    await book.lock_merchant(payment.merchant_id)
    surplus = req.amount == "overpaid"
    asked = None if req.amount is None or surplus else money.parse_units(
        req.amount, asset(payment.asset).decimals)
    overpaid = (invoice.amount_detected - (invoice.amount_due or 0)
                if invoice.exception is InvoiceException.OVERPAID else 0)
    plan = chain_amount(asked, surplus=surplus, payment=payment.amount,
                        refunded=await book.refunded_of(payment.id), overpaid=overpaid,
                        fee=NETWORK_FEES[payment.asset], asset=payment.asset,
                        decimals=asset(payment.asset).decimals)
    account = ledger.merchant_account(payment.merchant_id, payment.asset)
    available = (await uow.ledger.balances(account)).get((account, payment.asset), 0)
    if available < plan.amount:
        decimals = asset(payment.asset).decimals
        raise Conflict(f"The balance cannot cover this refund of "
                       f"{money.format_units(plan.amount, decimals)} {payment.asset}: "
                       f"{money.format_units(plan.amount - available, decimals)} {payment.asset} "
                       "more is needed "
                       "(the platform fee is not returned, so a refund takes its whole amount "
                       "from the merchant).", code="insufficient_balance")
    now = deps.clock.now()
    refund = Refund(id=deps.ids.new("ref"), merchant_id=payment.merchant_id, invoice_id=invoice.id,
                    payment_id=payment.id, asset=payment.asset, amount=plan.amount, reason=reason,
                    created_at=now)
    claim = target is RefundTarget.CLAIM
    detail = ChainDetail(
        refund.id, target, None if claim else source, plan.fee,
        deps.ids.random_bytes(16).hex() if claim else None,
        now + CLAIM_VALID_FOR if claim else None, None, None, None, now)
    return _fill(refund, detail), detail


async def _source(rail: ChainRail, payment: Payment) -> str | None:
    """The payer's address: stored with the payment; asked of the chain only for a payment
    recorded before Krypton kept it (payments.sender is null there)."""
    if payment.sender:
        return payment.sender
    return await rail.sources.source_of(payment) if rail.sources is not None else None


def _target(to: str | None, source: str | None) -> RefundTarget:
    try:
        target = RefundTarget(to or RefundTarget.CLAIM.value)
    except ValueError:
        raise DomainError("to must be \"source\" (the address the payment came from) or "
                          "\"claim\" (a link where the payer gives an address).", field="to") from None
    if target is RefundTarget.SOURCE and not source:
        raise Conflict("The address this payment came from is not known; refund it with "
                       "to: \"claim\" and send the payer the claim link.", code="source_unknown")
    return target


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
    if refund.asset != XTR.code:  # a chain refund, shown with its destination and fee
        if refund.status is not RefundStatus.PENDING:
            return await _reload(deps, kit, refund.id)
        return await _resume_chain(deps, kit, refund)
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
        await _refunded(uow, invoice, payment, now)
    else:
        await _invoice_refunded(uow, invoice, payment, now)
    await uow.events.append(_event(events.REFUND_SUCCEEDED, refund), now)


async def _refunded(uow: UnitOfWork, invoice: Invoice, payment: Payment, now: datetime) -> None:
    """The payment is all given back: it moves to refunded (with its event), and the invoice
    too once no other confirmed payment is left in it."""
    payment.move(PaymentStatus.REFUNDED)
    await uow.payments.save(payment)
    for _, to in payment.changes:
        await uow.events.append(events.Event(
            events.payment_status_event(to.value), payment.merchant_id, payment.id, {
                "invoice_id": payment.invoice_id, "asset": payment.asset,
                "amount": str(payment.amount), "status": to.value,
                "chain": payment.chain.value, "tx_id": payment.tx_id}), now)
    payment.changes.clear()
    await _invoice_refunded(uow, invoice, payment, now)


async def _invoice_refunded(uow: UnitOfWork, invoice: Invoice, payment: Payment,
                            now: datetime) -> None:
    others = [p for p in await uow.payments.for_invoice(invoice.id)
              if p.id != payment.id and p.status is PaymentStatus.CONFIRMED and not p.dust]
    if invoice.status is InvoiceStatus.PAID and not others:
        invoice.move(InvoiceStatus.REFUNDED)
        await save_invoice(uow, invoice, now)


def _event(type_: str, refund: Refund) -> events.Event:
    return events.Event(type_, refund.merchant_id, refund.id, {
        "invoice_id": refund.invoice_id, "payment_id": refund.payment_id,
        "asset": refund.asset, "amount": str(refund.amount), "status": refund.status.value,
        "reason": refund.reason, "from_held": str(refund.from_held)})


# --- chain refunds ----------------------------------------------------------------------


class ClaimNotFound(NotFound):
    code = "claim_not_found"


class ClaimGone(Conflict):
    """A genuine claim link that can no longer be used (expired, used, refund finished)."""

    code = "claim_gone"


async def _resume_chain(deps: Deps, kit: RefundKit, refund: Refund) -> Refund:
    """Move a pending chain refund on: wait for its claim (or fail it once the claim expired),
    book and send it, or read the signer's outcome."""
    assert kit.chain is not None
    rail = kit.chain
    async with deps.uow(write=False) as uow:
        detail = await rail.book(uow).get(refund.id)
    assert detail is not None
    if detail.destination is None:
        expires = detail.claim_expires_at
        if expires is not None and deps.clock.now() >= expires:
            return await _finish_chain(deps, kit, refund.id, "The payer did not claim the refund "
                                       "before its link expired.")
        return _fill(refund, detail)
    if detail.ledger_entry_id is None:
        detail = await _book_sent(deps, kit, refund.id)
        if detail is None:  # finished meanwhile
            return await _reload(deps, kit, refund.id)
    if rail.signer is None:
        raise RailUnavailable(f"No signer is configured: the refund {refund.id} stays pending.")
    request_id = detail.signer_request_id or refund.id
    try:
        known = await rail.signer.status(request_id)
        if known is None:  # never recorded by the signer: ask now (a replay is refused there)
            assert detail.destination is not None and detail.ledger_entry_id is not None
            known = await rail.signer.send(request_id, refund.asset, refund.amount - detail.fee,
                                           detail.destination, detail.ledger_entry_id)
            if known.refusal in RACED:  # a concurrent resolver asked first: its transfer counts
                known = await rail.signer.status(request_id) or Sent("recorded")
    except SignerDown as exc:
        raise RailUnavailable(f"The signer could not be asked ({exc}); the refund {refund.id} "
                              "stays pending and is retried.") from None
    if known.status == "confirmed" and known.delivered is False:
        return await _finish_chain(deps, kit, refund.id, "The payer's address did not accept "
                                   "the transfer; it came back to the platform's wallet.")
    if known.status == "confirmed" and known.delivered:
        return await _finish_chain(deps, kit, refund.id, None)
    if known.status in ("failed", "refused"):
        return await _finish_chain(deps, kit, refund.id, f"The signer did not send it: "
                                   f"{known.reason or known.status}")
    return await _reload(deps, kit, refund.id)  # recorded or broadcast: on its way


async def _reload(deps: Deps, kit: RefundKit, refund_id: str) -> Refund:
    async with deps.uow(write=False) as uow:
        refund = await kit.books(uow).refund(refund_id)
        assert refund is not None
        [refund] = await _detailed(kit, uow, [refund])
    return refund


async def _book_sent(deps: Deps, kit: RefundKit, refund_id: str) -> ChainDetail | None:
    """Book the `refund` entry the signer will check (once: under the invoice's lock)."""
    assert kit.chain is not None
    now = deps.clock.now()
    async with deps.uow() as uow:
        book, chain = kit.books(uow), kit.chain.book(uow)
        refund = await book.refund(refund_id)
        assert refund is not None
        await uow.invoices.get(refund.invoice_id, for_update=True)
        refund, detail = await book.refund(refund_id), await chain.get(refund_id)
        assert refund is not None and detail is not None
        if refund.status is not RefundStatus.PENDING:
            return None
        if detail.ledger_entry_id is None:
            await uow.ledger.post(ledger.refund_sent(refund.id, refund.merchant_id, refund.asset,
                                                     refund.amount, detail.fee), now)
            detail.ledger_entry_id = await chain.entry_id(ledger.REFUND_SENT_KIND, refund.id)
            detail.signer_request_id = refund.id
            detail.updated_at = now
            await chain.save(detail)
            await uow.commit()
    return detail


async def _finish_chain(deps: Deps, kit: RefundKit, refund_id: str, failure: str | None) -> Refund:
    """Record a chain refund's outcome once; a failure gives its amount back to the merchant."""
    assert kit.chain is not None
    now = deps.clock.now()
    async with deps.uow() as uow:
        book, chain = kit.books(uow), kit.chain.book(uow)
        refund = await book.refund(refund_id)
        assert refund is not None
        invoice = await uow.invoices.get(refund.invoice_id, for_update=True)
        refund, detail = await book.refund(refund_id), await chain.get(refund_id)
        assert refund is not None and invoice is not None and detail is not None
        if refund.status is not RefundStatus.PENDING:
            return _fill(refund, detail)
        _fill(refund, detail)
        if failure is not None:
            refund.fail(failure, now)
            await book.save_refund(refund)
            await uow.ledger.post(ledger.refund_reversed(
                refund.id, refund.merchant_id, refund.asset, refund.amount, detail.fee,
                sent=detail.ledger_entry_id is not None), now)
            event = _chain_event(events.REFUND_FAILED, refund)
            event.data["failure"] = refund.failure
            await uow.events.append(event, now)
        else:
            refund.succeed(now, 0, None)
            await book.save_refund(refund)
            await _payment_refunded(uow, book, invoice, refund, now)
            await uow.events.append(_chain_event(events.REFUND_SUCCEEDED, refund), now)
        await uow.commit()
    return refund


async def _payment_refunded(uow: UnitOfWork, book: StarsBook, invoice: Invoice,
                            refund: Refund, now: datetime) -> None:
    """Once refunds gave the whole payment back, the payment (and, with no other payment
    left, the invoice) is `refunded`; a partial refund leaves both as they are."""
    payment = await uow.payments.get(refund.payment_id)
    assert payment is not None
    if payment.status is not PaymentStatus.CONFIRMED:
        return
    succeeded = [r.amount for r in await book.refunds_for_invoice(invoice.id)
                 if r.payment_id == payment.id and r.status is RefundStatus.SUCCEEDED]
    if sum(succeeded) < payment.amount:
        return
    await _refunded(uow, invoice, payment, now)


def _chain_event(type_: str, refund: Refund) -> events.Event:
    event = _event(type_, refund)
    event.data.update({"to": refund.to.value if refund.to else None,
                       "destination": refund.destination, "fee": str(refund.fee),
                       "net": str(refund.amount - refund.fee)})
    return event


async def resolve_chain(deps: Deps, kit: RefundKit, *, limit: int = 50) -> int:
    """The worker's job: move pending chain refunds on (expired claims failed, booked ones
    sent, sent ones settled from the signer's status); how many finished."""
    if kit.chain is None:
        return 0
    async with deps.uow(write=False) as uow:
        ids = await kit.chain.book(uow).pending(limit)
        pending = [r for r in [await kit.books(uow).refund(i) for i in ids] if r is not None]
    done = 0
    for refund in pending:
        try:
            resolved = await _resume_chain(deps, kit, refund)
        except RailUnavailable:
            continue  # the signer is down: the next round asks again
        done += resolved.status is not RefundStatus.PENDING
    return done


async def open_claim(deps: Deps, kit: RefundKit, token: str) -> Refund:
    """The refund a claim link is for, as its page shows it; ClaimNotFound for a forged or
    foreign token, ClaimGone for an expired one."""
    claim = _read_claim(deps, kit, token)
    return await _claimed_refund(deps, kit, claim.refund_id, claim.nonce)


async def _claimed_refund(deps: Deps, kit: RefundKit, refund_id: str, nonce: str) -> Refund:
    assert kit.chain is not None
    async with deps.uow(write=False) as uow:
        refund = await kit.books(uow).refund(refund_id)
        detail = await kit.chain.book(uow).get(refund_id)
    if refund is None or detail is None or detail.claim_nonce != nonce:
        raise ClaimNotFound("This refund link is not valid.")
    return _fill(refund, detail)


def _read_claim(deps: Deps, kit: RefundKit, token: str) -> Claim:
    if kit.chain is None:
        raise ClaimNotFound("This refund link is not valid.")
    try:
        return read_claim_token(kit.chain.claim_key, token, deps.clock.now())
    except ClaimInvalid:
        raise ClaimNotFound("This refund link is not valid.") from None
    except ClaimExpired:
        raise ClaimGone("This refund link has expired; ask the merchant for a new refund.",
                        code="claim_expired") from None


async def claim_refund(deps: Deps, kit: RefundKit, token: str, address: str) -> Refund:
    """The payer gives the address to refund to: accepted once per link, then sent through
    the signer. The address must be a valid TON address of this network."""
    claim = _read_claim(deps, kit, token)
    assert kit.chain is not None
    destination = deps.rails.canonical_ton_address(address.strip())
    now = deps.clock.now()
    async with deps.uow() as uow:
        book, chain = kit.books(uow), kit.chain.book(uow)
        refund = await book.refund(claim.refund_id)
        if refund is None:
            raise ClaimNotFound("This refund link is not valid.")
        await uow.invoices.get(refund.invoice_id, for_update=True)
        refund, detail = await book.refund(claim.refund_id), await chain.get(claim.refund_id)
        if refund is None or detail is None or detail.claim_nonce != claim.nonce:
            raise ClaimNotFound("This refund link is not valid.")
        if refund.status is not RefundStatus.PENDING or not await chain.spend_claim(
                refund.id, claim.nonce, destination, now):
            raise ClaimGone("This refund link was used already.", code="claim_used")
        detail.destination = destination
        _fill(refund, detail)
        await uow.events.append(_chain_event(events.REFUND_CLAIMED, refund), now)
        await uow.commit()
    try:
        return await _resume_chain(deps, kit, refund)
    except RailUnavailable:  # claimed and booked: the worker sends it when the signer is back
        return await _reload(deps, kit, refund.id)
