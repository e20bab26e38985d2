"""Refunds: money of a confirmed payment given back to its payer.

pending -> succeeded | failed. A refund is recorded `pending` before the rail is asked to
pay it back, so a crash between the two leaves a record a retry (or the worker) resolves;
only `succeeded` moves money in the ledger. The rail decides how a refund is executed
(Telegram Stars: refundStarPayment; chains: a payout, issue 17).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from krypton.domain import transitions


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


R = RefundStatus
TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    R.PENDING: frozenset({R.SUCCEEDED, R.FAILED}),
    R.SUCCEEDED: frozenset(),
    R.FAILED: frozenset(),
}
# Refunds that hold (or may still hold) the payment's money: at most one per payment.
ACTIVE = frozenset({R.PENDING, R.SUCCEEDED})
REASON_MAX = 500


@dataclass(slots=True)
class Refund:
    id: str
    merchant_id: str
    invoice_id: str
    payment_id: str
    asset: str
    amount: int
    reason: str | None
    created_at: datetime
    status: RefundStatus = RefundStatus.PENDING
    # Why the rail refused it (Telegram's description), for a failed refund.
    failure: str | None = None
    completed_at: datetime | None = None
    # Of `amount`: what came out of the merchant's held (not yet withdrawable) balance.
    from_held: int = 0
    settlement_id: str | None = None
    changes: list[tuple[RefundStatus, RefundStatus]] = field(default_factory=list)

    def succeed(self, now: datetime, from_held: int, settlement_id: str | None) -> None:
        self.status = transitions.move(TRANSITIONS, self.status, R.SUCCEEDED, "refund",
                                       self.changes)
        self.completed_at = now
        self.from_held = from_held
        self.settlement_id = settlement_id if from_held else None

    def fail(self, why: str, now: datetime) -> None:
        self.status = transitions.move(TRANSITIONS, self.status, R.FAILED, "refund", self.changes)
        self.failure = why[:REASON_MAX]
        self.completed_at = now


def split_debit(amount: int, held_left: int) -> tuple[int, int]:
    """(from held, from available): a refund takes from the payment's still-held money first,
    so money Telegram has not yet released is not counted as withdrawable and given back."""
    from_held = max(0, min(amount, held_left))
    return from_held, amount - from_held


def covers(amount: int, held_left: int, available: int, reserved: int) -> bool:
    """Whether the merchant's money can pay `amount` back: the payment's held remainder plus
    the available balance, less what other refunds in flight already promised."""
    return held_left + available - reserved >= amount
