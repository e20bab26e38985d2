"""What the Stars money use cases (refunds, hold, reconciliation, subscriptions) keep, as a
Protocol over one unit of work's transaction: `StarsBooks(uow)` gives the book writing in
that transaction, so a refund, its ledger entry and its events commit together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from krypton.app.ports import UnitOfWork
from krypton.domain.refund import Refund
from krypton.domain.subscription import Subscription


@dataclass(frozen=True, slots=True)
class HeldSettlement:
    """A settlement whose net is still held (not yet released)."""

    id: str
    merchant_id: str
    invoice_id: str
    asset: str
    net: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LedgerCharge:
    """A Stars payment as Krypton recorded it."""

    charge_id: str
    payment_id: str
    invoice_id: str
    amount: int
    status: str
    detected_at: datetime


@dataclass(frozen=True, slots=True)
class Renewal:
    charge_id: str
    subscription_id: str
    invoice_id: str
    amount: int
    expires_at: datetime | None
    renewed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Report:
    """One reconciliation: Telegram's transactions compared with the ledger."""

    id: str
    created_at: datetime
    transactions: int
    differences: Sequence[dict[str, Any]]

    @property
    def clean(self) -> bool:
        return not self.differences


class StarsBook(Protocol):
    # refunds
    async def add_refund(self, refund: Refund, idempotency_key: str | None,
                         request_hash: str | None) -> None:
        """IdempotencyClash if the merchant's key holds a refund already."""
    async def save_refund(self, refund: Refund) -> None: ...
    async def refund(self, refund_id: str) -> Refund | None: ...
    async def refund_by_key(self, merchant_id: str, key: str) -> tuple[Refund, str | None] | None: ...
    async def refunds_for_invoice(self, invoice_id: str) -> list[Refund]: ...
    async def pending_refunds(self, created_before: datetime, limit: int) -> list[Refund]: ...
    async def reserved(self, merchant_id: str, asset: str, excluding: str) -> int:
        """What pending refunds other than `excluding` will take from the merchant."""
    async def refunded_charges(self) -> dict[str, int]:
        """Succeeded Stars refunds: charge id -> amount."""
    async def add_payer(self, charge_id: str, payer_id: int, now: datetime) -> None:
        """Remember who paid a charge (again: nothing changes)."""
    async def payer(self, charge_id: str) -> int | None: ...
    # hold
    async def held_settlement(self, settlement_id: str, *, for_update: bool = False
                              ) -> HeldSettlement | None:
        """The settlement if its net is still held (not released), else None."""
    async def held_left(self, settlement: HeldSettlement) -> int:
        """Its net less what refunds already took from it."""
    async def due_releases(self, asset: str, created_before: datetime, limit: int
                           ) -> list[HeldSettlement]: ...
    # reconciliation
    async def ledger_charges(self) -> list[LedgerCharge]: ...
    async def add_report(self, report: Report) -> None: ...
    async def latest_report(self) -> Report | None: ...
    # subscriptions
    async def add_subscription(self, subscription: Subscription) -> bool:
        """False if the invoice has one already."""
    async def subscription_for_invoice(self, invoice_id: str, *, for_update: bool = False
                                       ) -> Subscription | None: ...
    async def save_subscription(self, subscription: Subscription) -> None: ...
    async def renewal(self, charge_id: str) -> Renewal | None: ...
    async def add_renewal(self, renewal: Renewal, now: datetime) -> None: ...
    async def mark_renewed(self, charge_id: str, now: datetime) -> bool:
        """Set renewed_at once; False if it was set already."""
    async def renewals(self, subscription_id: str) -> list[Renewal]: ...


class StarsBooks(Protocol):
    def __call__(self, uow: UnitOfWork) -> StarsBook: ...
