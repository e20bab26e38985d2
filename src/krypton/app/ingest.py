"""Turning observed chain transfers into payments, invoice progress and settlements.

Every entry point is idempotent on the transfer's key (chain, tx id, index): seeing the
same fact twice changes nothing, also when several watchers (processes) see it at once.
Each first claims the key (`payments.claim`), before reading anything: whoever holds it
decides alone whether the transfer is a payment, unmatched or nothing, and the next one
reads that decision. (Without the claim, one that found no payment and then waited for the
invoice's lock found the invoice paid by that very transfer, and filed it as unmatched too.)
The lock order is always the transfer key, then the invoice.

Lateness and the monitoring window are judged by when the payer paid: the transfer's block
time as the chain gives it (`sent_time` below), not when a watcher first saw it nor what the
server clock says, so a watcher that lags never turns an on-time payment late and a server
clock that jumps (either way) flips no lateness. Without a block time, the moment it is
seen counts. Expiry is judged by the server clock and the chains' head times together
(app/chain_time.py), here as in the expiry job.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from krypton.app import chain_time
from krypton.app.deps import Deps
from krypton.app.invoices import save_invoice, underpaid_event
from krypton.app.ports import UnitOfWork
from krypton.domain import collector, confirmations, events, ledger, money
from krypton.domain.assets import XTR
from krypton.domain.assets import asset as get_asset
from krypton.domain.invoice import Invoice, InvoiceException, InvoiceStatus
from krypton.domain.payment import ObservedTransfer, Payment, PaymentStatus, kept_comment
from krypton.domain.settlement import settle

NO_MATCHING_INVOICE = "no_matching_invoice"


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: str  # "credited", "updated", "unchanged", "unmatched"
    payment_id: str | None = None
    reason: str | None = None


async def ingest_transfer(deps: Deps, transfer: ObservedTransfer, invoice_id: str | None, *,
                          unmatched_reason: str = NO_MATCHING_INVOICE) -> IngestResult:
    """Record a transfer seen for `invoice_id` (None when nothing matched it, for
    `unmatched_reason`)."""
    now = deps.clock.now()
    try:
        async with deps.uow() as uow:
            await uow.payments.claim(*transfer.key)
            existing = await uow.payments.by_key(*transfer.key)
            if existing is not None:
                result = await _observe(deps, uow, existing, transfer, now)
            elif await uow.unmatched.exists(*transfer.key):
                result = IngestResult("unchanged")
            else:
                result = await _first_sighting(deps, uow, transfer, invoice_id, now, unmatched_reason)
            await uow.commit()
    except Exception:
        if transfer.final:  # the transaction that would have settled it rolled back
            deps.telemetry.settlement_failed(transfer.asset)
        raise
    return result


async def _judge(deps: Deps, uow: UnitOfWork, invoice_id: str | None, transfer: ObservedTransfer,
                 now: datetime, unmatched_reason: str = NO_MATCHING_INVOICE,
                 ) -> tuple[Invoice | None, str | None]:
    """The invoice a transfer is for, and why it may not be credited to it (None: it may);
    a refused transfer is kept as unmatched."""
    invoice = await uow.invoices.get(invoice_id, for_update=True) if invoice_id else None
    if invoice is not None and invoice.expire(await _expiry_now(uow, invoice, now, transfer)):
        # Due, but the expiry worker (every few seconds) has not got to it. Whether the
        # transfer is late is judged below and in apply() by when it was sent.
        await save_invoice(uow, invoice, now)
    sent = sent_time(transfer, now)
    reason = unmatched_reason if invoice is None else invoice.accepts(transfer.asset, sent)
    if reason is not None:
        await _unmatched(deps, uow, transfer, reason, invoice, now)
    return invoice, reason


async def _first_sighting(deps: Deps, uow: UnitOfWork, transfer: ObservedTransfer,
                          invoice_id: str | None, now: datetime,
                          unmatched_reason: str = NO_MATCHING_INVOICE) -> IngestResult:
    invoice, reason = await _judge(deps, uow, invoice_id, transfer, now, unmatched_reason)
    if reason is not None:
        return IngestResult("unmatched", reason=reason)
    assert invoice is not None
    asset = get_asset(transfer.asset)
    option = invoice.option(asset.code)
    assert option is not None
    usd = money.value_in(transfer.amount, asset.decimals, money.parse_rate(option.usd_rate))
    override = invoice.confirmations  # the invoice's own, else its merchant's at creation
    payment = Payment(
        id=deps.ids.new("pay"), invoice_id=invoice.id, merchant_id=invoice.merchant_id,
        chain=transfer.chain, tx_id=transfer.tx_id, index=transfer.index, asset=asset.code,
        amount=transfer.amount, destination=transfer.destination, memo=kept_comment(transfer.memo),
        block=transfer.block, confirmations=0,
        required_confirmations=confirmations.waits_for(asset, usd, override),
        dust=transfer.amount < asset.dust_min, detected_at=now, sender=transfer.sender)
    if not payment.dust:
        invoice.asset = invoice.asset or asset.code
    await uow.events.append(_payment_event(payment, events.PAYMENT_DETECTED), now)
    payment.observe(transfer.confirmations, transfer.block, now, transfer.final)
    await uow.payments.add(payment)
    await _after_payment_change(uow, payment, invoice, now, sent_time(transfer, now))
    return IngestResult("credited", payment.id)


async def _observe(deps: Deps, uow: UnitOfWork, payment: Payment, transfer: ObservedTransfer,
                   now: datetime) -> IngestResult:
    before = (payment.status, payment.confirmations)
    if payment.status in (PaymentStatus.CONFIRMED, PaymentStatus.FAILED, PaymentStatus.REFUNDED):
        return IngestResult("unchanged", payment.id)
    invoice = None
    if payment.status is PaymentStatus.ORPHANED:
        # Back on the chain after a reorganisation: its invoice takes it again only as it
        # would take a new payment. One cancelled, paid or past its monitoring window since
        # gets it kept as unmatched (like any late transfer); the payment stays orphaned.
        if await uow.unmatched.exists(*transfer.key):
            return IngestResult("unchanged", payment.id)
        invoice, refused = await _judge(deps, uow, payment.invoice_id, transfer, now)
        if refused is not None:
            return IngestResult("unmatched", payment.id, refused)
    payment.observe(transfer.confirmations, transfer.block, now, transfer.final)
    if (payment.status, payment.confirmations) == before:
        return IngestResult("unchanged", payment.id)
    # A payment stored before Krypton kept the payer's address gets it on its next change.
    payment.sender = payment.sender or transfer.sender
    invoice = invoice or await uow.invoices.get(payment.invoice_id, for_update=True)
    assert invoice is not None
    await uow.payments.save(payment)
    await _after_payment_change(uow, payment, invoice, now, sent_time(transfer, now))
    return IngestResult("updated", payment.id)


async def reject_transfer(deps: Deps, transfer: ObservedTransfer, reason: str) -> IngestResult:
    """Record a transfer that must never be credited (e.g. a counterfeit token), once."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        await uow.payments.claim(*transfer.key)
        if await uow.unmatched.exists(*transfer.key) or await uow.payments.by_key(*transfer.key):
            return IngestResult("unchanged")
        await _unmatched(deps, uow, transfer, reason, None, now)
        await uow.commit()
    return IngestResult("unmatched", reason=reason)


async def orphan_transfer(deps: Deps, chain: str, tx_id: str, index: int) -> IngestResult:
    """The block holding this transfer was reorganised away before it was final."""
    return await _terminal(deps, chain, tx_id, index, PaymentStatus.ORPHANED)


async def fail_transfer(deps: Deps, chain: str, tx_id: str, index: int) -> IngestResult:
    """The transfer's receipt says it did not pay (REVERT, OUT_OF_ENERGY, bounced)."""
    return await _terminal(deps, chain, tx_id, index, PaymentStatus.FAILED)


async def _terminal(deps: Deps, chain: str, tx_id: str, index: int,
                    target: PaymentStatus) -> IngestResult:
    now = deps.clock.now()
    async with deps.uow() as uow:
        await uow.payments.claim(chain, tx_id, index)
        payment = await uow.payments.by_key(chain, tx_id, index)
        if payment is None:
            return IngestResult("unchanged")
        if payment.status is target:
            return IngestResult("unchanged", payment.id)
        invoice = await uow.invoices.get(payment.invoice_id, for_update=True)
        assert invoice is not None
        if target is PaymentStatus.ORPHANED:
            payment.orphan()
        else:
            payment.fail()
        await uow.payments.save(payment)
        # Losing its payment, a confirming invoice falls back to pending, or to expired once
        # its chains have passed the expiry: by their time alone (where recorded), so that a
        # server clock ahead expires nothing early, and one gone back reopens nothing expired.
        await _after_payment_change(uow, payment, invoice, now,
                                    judged_at=await _chain_now(uow, invoice, now))
        await uow.commit()
    return IngestResult("updated", payment.id)


async def _after_payment_change(uow: UnitOfWork, payment: Payment, invoice: Invoice, now: datetime,
                                sent_at: datetime | None = None, *,
                                judged_at: datetime | None = None) -> None:
    """Write the payment's events, post received money, fold it into the invoice, settle.
    `sent_at`: when the transfer behind the change was sent, if a transfer is behind it;
    `judged_at`: the time the invoice's fold judges expiry by (default `now`)."""
    confirmed_now = any(to is PaymentStatus.CONFIRMED for _, to in payment.changes)
    for _, to in payment.changes:
        await uow.events.append(_payment_event(payment, events.payment_status_event(to.value)), now)
        if to is PaymentStatus.CONFIRMED and not payment.dust:
            await uow.ledger.post(
                ledger.payment_received(payment.id, payment.merchant_id, payment.asset,
                                        payment.amount), now)
    payment.changes.clear()
    if payment.dust:
        return
    payments = await uow.payments.for_invoice(invoice.id)
    payments = [payment if p.id == payment.id else p for p in payments]
    if all(p.id != payment.id for p in payments):
        payments.append(payment)
    short_before = (invoice.exception, invoice.amount_detected)
    invoice.apply(payments, judged_at or now, sent_at)
    await save_invoice(uow, invoice, now)
    if invoice.exception is InvoiceException.UNDERPAID and \
            (invoice.exception, invoice.amount_detected) != short_before:
        await uow.events.append(underpaid_event(invoice), now)
    if invoice.status is not InvoiceStatus.PAID:
        return
    if not await uow.settlements.for_invoice(invoice.id):
        await _settle(uow, invoice, payments, now, "set_" + invoice.id.removeprefix("inv_"))
    elif confirmed_now and payment.asset == invoice.asset:
        # Sent before the invoice was paid, confirmed after it was settled (a payer who paid
        # twice, say): settled on its own, or it would sit in clearing for ever.
        await _settle(uow, invoice, [payment], now, "set_" + payment.id.removeprefix("pay_"))


async def _settle(uow: UnitOfWork, invoice: Invoice, payments: list[Payment], now: datetime,
                  settlement_id: str) -> None:
    assert invoice.asset is not None
    counted = [p for p in payments
               if p.status is PaymentStatus.CONFIRMED and not p.dust and p.asset == invoice.asset]
    via_collector = [p.amount for p in counted
                     if invoice.ton_collector is not None and p.destination == invoice.ton_collector]
    on_chain = None
    if via_collector:
        contract = await uow.collectors.by_address(invoice.ton_collector or "")
        assert contract is not None  # an invoice names only a registered collector
        # The contract already split each payment with the fee fixed in its data.
        on_chain = collector.split_payments(via_collector, contract.fee_bps)
    custodial = sum(p.amount for p in counted) - sum(via_collector)
    settlement = settle(settlement_id, invoice.merchant_id, invoice.id,
                        invoice.asset, custodial, invoice.fee_bps, now, on_chain=on_chain,
                        collector_address=invoice.ton_collector)
    await uow.settlements.add(settlement)
    # Telegram holds Stars before a bot may withdraw them: their net waits in the held
    # account until app/stars_hold.py releases it.
    await uow.ledger.post(ledger.settlement(settlement.id, invoice.merchant_id, invoice.asset,
                                            settlement.split(), settlement.collector_fee,
                                            held=invoice.asset == XTR.code), now)
    if settlement.forwarded:
        await uow.ledger.post(ledger.forwarded_on_chain(settlement.id, invoice.merchant_id,
                                                        invoice.asset, settlement.forwarded), now)
    await uow.events.append(events.Event(events.SETTLEMENT_CREATED, invoice.merchant_id,
                                         settlement.id, {
        "invoice_id": invoice.id, "asset": settlement.asset, "gross": str(settlement.gross),
        "fee": str(settlement.fee), "net": str(settlement.net), "fee_bps": settlement.fee_bps,
        "payout": settlement.payout.value, "forwarded": str(settlement.forwarded),
        "collector_fee": str(settlement.collector_fee),
        "day": now.date().isoformat()}), now)


def sent_time(transfer: ObservedTransfer, now: datetime) -> datetime:
    """When the payer paid, for lateness and the monitoring window: the block's time as the
    chain gives it, else `now`. Not capped at `now` (unlike `ObservedTransfer.sent_at`): a
    server clock behind the chain must not make a payment sent after the expiry on time.
    (A block time ahead of the server's still cannot make a payment late while its invoice
    is pending: lateness applies only to an invoice already expired, by both clocks.)"""
    return now if transfer.block_time is None else transfer.block_time


async def _expiry_now(uow: UnitOfWork, invoice: Invoice, now: datetime,
                      transfer: ObservedTransfer | None = None) -> datetime:
    """The time the invoice's expiry is judged by (app/chain_time.py): `now` while it is not
    due by the server clock, else held back to its chains' newest head times. A transfer's
    own block time shows its chain got at least that far."""
    if invoice.status is not InvoiceStatus.PENDING or now < invoice.expires_at:
        return now
    times = await chain_time.latest(uow)
    if transfer is not None and transfer.block_time is not None:
        chain = transfer.chain.value
        times[chain] = max(times.get(chain, transfer.block_time), transfer.block_time)
    return chain_time.expiry_now(now, times, chain_time.invoice_chains(invoice))


async def _chain_now(uow: UnitOfWork, invoice: Invoice, now: datetime) -> datetime:
    """The oldest recorded head time of the invoice's chains; `now` where none is recorded."""
    times = await chain_time.latest(uow)
    known = [times[c] for c in chain_time.invoice_chains(invoice) if c in times]
    return min(known) if known else now


def _payment_event(payment: Payment, type_: str) -> events.Event:
    return events.Event(type_, payment.merchant_id, payment.id, {
        "invoice_id": payment.invoice_id, "asset": payment.asset, "amount": str(payment.amount),
        "status": payment.status.value, "confirmations": payment.confirmations,
        "required_confirmations": payment.required_confirmations, "dust": payment.dust,
        "chain": payment.chain.value, "tx_id": payment.tx_id, "sender": payment.sender,
        "detected_at": payment.detected_at.isoformat(),
        "confirmed_at": payment.confirmed_at.isoformat() if payment.confirmed_at else None})


async def _unmatched(deps: Deps, uow: UnitOfWork, transfer: ObservedTransfer, reason: str,
                     invoice: Invoice | None, now: datetime) -> None:
    invoice_id = invoice.id if invoice else None
    kept = replace(transfer, memo=kept_comment(transfer.memo))
    await uow.unmatched.add(deps.ids.new("utr"), kept, reason, invoice_id, now)
    await uow.events.append(events.Event(events.TRANSFER_UNMATCHED,
                                         invoice.merchant_id if invoice else None,
                                         f"{transfer.chain.value}:{transfer.tx_id}:{transfer.index}", {
        "reason": reason, "invoice_id": invoice_id, "asset": transfer.asset,
        "amount": str(transfer.amount), "destination": transfer.destination,
        "memo": transfer.memo}), now)
