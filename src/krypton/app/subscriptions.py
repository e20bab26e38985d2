"""Telegram Stars subscriptions: an invoice that asks Telegram to charge the payer again
every 30 days.

The invoice is created as usual and its plan kept beside it (`ask`); its link is made with
`subscription_period`. The first payment (`is_first_recurring`) pays that invoice and starts
the subscription. Each renewal arrives as a `successful_payment` with `is_recurring`, the
same payload (the first invoice's id) and a new charge id: it gets an invoice of its own,
linked to the subscription (once per charge id, table stars_renewals), paid through the
normal ingest, and the subscription's expiry advances with a `subscription.renewed` event,
once (renewed_at marks it, so a webhook delivered again changes nothing).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from krypton.app.deps import Deps
from krypton.app.ingest import IngestResult, ingest_transfer
from krypton.app.invoices import invoice_event
from krypton.app.stars_book import Renewal, StarsBooks
from krypton.domain import events
from krypton.domain.errors import NotFound
from krypton.domain.invoice import Invoice, InvoiceStatus
from krypton.domain.payment import ObservedTransfer
from krypton.domain.subscription import Subscription


async def ask(deps: Deps, books: StarsBooks, invoice_id: str, period: int) -> Subscription:
    """Keep the subscription plan of a new invoice (again: the one kept)."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        invoice = await uow.invoices.get(invoice_id)
        if invoice is None:
            raise NotFound(f"No invoice '{invoice_id}'.", field="id")
        book = books(uow)
        sub = Subscription(deps.ids.new("sub"), invoice.merchant_id, invoice.id, period, now, now)
        if not await book.add_subscription(sub):
            kept = await book.subscription_for_invoice(invoice.id)
            assert kept is not None
            return kept
        await uow.commit()
    return sub


async def period_of(deps: Deps, books: StarsBooks, invoice_id: str) -> int | None:
    """The subscription period an invoice's Stars link must ask for, if any."""
    async with deps.uow(write=False) as uow:
        sub = await books(uow).subscription_for_invoice(invoice_id)
    return sub.period if sub is not None else None


async def get(deps: Deps, books: StarsBooks, invoice_id: str) -> Subscription | None:
    async with deps.uow(write=False) as uow:
        return await books(uow).subscription_for_invoice(invoice_id)


async def started(deps: Deps, books: StarsBooks, invoice_id: str, payer_id: int | None,
                  expires_at: datetime | None) -> None:
    """The first payment of a subscription was credited: it is active until `expires_at`."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        book = books(uow)
        sub = await book.subscription_for_invoice(invoice_id, for_update=True)
        if sub is None or not sub.start(payer_id, expires_at, now):
            return
        await book.save_subscription(sub)
        await uow.events.append(_event(events.SUBSCRIPTION_STARTED, sub), now)
        await uow.commit()


async def renewed(deps: Deps, books: StarsBooks, transfer: ObservedTransfer, first_invoice_id: str,
                  expires_at: datetime | None) -> IngestResult | None:
    """A renewal charge: its invoice (made once), credited, and the subscription advanced
    once. None when the payload names no subscription (then it is not a renewal of ours)."""
    renewal = await _renewal_invoice(deps, books, transfer, first_invoice_id, expires_at)
    if renewal is None:
        return None
    result = await ingest_transfer(deps, transfer, renewal.invoice_id)
    now = deps.clock.now()
    async with deps.uow() as uow:
        book = books(uow)
        sub = await book.subscription_for_invoice(first_invoice_id, for_update=True)
        assert sub is not None
        if await book.mark_renewed(transfer.tx_id, now):
            sub.renew(renewal.expires_at, now)
            await book.save_subscription(sub)
            event = _event(events.SUBSCRIPTION_RENEWED, sub)
            event.data.update(invoice_id=renewal.invoice_id, charge_id=transfer.tx_id)
            await uow.events.append(event, now)
            await uow.commit()
    return result


async def _renewal_invoice(deps: Deps, books: StarsBooks, transfer: ObservedTransfer,
                           first_invoice_id: str, expires_at: datetime | None) -> Renewal | None:
    now = deps.clock.now()
    async with deps.uow() as uow:
        book = books(uow)
        sub = await book.subscription_for_invoice(first_invoice_id, for_update=True)
        if sub is None:
            return None
        known = await book.renewal(transfer.tx_id)
        if known is not None:
            return known
        first = await uow.invoices.get(first_invoice_id)
        assert first is not None
        invoice = _renewal_of(first, deps.ids.new("inv"), now, deps)
        await uow.invoices.add(invoice)
        await uow.events.append(invoice_event(invoice, events.INVOICE_CREATED), now)
        renewal = Renewal(transfer.tx_id, sub.id, invoice.id, transfer.amount, expires_at, None)
        await book.add_renewal(renewal, now)
        await uow.commit()
    return renewal


def _renewal_of(first: Invoice, invoice_id: str, now: datetime, deps: Deps) -> Invoice:
    """A new invoice for the next period: the first one's price, options and references,
    open now (Telegram has charged already: the payment follows at once)."""
    return replace(first, id=invoice_id, status=InvoiceStatus.PENDING, exception=None,
                   asset=None, amount_paid=0, amount_detected=0, memo=None, ton_address=None,
                   ton_collector=None, tron_address=None, tron_index=None, paid_at=None,
                   created_at=now, expires_at=now + deps.default_expiry,
                   monitor_until=now + deps.default_expiry + deps.monitoring_window,
                   metadata={**first.metadata}, version=1, changes=[])


def _event(type_: str, sub: Subscription) -> events.Event:
    return events.Event(type_, sub.merchant_id, sub.id, {
        "invoice_id": sub.invoice_id, "status": sub.status.value, "period": sub.period,
        "payer_id": sub.payer_id, "renewals": sub.renewals,
        "expires_at": sub.expires_at.isoformat() if sub.expires_at else None})
