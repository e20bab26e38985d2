"""What the merchant dashboard shows at a glance: invoice counts per status, settled volume
per asset, the daily series behind the volume chart, how long payments took to confirm, and
one invoice's timeline. Read from the read models (kept by the projections consumer) and,
for the per-payment and per-invoice views, from the payments and the event log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from krypton.app.deps import Deps
from krypton.app.ports import ConfirmedPayment, DailyRow, StoredEvent
from krypton.domain.errors import DomainError, NotFound
from krypton.domain.invoice import InvoiceStatus

DEFAULT_DAYS = 30
MAX_DAYS = 366
# Confirmation times shown: enough to see a trend, few enough to draw as bars at 390 px.
CONFIRMATIONS_SHOWN = 60
# One invoice's events: created, a handful of payments with their status changes, the
# settlement. Far more than any real invoice has; the cap only bounds a pathological one.
TIMELINE_LIMIT = 500


@dataclass(frozen=True, slots=True)
class AssetVolume:
    asset: str
    gross: int
    net: int
    count: int


@dataclass(frozen=True, slots=True)
class Overview:
    counts: dict[str, int]  # every invoice status, zeros included
    volume: list[AssetVolume]  # all time, per asset
    daily: list[DailyRow]  # the window's rows (days without settlements have none)
    first_day: date
    last_day: date


def check_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise DomainError(f"days must be a whole number from 1 to {MAX_DAYS}.", field="days")
    return days


def window(today: date, days: int) -> tuple[date, date]:
    """The `days` days ending with `today`, both ends included."""
    return today - timedelta(days=check_days(days) - 1), today


async def overview(deps: Deps, merchant_id: str, days: int = DEFAULT_DAYS) -> Overview:
    first, last = window(deps.clock.now().date(), days)
    async with deps.uow(write=False) as uow:
        queries = uow.read_models
        counts = await queries.invoice_summary(merchant_id)
        revenue = await queries.merchant_summary(merchant_id)
        daily = await queries.daily_settlements(merchant_id, first.isoformat())
    return Overview(
        counts={s.value: max(0, counts.get(s.value, 0)) for s in InvoiceStatus},
        volume=sorted((AssetVolume(str(r["asset"]), int(r["gross"]), int(r["net"]), int(r["count"]))
                       for r in revenue), key=lambda v: v.asset),
        daily=[r for r in daily if r.day <= last.isoformat()], first_day=first, last_day=last)


def daily_series(rows: Sequence[DailyRow], asset: str, first: date, last: date) -> list[tuple[str, int]]:
    """(day, gross) for every day from `first` to `last`, zero where nothing was settled."""
    gross = {r.day: r.gross for r in rows if r.asset == asset}
    span = (last - first).days + 1
    return [(d, gross.get(d, 0)) for d in ((first + timedelta(days=i)).isoformat() for i in range(span))]


async def confirmation_times(deps: Deps, merchant_id: str,
                             limit: int = CONFIRMATIONS_SHOWN) -> list[ConfirmedPayment]:
    """The merchant's most recently confirmed payments, oldest first (the chart's order)."""
    async with deps.uow(write=False) as uow:
        found = await uow.read_models.confirmed_payments(merchant_id, limit)
    return sorted(found, key=lambda p: (p.confirmed_at, p.id))


async def invoice_timeline(deps: Deps, merchant_id: str, invoice_id: str) -> list[StoredEvent]:
    """Everything that happened to one invoice, its payments and its settlements, in the
    order it was written. Another merchant's invoice is as absent as a missing one."""
    async with deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(invoice_id)
        if invoice is None or invoice.merchant_id != merchant_id:
            raise NotFound(f"No invoice '{invoice_id}'.", field="invoice_id")
        payments = await uow.payments.for_invoice(invoice_id)
        settlements = await uow.settlements.for_invoice(invoice_id)
        subjects = [invoice_id, *(p.id for p in payments), *(s.id for s in settlements)]
        return await uow.read_models.events_about(merchant_id, subjects, TIMELINE_LIMIT)
