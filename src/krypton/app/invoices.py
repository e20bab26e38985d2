"""Creating, cancelling and expiring invoices."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from krypton.app import chain_time
from krypton.app.deps import Deps
from krypton.app.ports import IdempotencyClash, UnitOfWork
from krypton.domain import collector, events, memo, money, pricing
from krypton.domain.assets import TON, XTR, Chain, pricing_decimals
from krypton.domain.assets import asset as get_asset
from krypton.domain.errors import Conflict, DomainError, NotFound
from krypton.domain.invoice import Invoice, InvoiceStatus, validate_expiry
from krypton.domain.merchant import Merchant, validate_confirmations, validate_methods

View = Callable[[Invoice], Any]
TRON_DEPOSIT_COUNTER = "tron_deposit_index"
MEMO_DRAWS = 10
STARS_METHOD = XTR.method


@dataclass(frozen=True, slots=True)
class InvoiceRequest:
    amount: str
    currency: str
    methods: Sequence[str] | None = None
    order_id: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    expires_in: int | None = None
    redirect_url: str | None = None
    confirmations: int | None = None

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyMismatch(DomainError):
    code = "idempotency_key_reused"


@dataclass(frozen=True, slots=True)
class Created:
    """A new invoice with the caller's view of it, or, when an Idempotency-Key already created
    one, the view stored then (`invoice` is None): a replay answers as the first request did,
    whatever happened to the invoice since."""

    invoice: Invoice | None
    view: Any


def invoice_event(invoice: Invoice, type_: str) -> events.Event:
    return events.Event(type_, invoice.merchant_id, invoice.id, {
        "status": invoice.status.value,
        "exception": invoice.exception.value if invoice.exception else None,
        "price_currency": invoice.price_currency,
        "price_amount": str(invoice.price_amount),
        "asset": invoice.asset,
        "amount_paid": str(invoice.amount_paid),
        "order_id": invoice.order_id,
    })


def underpaid_event(invoice: Invoice) -> events.Event:
    """invoice.underpaid: what was seen so far (confirmed or not) and what is still due."""
    event = invoice_event(invoice, events.INVOICE_UNDERPAID)
    due = invoice.amount_due or 0
    event.data.update(amount_detected=str(invoice.amount_detected), amount_due=str(due),
                      amount_remaining=str(max(due - invoice.amount_detected, 0)))
    return event


async def save_invoice(uow: UnitOfWork, invoice: Invoice, now: datetime) -> None:
    """Store the invoice and one event per status change it went through, oldest first."""
    await uow.invoices.save(invoice)
    for before, after in invoice.changes:
        event = invoice_event(invoice, events.invoice_status_event(after.value))
        event.data.update(status=after.value, previous_status=before.value)
        await uow.events.append(event, now)
    invoice.changes.clear()


async def create_invoice(deps: Deps, merchant_id: str, req: InvoiceRequest, *,
                         view: View | None = None, idempotency_key: str | None = None,
                         merchant: Merchant | None = None) -> Created:
    """Create an invoice; with an Idempotency-Key its `view` is stored, in the same
    transaction, and replayed to a request with the same key and body.

    `merchant` may be passed when the caller already holds it (the API's key cache does)."""
    fingerprint = req.fingerprint() if idempotency_key is not None else ""
    if idempotency_key is not None:
        replay = await _replay(deps, merchant_id, idempotency_key, fingerprint)
        if replay is not None:
            return replay
    now = deps.clock.now()
    # Everything that needs no lock happens before the write transaction: on SQLite the
    # writer is shared by every request, so its transaction is kept as short as possible.
    if merchant is None:
        async with deps.uow(write=False) as uow:
            merchant = await uow.merchants.get(merchant_id)
    if merchant is None or merchant.id != merchant_id:
        raise NotFound("The merchant of this API key no longer exists.")
    invoice = await _build(deps, merchant, req, now)
    async with deps.uow() as uow:
        await _assign_destinations(deps, uow, invoice, merchant)
        try:
            await _insert(deps, uow, invoice)
            await uow.events.append(invoice_event(invoice, events.INVOICE_CREATED), now)
            shown = view(invoice) if view is not None else None
            if idempotency_key is not None:
                # Unique on (merchant, key): a concurrent twin fails here and replays ours.
                await uow.idempotency.save(merchant_id, idempotency_key, fingerprint, shown, now)
            await uow.commit()
        except IdempotencyClash:
            pass
        else:
            return Created(invoice, shown)
    # A concurrent request with the same key won the race: answer with what it stored.
    assert idempotency_key is not None
    replay = await _replay(deps, merchant_id, idempotency_key, fingerprint)
    if replay is None:
        raise Conflict("A request with this Idempotency-Key is still in progress; retry shortly.")
    return replay


async def _insert(deps: Deps, uow: UnitOfWork, invoice: Invoice) -> None:
    """Insert the invoice, drawing its memo again while another invoice holds it: 25^8
    memos make a clash rare, but certain over millions of invoices."""
    for _ in range(MEMO_DRAWS):
        if await uow.invoices.add(invoice):
            return
        assert invoice.memo is not None, "only the memo may clash"
        invoice.memo = memo.from_random(deps.ids.random_bytes(memo.LENGTH))
    raise RuntimeError(f"no free memo in {MEMO_DRAWS} draws: the memo space is nearly full")


async def _replay(deps: Deps, merchant_id: str, key: str, fingerprint: str) -> Created | None:
    async with deps.uow(write=False) as uow:
        stored = await uow.idempotency.get(merchant_id, key)
    if stored is None:
        return None
    stored_hash, shown = stored
    if stored_hash != fingerprint:
        raise IdempotencyMismatch(
            "This Idempotency-Key was already used with a different request body; "
            "use a new key for a new request.", field="Idempotency-Key")
    return Created(None, shown)


async def _build(deps: Deps, merchant: Merchant, req: InvoiceRequest, now: datetime) -> Invoice:
    decimals = pricing_decimals(req.currency)
    price = money.parse_units(req.amount, decimals)
    methods = validate_methods(list(req.methods) if req.methods is not None else list(merchant.methods))
    disabled = [m for m in methods if m not in merchant.methods]
    if disabled:
        raise DomainError(f"Payment methods {disabled} are not enabled for this merchant.",
                          field="methods")
    methods = _stars_if_available(deps, methods)
    # Sorted: a refusal names the same currency every time.
    rates = {c: await deps.rates.usd_rate(c)
             for c in sorted(pricing.currencies_needed(req.currency, methods))}
    options = pricing.options(req.currency, price, methods, rates, now)
    rate_source, rate_at = pricing.provenance(rates.values())
    expires_in = validate_expiry(
        timedelta(seconds=req.expires_in) if req.expires_in is not None else deps.default_expiry)
    return Invoice(
        id=deps.ids.new("inv"), merchant_id=merchant.id, price_currency=req.currency,
        price_amount=price, options=options, fee_bps=merchant.fee_bps,
        underpayment_tolerance_bps=merchant.underpayment_tolerance_bps, created_at=now,
        expires_at=now + expires_in,
        monitor_until=now + expires_in + deps.monitoring_window, order_id=req.order_id,
        description=req.description, metadata=dict(req.metadata), redirect_url=req.redirect_url,
        rate_source=rate_source, rate_at=rate_at,
        # The merchant's override is locked in like the rates: the policy a payer was shown.
        confirmations=validate_confirmations(req.confirmations) if req.confirmations is not None
        else merchant.confirmations_override)


def _stars_if_available(deps: Deps, methods: tuple[str, ...]) -> tuple[str, ...]:
    """Without a bot no Stars link can be made: Stars is left out of an invoice that offers
    other methods (a merchant's defaults include it everywhere), and a Stars-only one refused."""
    if STARS_METHOD not in methods or deps.rails.stars_available():
        return methods
    others = tuple(m for m in methods if m != STARS_METHOD)
    if not others:
        raise DomainError("Telegram Stars payments need a Telegram bot: set "
                          "KRYPTON_TELEGRAM_BOT_TOKEN (and KRYPTON_TELEGRAM_WEBHOOK_SECRET), "
                          "or add another payment method.", field="methods",
                          code="rail_not_configured")
    return others


async def _assign_destinations(deps: Deps, uow: UnitOfWork, invoice: Invoice,
                               merchant: Merchant) -> None:
    """Give the invoice a memo and the TON address, and/or its own Tron deposit address."""
    chains = {get_asset(o.asset).chain for o in invoice.options}
    if Chain.TON in chains:
        invoice.ton_address = deps.rails.ton_address(merchant.ton_address)
        invoice.memo = memo.from_random(deps.ids.random_bytes(memo.LENGTH))
        ton = invoice.option(TON.code)
        # TON goes to the merchant's fee collector, unless the amount is below what the
        # contract accepts (it would bounce): then to the address above, like jettons.
        if merchant.ton_collector and ton and ton.amount >= collector.min_payment(invoice.fee_bps):
            invoice.ton_collector = merchant.ton_collector
    if Chain.TRON in chains:
        # Never handed out twice (a counter row on SQLite, a sequence on PostgreSQL) and
        # unique on the invoice: never reused.
        invoice.tron_index = await uow.counters.next(TRON_DEPOSIT_COUNTER)
        invoice.tron_address = deps.rails.tron_address(invoice.tron_index)


async def get_invoice(deps: Deps, merchant_id: str | None, invoice_id: str) -> Invoice:
    async with deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(invoice_id)
    if invoice is None or (merchant_id is not None and invoice.merchant_id != merchant_id):
        raise NotFound(f"No invoice '{invoice_id}'.", field="id")
    return invoice


async def cancel_invoice(deps: Deps, merchant_id: str, invoice_id: str) -> Invoice:
    now = deps.clock.now()
    async with deps.uow() as uow:
        invoice = await uow.invoices.get(invoice_id, for_update=True)
        if invoice is None or invoice.merchant_id != merchant_id:
            raise NotFound(f"No invoice '{invoice_id}'.", field="id")
        if invoice.status is not InvoiceStatus.PENDING or invoice.amount_detected:
            raise Conflict(f"Only a pending invoice with no payment can be cancelled; this one is "
                           f"{invoice.status.value}.")
        invoice.cancel()
        await save_invoice(uow, invoice, now)
        await uow.commit()
    return invoice


async def expire_due(deps: Deps, batch: int = 500) -> int:
    """Expire pending invoices past their expiry by the server clock and by the head time of
    every chain they can be paid on (app/chain_time.py says why both); returns how many were
    expired. A server clock that jumped ahead expires nothing the chains have not reached."""
    now = deps.clock.now()
    async with deps.uow(write=False) as uow:
        chain_times = await chain_time.latest(uow)
        # Oldest expiry first: what every clock has passed comes before what waits for a
        # chain. (While one chain's time is stuck, a batch of its invoices waiting at the
        # front delays the rest by as long: late, never early.)
        due = await uow.invoices.due_for_expiry(now, batch)
    expired = 0
    for invoice_id in due:
        async with deps.uow() as uow:
            invoice = await uow.invoices.get(invoice_id, for_update=True)
            if invoice is None:
                continue
            judged_at = chain_time.expiry_now(now, chain_times, chain_time.invoice_chains(invoice))
            if not invoice.expire(judged_at):
                continue
            # The event carries the server's time, as every event does.
            await save_invoice(uow, invoice, now)
            await uow.commit()
            expired += 1
    return expired
