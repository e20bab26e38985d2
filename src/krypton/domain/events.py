"""Domain events: what happened, written in the same transaction as the state it describes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from krypton.domain.invoice import InvoiceStatus
from krypton.domain.order import EVENT_TYPES as ORDER_EVENT_TYPES
from krypton.domain.payment import PaymentStatus
from krypton.domain.payout import PayoutStatus

# Status changes are named after the new status: invoice.<status>, payment.<status>.
MERCHANT_CREATED = "merchant.created"
# Its owner changed a setting (confirmations, TON address); data holds what changed.
MERCHANT_UPDATED = "merchant.updated"
INVOICE_CREATED = "invoice.created"
# Payments seen so far leave the invoice short (again): data says what is still due.
INVOICE_UNDERPAID = "invoice.underpaid"
PAYMENT_DETECTED = "payment.detected"
PAYMENT_CONFIRMED = "payment.confirmed"
PAYMENT_FAILED = "payment.failed"
SETTLEMENT_CREATED = "settlement.created"
TRANSFER_UNMATCHED = "transfer.unmatched"
FEE_COLLECTOR_ACTIVATED = "fee_collector.activated"
# A refund of a payment: given back to the payer, or refused by the rail (data says why).
REFUND_CREATED = "refund.created"
REFUND_SUCCEEDED = "refund.succeeded"
REFUND_FAILED = "refund.failed"
# A chain refund's payer gave the address to send it to, through the claim link.
REFUND_CLAIMED = "refund.claimed"
# A Stars subscription's first payment, and each renewal (data: its new expiry).
SUBSCRIPTION_STARTED = "subscription.started"
SUBSCRIPTION_RENEWED = "subscription.renewed"
# A settlement's held money (Telegram Stars) became withdrawable.
SETTLEMENT_RELEASED = "settlement.released"
# A webhook endpoint was switched off: it answered 410 Gone, or failed for days.
WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    merchant_id: str | None
    subject_id: str
    data: dict[str, Any] = field(default_factory=dict)


def invoice_status_event(status: str) -> str:
    return f"invoice.{status}"


def payment_status_event(status: str) -> str:
    return f"payment.{status}"


# A payout's changes are named after its new status: payout.requested ... payout.failed.
def payout_status_event(status: str) -> str:
    return f"payout.{status}"


# Every type an event may have: what `/api/v1/events?type=` accepts (and webhooks will).
TYPES: frozenset[str] = frozenset({
    MERCHANT_CREATED, MERCHANT_UPDATED, INVOICE_CREATED, INVOICE_UNDERPAID, PAYMENT_DETECTED,
    PAYMENT_CONFIRMED, PAYMENT_FAILED,
    SETTLEMENT_CREATED, TRANSFER_UNMATCHED, FEE_COLLECTOR_ACTIVATED, WEBHOOK_ENDPOINT_DISABLED,
    REFUND_CREATED, REFUND_SUCCEEDED, REFUND_FAILED, REFUND_CLAIMED,
    SUBSCRIPTION_STARTED, SUBSCRIPTION_RENEWED,
    SETTLEMENT_RELEASED,
    *(invoice_status_event(s.value) for s in InvoiceStatus),
    *(payment_status_event(s.value) for s in PaymentStatus),
    # The Stars shop's orders: order.<status>, and order.attempt_failed (a supplier failed).
    *ORDER_EVENT_TYPES,
    *(payout_status_event(s.value) for s in PayoutStatus),
})
# What a webhook endpoint may ask for: all but merchant.created, which precedes any endpoint.
WEBHOOK_TYPES: frozenset[str] = TYPES - {MERCHANT_CREATED}
