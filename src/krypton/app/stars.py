"""Telegram Stars: an invoice's payment link, the pre-checkout answer, and crediting a payment.

Telegram charges the payer only after the bot answers its pre-checkout query ok, so unlike a
chain transfer a Stars payment can be refused before it happens: it is answered ok only while
the invoice is pending, unexpired, and asks for exactly the amount Telegram is about to
charge. A successful payment is then an `ObservedTransfer` on `Chain.TELEGRAM`, keyed by its
`telegram_payment_charge_id` and final at once (Telegram has no reorganisations), and goes
through `ingest` like every other rail: payment confirmed, invoice paid, settlement, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from krypton.app import subscriptions
from krypton.app.deps import Deps
from krypton.app.ingest import IngestResult, ingest_transfer
from krypton.app.stars_book import StarsBooks
from krypton.domain.assets import XTR, Chain
from krypton.domain.errors import Conflict, NotFound
from krypton.domain.invoice import Invoice, InvoiceStatus
from krypton.domain.payment import ObservedTransfer

# What a Stars payment's `destination` says: the bot's balance, not an address of ours.
STARS_DESTINATION = "telegram:stars"


@dataclass(frozen=True, slots=True)
class PreCheckout:
    """A pre_checkout_query: Telegram asks whether it may charge the payer."""

    query_id: str
    currency: str
    total_amount: int
    payload: str  # the invoice id, as given to createInvoiceLink
    payer_id: int


@dataclass(frozen=True, slots=True)
class StarsPayment:
    """A message's successful_payment: Telegram charged the payer."""

    charge_id: str  # telegram_payment_charge_id: unique, the key of the payment
    currency: str
    total_amount: int
    payload: str
    payer_id: int | None
    paid_at: datetime  # the message's date
    # Subscriptions: every payment of one is recurring; the first says so too; renewals
    # carry the same payload (the first invoice) with a new charge id.
    is_recurring: bool = False
    is_first_recurring: bool = False
    subscription_expires_at: datetime | None = None


class StarsBot(Protocol):
    """The Bot API calls the Stars rail makes (adapters/telegram/bot_api.py)."""

    async def create_invoice_link(self, *, title: str, description: str, payload: str,
                                  amount: int, subscription_period: int | None = None) -> str: ...

    async def answer_pre_checkout(self, query_id: str, ok: bool,
                                  error_message: str | None = None) -> None: ...


class StarsLinks(Protocol):
    """Where each invoice's Stars link is kept (table stars_links), each call its own
    transaction: a link is made by a Bot API call, never inside a database transaction."""

    async def get(self, invoice_id: str) -> str | None: ...

    async def add(self, invoice_id: str, link: str, now: datetime) -> str:
        """Keep `link` unless the invoice has one already; return the one kept."""


@runtime_checkable
class SubscriptionPlans(Protocol):
    """Links that know an invoice's subscription period (bootstrap's links do)."""

    async def subscription_period(self, invoice_id: str) -> int | None: ...


async def invoice_link(deps: Deps, bot: StarsBot, invoice_id: str, *, links: StarsLinks) -> str:
    """The invoice's Stars payment link, created on first request and the same ever after
    (two concurrent first requests may both call Telegram; both answer the first one kept)."""
    async with deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(invoice_id)
    if invoice is None:
        raise NotFound(f"No invoice '{invoice_id}'.", field="id")
    if invoice.option(XTR.code) is None:
        raise Conflict(f"Invoice '{invoice_id}' has no Telegram Stars option.")
    refusal = _closed(invoice, deps.clock.now())
    if refusal is not None:
        raise Conflict(f"Invoice '{invoice_id}' {refusal}")
    amount = _stars_due(invoice)
    if amount is None:
        raise Conflict(f"Invoice '{invoice_id}' takes no more Telegram Stars.")
    stored = await links.get(invoice_id)
    if stored is not None:
        return stored
    period = (await links.subscription_period(invoice_id)
              if isinstance(links, SubscriptionPlans) else None)
    link = await bot.create_invoice_link(
        title=_title(invoice), description=invoice.description or f"Invoice {invoice.id}",
        payload=invoice.id, amount=amount, subscription_period=period)
    return await links.add(invoice_id, link, deps.clock.now())


async def answer_pre_checkout(deps: Deps, update: PreCheckout) -> tuple[bool, str | None]:
    """Whether Telegram may charge for this query, and if not the sentence the payer sees."""
    if update.currency != XTR.code:
        return False, "This invoice is paid in Telegram Stars only."
    async with deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(update.payload)
    if invoice is None:
        return False, "This invoice does not exist."
    if invoice.option(XTR.code) is None:
        return False, "This invoice cannot be paid in Telegram Stars."
    refusal = _closed(invoice, deps.clock.now())
    if refusal is not None:
        return False, f"This invoice {refusal}"
    amount = _stars_due(invoice)
    if amount is None:
        return False, "This invoice can no longer be paid in Telegram Stars."
    if update.total_amount != amount:
        return False, (f"The amount does not match: this invoice asks for {amount} Stars, "
                       f"not {update.total_amount}. Open the payment link again.")
    return True, None


async def record_payment(deps: Deps, update: StarsPayment, *,
                         books: StarsBooks | None = None) -> IngestResult | None:
    """Credit a successful Stars payment to the invoice its payload names, once per charge id;
    None for a payment in another currency (not a Stars payment: nothing of ours).

    With `books` (the server passes them) the payer is kept for refunds, and a subscription's
    first payment starts it and each renewal pays an invoice of its own (app/subscriptions)."""
    if update.currency != XTR.code:
        return None
    transfer = _transfer(update)
    if books is None:
        return await ingest_transfer(deps, transfer, update.payload)
    if update.payer_id is not None:
        async with deps.uow() as uow:
            await books(uow).add_payer(update.charge_id, update.payer_id, deps.clock.now())
            await uow.commit()
    if update.is_recurring and not update.is_first_recurring:
        renewal = await subscriptions.renewed(deps, books, transfer, update.payload,
                                              update.subscription_expires_at)
        if renewal is not None:
            return renewal
    result = await ingest_transfer(deps, transfer, update.payload)
    if update.is_recurring and result.outcome == "credited":
        await subscriptions.started(deps, books, update.payload, update.payer_id,
                                    update.subscription_expires_at)
    return result


def _transfer(update: StarsPayment) -> ObservedTransfer:
    return ObservedTransfer(
        chain=Chain.TELEGRAM, tx_id=update.charge_id, index=0, asset=XTR.code,
        amount=update.total_amount, destination=STARS_DESTINATION, memo=update.payload,
        block=None, confirmations=1,
        sender=str(update.payer_id) if update.payer_id is not None else None,
        final=True, block_time=update.paid_at)


def _stars_due(invoice: Invoice) -> int | None:
    """How many Stars are still due, if Stars may still pay this invoice."""
    option = next((o for o in invoice.open_options() if o.asset == XTR.code), None)
    return option.amount if option is not None and option.amount > 0 else None


def _closed(invoice: Invoice, now: datetime) -> str | None:
    """Why the invoice takes no new Stars payment now (a sentence's end), else None. Stricter
    than a chain's `accepts`: a Stars payment can be refused before it is made, so nothing
    late is taken."""
    if invoice.status is InvoiceStatus.PENDING and now >= invoice.expires_at:
        return "has expired; it can no longer be paid."
    if invoice.status is not InvoiceStatus.PENDING:
        return f"is {invoice.status.value}; it can no longer be paid."
    return None


def _title(invoice: Invoice) -> str:
    return f"Order {invoice.order_id}" if invoice.order_id else "Payment"
