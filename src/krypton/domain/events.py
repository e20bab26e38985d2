"""Domain events: what happened, written in the same transaction as the state it describes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Status changes are named after the new status: invoice.<status>, payment.<status>.
MERCHANT_CREATED = "merchant.created"
INVOICE_CREATED = "invoice.created"
PAYMENT_DETECTED = "payment.detected"
PAYMENT_CONFIRMED = "payment.confirmed"
PAYMENT_FAILED = "payment.failed"
SETTLEMENT_CREATED = "settlement.created"
TRANSFER_UNMATCHED = "transfer.unmatched"
FEE_COLLECTOR_ACTIVATED = "fee_collector.activated"


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
