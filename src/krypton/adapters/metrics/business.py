"""The business series of /metrics and the log line of each change of money, read from the
event log by one consumer ("metrics").

The events already say everything the brief's targets need, with their times: a payment's
events carry when it was detected and confirmed, a settlement's its gross, fee and rate.
Reading them (under the job's lease, from a stored position) counts each event once in the
whole cluster, whichever process runs the job, and leaves the money paths untouched.

  krypton_invoices_total{status}                 invoice status changes (and created)
  krypton_payments_total{chain,status}           payment status changes
  krypton_payment_confirmation_seconds{chain}    detected → confirmed
  krypton_settlement_attempts_total{outcome}     settled (here) / failed (app.ingest, bootstrap)
  krypton_settlement_delay_seconds               the invoice's last confirmation → settlement
  krypton_fees_booked_total{asset}               platform fee booked, in the asset's base unit
  krypton_fee_mismatches_total{asset}            a fee booked ≠ the fee the rule computes
  krypton_unmatched_transfers_total{reason}
  krypton_orders_total{status}                   Stars shop orders by the status they moved to

The log lines (logger krypton.money) name what changed with its ids and amounts: payments
detected, confirmed, failed; invoices paid; settlements; refunds and payouts as they come.
Amounts are strings of the asset's smallest unit, as in the events; nothing secret is in an
event, so nothing secret is in a line.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from itertools import groupby

import structlog
from prometheus_client import Counter, Histogram

from krypton.app.deps import Deps
from krypton.app.ports import StoredEvent
from krypton.domain import events, fees

CONSUMER = "metrics"
INVOICES = Counter("krypton_invoices", "Invoices by the status they moved to", ["status"])
PAYMENTS = Counter("krypton_payments", "Payments by chain and the status they moved to",
                   ["chain", "status"])
CONFIRMATION_SECONDS = Histogram(
    "krypton_payment_confirmation_seconds", "From a payment's detection to its confirmation",
    ["chain"], buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
SETTLEMENTS = Counter("krypton_settlement_attempts",
                      "Settlements by outcome: settled, or failed (the transaction rolled back)",
                      ["outcome"])
SETTLEMENT_DELAY = Histogram(
    "krypton_settlement_delay_seconds", "From an invoice's last payment confirmation to its "
    "settlement", buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
FEES_BOOKED = Counter("krypton_fees_booked", "Platform fees booked, in the asset's smallest unit",
                      ["asset"])
FEE_MISMATCHES = Counter("krypton_fee_mismatches",
                         "Settlements whose booked fee differs from the fee rule's", ["asset"])
ORDERS = Counter("krypton_orders", "Stars shop orders by the status they moved to "
                 "(delivered, failed, refunded: fulfilment's outcomes)", ["status"])
UNMATCHED = Counter("krypton_unmatched_transfers", "Transfers matched to no invoice, by reason",
                    ["reason"])
# Money moves: one line each (settlement and the rest of the invoice's life too).
LOGGED_PREFIXES = ("payment.", "settlement.", "refund.", "payout.", "subscription.", "order.")
LOGGED = frozenset({"invoice.paid", "invoice.underpaid", "invoice.refunded", "transfer.unmatched"})
# What a line carries of an event's data: ids, amounts and states, never a memo or address.
LOGGED_FIELDS = ("invoice_id", "asset", "amount", "gross", "fee", "net", "status", "chain",
                 "tx_id", "confirmations", "reason", "amount_paid", "amount_due")
log = structlog.get_logger("krypton.money")
# Confirmation times kept for settlements still to come: enough for every invoice in flight.
REMEMBERED = 50_000


class PrometheusTelemetry:
    """app.ports.Telemetry on this module's series."""

    def settlement_failed(self, asset: str) -> None:
        SETTLEMENTS.labels("failed").inc()


class BusinessMetrics:
    def __init__(self, deps: Deps, batch: int = 500) -> None:
        self._deps = deps
        self._batch = batch
        self._confirmed: OrderedDict[str, datetime] = OrderedDict()  # invoice id → last confirmation

    async def step(self) -> int:
        """Count the next batch of events; returns how many were read."""
        async with self._deps.uow() as uow:
            position = await uow.events.consumer_position(CONSUMER)
            window = await uow.events.window(position, self._batch, needs_data)
            if window.end is not None:
                await uow.events.set_consumer_position(CONSUMER, window.end)
            await uow.commit()
        # Counted after the commit: a failed commit re-reads the batch rather than count twice.
        for kind, same in groupby(sorted(window.types)):
            self.count(kind, sum(1 for _ in same))
        for event in window.events:
            self.observe(event)
        return len(window.types)

    @staticmethod
    def count(kind: str, n: int = 1) -> None:
        """What an event's type alone says: invoices by status (most of the log)."""
        if kind.startswith("invoice."):
            INVOICES.labels(kind.removeprefix("invoice.")).inc(n)

    def observe(self, event: StoredEvent) -> None:
        """What an event's data says (only events whose type `needs_data`)."""
        kind, _, status = event.type.partition(".")
        data = event.data
        if logged(event.type):
            log.info(event.type, event_id=event.id, subject_id=event.subject_id,
                     merchant_id=event.merchant_id,
                     **{k: data[k] for k in LOGGED_FIELDS if data.get(k) is not None})
        if kind == "payment":
            PAYMENTS.labels(str(data.get("chain")), status).inc()
            if event.type == events.PAYMENT_CONFIRMED:
                self._confirmation(data)
        elif kind == "order":
            ORDERS.labels(status).inc()
        elif event.type == events.SETTLEMENT_CREATED:
            self._settlement(event)
        elif event.type == events.TRANSFER_UNMATCHED:
            UNMATCHED.labels(str(data.get("reason"))).inc()

    def _confirmation(self, data: dict[str, object]) -> None:
        detected, confirmed = _time(data.get("detected_at")), _time(data.get("confirmed_at"))
        if detected is None or confirmed is None:
            return
        CONFIRMATION_SECONDS.labels(str(data.get("chain"))).observe(
            max(0.0, (confirmed - detected).total_seconds()))
        invoice_id = str(data.get("invoice_id"))
        self._confirmed[invoice_id] = confirmed
        self._confirmed.move_to_end(invoice_id)
        while len(self._confirmed) > REMEMBERED:
            self._confirmed.popitem(last=False)

    def _settlement(self, event: StoredEvent) -> None:
        data = event.data
        asset = str(data["asset"])
        SETTLEMENTS.labels("settled").inc()
        confirmed = self._confirmed.pop(str(data.get("invoice_id")), None)
        if confirmed is not None:
            SETTLEMENT_DELAY.observe(max(0.0, (event.created_at - confirmed).total_seconds()))
        fee = int(str(data["fee"]))
        FEES_BOOKED.labels(asset).inc(fee)
        if not fee_matches(data):
            FEE_MISMATCHES.labels(asset).inc()


def logged(kind: str) -> bool:
    return kind in LOGGED or kind.startswith(LOGGED_PREFIXES)


def needs_data(kind: str, merchant_id: str | None = None) -> bool:
    """Whether counting or logging an event of this type reads more than its type."""
    return logged(kind) or kind.startswith(("payment.", "order.")) or kind in (
        events.SETTLEMENT_CREATED, events.TRANSFER_UNMATCHED)


def fee_matches(data: dict[str, object]) -> bool:
    """Whether a settlement event's fee is what the fee rule gives: on the part that reached
    Krypton's addresses floor(gross × bps / 10,000), plus what the merchant's fee-collector
    contract kept by the same rule on chain; and gross = fee + net, exactly."""
    gross, fee, net = (int(str(data[k])) for k in ("gross", "fee", "net"))
    on_chain = int(str(data.get("forwarded", "0"))) + int(str(data.get("collector_fee", "0")))
    expected = fees.split(gross - on_chain, int(str(data["fee_bps"]))).fee \
        + int(str(data.get("collector_fee", "0")))
    return gross == fee + net and fee == expected


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
