"""Invoices: what a merchant asks for, and how payments move it.

pending -> confirming (fully paid, awaiting confirmations) -> paid; pending -> expired |
cancelled. A payment inside the monitoring window after expiry moves expired ->
confirming -> paid with exception `paid_late`. If a payment is orphaned or fails, a
confirming invoice falls back to pending (or expired, once past its expiry).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from krypton.domain import transitions
from krypton.domain.errors import DomainError
from krypton.domain.payment import Payment, PaymentStatus

DEFAULT_EXPIRY = timedelta(minutes=15)
DEFAULT_MONITORING = timedelta(hours=24)
MIN_EXPIRY = timedelta(minutes=1)
MAX_EXPIRY = timedelta(days=30)


class InvoiceStatus(StrEnum):
    PENDING = "pending"
    CONFIRMING = "confirming"
    PAID = "paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"  # every payment that paid it was given back (app/refunds.py)


class InvoiceException(StrEnum):
    UNDERPAID = "underpaid"
    OVERPAID = "overpaid"
    PAID_LATE = "paid_late"


S = InvoiceStatus
TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    S.PENDING: frozenset({S.CONFIRMING, S.EXPIRED, S.CANCELLED}),
    S.CONFIRMING: frozenset({S.PAID, S.PENDING, S.EXPIRED}),
    S.EXPIRED: frozenset({S.CONFIRMING}),
    S.PAID: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class PaymentOption:
    """One way to pay: this asset, this many smallest units, at the rate locked at creation."""

    method: str
    asset: str
    amount: int
    # Price currency per whole asset unit ("1" when priced in the asset itself).
    rate: str
    # USD per whole asset unit, locked too: it sets the confirmation policy.
    usd_rate: str


@dataclass(slots=True)
class Invoice:
    id: str
    merchant_id: str
    price_currency: str
    price_amount: int
    options: tuple[PaymentOption, ...]
    fee_bps: int
    underpayment_tolerance_bps: int
    created_at: datetime
    expires_at: datetime
    monitor_until: datetime
    status: InvoiceStatus = InvoiceStatus.PENDING
    exception: InvoiceException | None = None
    # The asset of the first payment: from then on the invoice is paid in it only.
    asset: str | None = None
    amount_paid: int = 0
    amount_detected: int = 0
    order_id: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    redirect_url: str | None = None
    confirmations: int | None = None
    # Where to pay: TON and USDT-on-TON go to one address with the memo as comment;
    # USDT on Tron goes to a deposit address of this invoice alone.
    memo: str | None = None
    ton_address: str | None = None
    # TON itself (not jettons) goes to the merchant's fee collector, when it has one.
    ton_collector: str | None = None
    tron_address: str | None = None
    tron_index: int | None = None
    paid_at: datetime | None = None
    # Where the USD rates of the options came from ("coingecko", "static", …) and when the
    # oldest was quoted (None: a fixed table): a merchant can see what an amount was priced at.
    rate_source: str | None = None
    rate_at: datetime | None = None
    # One more with every stored change (webhook receivers drop updates older than one seen).
    version: int = 1
    changes: list[tuple[InvoiceStatus, InvoiceStatus]] = field(default_factory=list)

    def move(self, target: InvoiceStatus) -> None:
        self.status = transitions.move(TRANSITIONS, self.status, target, "invoice", self.changes)

    def option(self, asset: str) -> PaymentOption | None:
        return next((o for o in self.options if o.asset == asset), None)

    def open_options(self) -> tuple[PaymentOption, ...]:
        """What a payer may still send: every option until a payment picks the asset, then
        only that asset (a payment in another is refused as `wrong_asset`), for what remains."""
        chosen = self.option(self.asset) if self.asset else None
        if chosen is None:
            return self.options
        # What was seen counts, confirmed or not: the payer must not send it twice.
        return (replace(chosen, amount=max(chosen.amount - self.amount_detected, 0)),)

    @property
    def amount_due(self) -> int | None:
        """Due in the selected asset; None until the first payment picks one."""
        opt = self.option(self.asset) if self.asset else None
        return opt.amount if opt else None

    def accepts(self, asset: str, now: datetime) -> str | None:
        """None if a payment in `asset` may be credited now, else the reason it may not."""
        if self.option(asset) is None or (self.asset is not None and asset != self.asset):
            return "wrong_asset"
        if self.status in (S.PENDING, S.CONFIRMING):
            return None
        if self.status is S.EXPIRED:
            return None if now < self.monitor_until else "invoice_expired"
        return f"invoice_{self.status.value}"

    def cancel(self) -> None:
        self.move(S.CANCELLED)

    def expire(self, now: datetime) -> bool:
        if self.status is S.PENDING and now >= self.expires_at:
            self.move(S.EXPIRED)
            return True
        return False

    def apply(self, payments: Iterable[Payment], now: datetime, sent_at: datetime | None = None) -> None:
        """Fold the invoice's payments into its amounts, status and exception. `sent_at`: when
        the payment behind this change was made (its block's time) if known: one made before
        the expiry is not late, however late it is seen."""
        if self.asset is None:
            return
        counted = [p for p in payments if p.asset == self.asset and p.counts]
        self.amount_detected = sum(p.amount for p in counted)
        self.amount_paid = sum(p.amount for p in counted if p.status is PaymentStatus.CONFIRMED)
        due = self.amount_due
        assert due is not None
        # At least one unit: a tolerance can never make "nothing confirmed" count as paid.
        enough = max(1, due - due * self.underpayment_tolerance_bps // 10_000)
        was_expired = self.status is S.EXPIRED
        if self.status in (S.PENDING, S.EXPIRED) and self.amount_detected >= enough:
            self.move(S.CONFIRMING)
            if was_expired and (sent_at is None or sent_at >= self.expires_at):
                self.exception = InvoiceException.PAID_LATE
        if self.status is S.CONFIRMING:
            if self.amount_paid >= enough:
                self.move(S.PAID)
                self.paid_at = now
            elif self.amount_detected < enough:
                late = self.exception is InvoiceException.PAID_LATE or now >= self.expires_at
                self.move(S.EXPIRED if late else S.PENDING)
        self.exception = self._exception(due)

    def _exception(self, due: int) -> InvoiceException | None:
        if self.exception is InvoiceException.PAID_LATE and self.status in (S.CONFIRMING, S.PAID):
            return InvoiceException.PAID_LATE
        if 0 < self.amount_detected < due:
            return InvoiceException.UNDERPAID
        if self.amount_detected > due:
            return InvoiceException.OVERPAID
        return None


def validate_expiry(expires_in: timedelta) -> timedelta:
    if not MIN_EXPIRY <= expires_in <= MAX_EXPIRY:
        raise DomainError(
            "expires_in must be between 60 and 2,592,000 seconds (1 minute to 30 days).",
            field="expires_in",
        )
    return expires_in
