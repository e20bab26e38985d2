"""A hypothesis state machine that drives the real use cases against a real database.

Every example builds its own Container (a fresh SQLite file by default; a fresh PostgreSQL
database cloned from the migrated template when PostgreSQL is among the test databases),
then interleaves: invoice creation, first sightings of transfers (right asset, wrong asset,
dust, under / exact / over payment), re-sightings with more confirmations, identical
re-sightings, reorgs, failed receipts, expiry, cancellation and projection runs.

After every step the whole database is read back and checked against the rules of the
house: journal entries balance per asset, balances replay from postings, invoice amounts
are the sums of their payments, a paid invoice has exactly one exact settlement, each
inbound fact is stored once, and the event log tells the same story as the state rows.
At the end the read models are rebuilt from the log and must equal the live ones.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from krypton.adapters.db import tables as t
from krypton.adapters.db.repositories import InvoiceRepo, PaymentRepo, SettlementRepo
from krypton.app import ingest, invoices, merchants, relay
from krypton.bootstrap import Container, build
from krypton.config import Settings
from krypton.domain import ledger
from krypton.domain.assets import ASSETS, Chain
from krypton.domain.errors import Conflict, DomainError, IllegalTransition, NotFound
from krypton.domain.invoice import Invoice, InvoiceStatus
from krypton.domain.ledger import Posting
from krypton.domain.payment import ObservedTransfer, Payment, PaymentStatus
from krypton.domain.settlement import Settlement
from tests.support.clock import ManualClock

T = TypeVar("T")
IS = InvoiceStatus
PS = PaymentStatus
DATABASES = os.environ.get("KRYPTON_TEST_DATABASES", "sqlite,postgresql").split(",")
METHODS = ("ton", "usdt_ton", "usdt_trc20")
CHAIN_OF = {"TON": Chain.TON, "USDT_TON": Chain.TON, "USDT_TRC20": Chain.TRON, "XTR": Chain.TELEGRAM}
FINALITY = {"TON": 1, "USDT_TON": 1, "USDT_TRC20": 19, "XTR": 1}
DECIMALS = {"TON": 9, "USDT_TON": 6, "USDT_TRC20": 6, "XTR": 0}
# The life cycles, written out by hand (tests/domain enumerates the tables themselves).
INVOICE_MOVES = {(IS.PENDING, IS.CONFIRMING), (IS.PENDING, IS.EXPIRED), (IS.PENDING, IS.CANCELLED),
                 (IS.CONFIRMING, IS.PAID), (IS.CONFIRMING, IS.PENDING), (IS.CONFIRMING, IS.EXPIRED),
                 (IS.EXPIRED, IS.CONFIRMING)}
PAYMENT_MOVES = {(PS.DETECTED, PS.CONFIRMING), (PS.DETECTED, PS.FAILED), (PS.CONFIRMING, PS.CONFIRMED),
                 (PS.CONFIRMING, PS.FAILED), (PS.CONFIRMING, PS.ORPHANED), (PS.ORPHANED, PS.DETECTED)}
LIVE = (PS.DETECTED, PS.CONFIRMING, PS.CONFIRMED)
# 0..20, weighted towards the tier edges (1, 12, 19) so payments linger in `confirming`.
TRON_CONFIRMATIONS = st.sampled_from([0, 0, 0, 1, 2, 11, 12, 18, 19]) | st.integers(0, 20)
# Whether the watcher calls the transfer final (solidified); nothing confirms before that.
TRON_FINAL = st.booleans()

# Prices: (currency, decimal string) pairs that every enabled method can take (>= its dust).
PRICES = {
    "TON": st.sampled_from(["0.001", "0.5", "1", "1.000000001", "19.999999999", "25.123456789",
                            "3000", "100000"]),
    "USDT": st.sampled_from(["0.01", "0.010001", "1", "9.99", "99.999999", "100", "250.500001",
                             "9999.99", "10000", "20000.000007"]),
    "USD": st.sampled_from(["0.01", "0.03", "1", "4.99", "99.99", "100", "777.77", "9999.99",
                            "10000", "50000"]),
}


def required_confirmations(asset: str, amount: int, usd_rate: str, override: int | None) -> int:
    """The documented policy, computed independently of krypton.domain.confirmations."""
    usd = Fraction(amount, 10 ** DECIMALS[asset]) * Fraction(usd_rate)
    count = override if override is not None else 1 if usd < 100 else 12 if usd < 10_000 else 19
    if asset == "USDT_TRC20":  # final only once solidified, 19 blocks on: that is the real wait
        return FINALITY[asset]
    return max(1, min(count, FINALITY[asset]))


@dataclass
class Tracked:
    """What the test knows about one inbound transfer."""

    transfer: ObservedTransfer
    invoice_id: str | None
    matched: bool
    status: PaymentStatus | None = None
    confirmations: int = 0
    required: int | None = None
    # False after an orphan: re-sending the last observation is then a new fact.
    last_was_observation: bool = True
    # Why its invoice refused it when it came back after an orphan (then also unmatched).
    refused: str | None = None


@dataclass
class Dump:
    """Everything stored that the invariants look at, read in one transaction."""

    invoices: dict[str, Invoice]
    payments: list[Payment]
    unmatched: list[dict[str, Any]]
    settlements: list[Settlement]
    merchants: dict[str, dict[str, Any]]
    entries: dict[int, tuple[str, str]]
    postings: list[tuple[int, Posting]]
    events: list[dict[str, Any]]
    balances: dict[tuple[str, str], int]
    raw: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


class PaymentMachine(RuleBasedStateMachine):
    # Set by the test function: returns (database URL, cleanup) for a fresh database.
    new_database: Callable[[Path], tuple[str, Callable[[], None]]] = staticmethod(  # type: ignore[assignment]
        lambda tmp: (f"sqlite:///{tmp}/k.db", lambda: None))

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="krypton-sm-"))
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        url, self.drop_database = type(self).new_database(self.tmp)
        self.container: Container = self.run(build(
            Settings(data_dir=self.tmp, database_url=url), clock=self.clock))
        self.deps = self.container.deps
        self.merchant_ids: list[str] = []
        self.invoice_ids: list[str] = []
        self.transfers: dict[tuple[str, str, int], Tracked] = {}
        self.tx_numbers = itertools.count(1)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    # --- reading everything back ---------------------------------------------------------

    def dump(self) -> Dump:
        return self.run(self._dump())

    async def _dump(self) -> Dump:
        async with self.container.db.reader.connect() as conn:
            await conn.begin()
            irepo, prepo, srepo = (InvoiceRepo(conn, locking=False), PaymentRepo(conn, locking=False),
                                   SettlementRepo(conn, locking=False))
            rows = {}
            for table in (t.merchants, t.invoices, t.payments, t.unmatched_transfers, t.settlements,
                          t.journal_entries, t.postings, t.events):
                key = table.c.seq if table is t.events else next(iter(table.primary_key.columns))
                rows[table.name] = (await conn.execute(sa.select(table).order_by(key))).all()
            c = t.postings.c
            sums = await conn.execute(sa.select(c.account, c.asset, sa.func.sum(c.amount))
                                      .group_by(c.account, c.asset))
            balances = {(a, s): int(n) for a, s, n in sums}
            await conn.rollback()
        return Dump(
            invoices={r.id: irepo._load(r) for r in rows["invoices"]},
            payments=[prepo._load(r) for r in rows["payments"]],
            unmatched=[dict(r._mapping) for r in rows["unmatched_transfers"]],
            settlements=[srepo._load(r) for r in rows["settlements"]],
            merchants={r.id: dict(r._mapping) for r in rows["merchants"]},
            entries={r.id: (r.kind, r.reference) for r in rows["journal_entries"]},
            postings=[(r.entry_id, Posting(r.account, r.asset, r.amount)) for r in rows["postings"]],
            events=[dict(r._mapping) for r in rows["events"]],
            balances=balances,
            raw={name: [tuple(r) for r in rs] for name, rs in rows.items()},
        )

    def invoice(self, invoice_id: str) -> Invoice:
        found = self.dump().invoices.get(invoice_id)
        assert found is not None
        return found

    # --- rules ---------------------------------------------------------------------------

    @initialize(data=st.data(), currency=st.sampled_from(["TON", "USDT", "USD"]),
                tolerance=st.sampled_from([0, 100, 5_000]), fee_bps=st.sampled_from([0, 333, 10_000]),
                override=st.none() | st.sampled_from([1, 12, 25]))
    def first_invoice(self, data: st.DataObject, currency: str, tolerance: int, fee_bps: int,
                      override: int | None) -> None:
        self.create_invoice(data, currency, True, tolerance, fee_bps, override, None, None)

    @rule(data=st.data(), currency=st.sampled_from(["TON", "USDT", "USD"]),
          new_merchant=st.booleans(),
          tolerance=st.sampled_from([0, 0, 1, 100, 500, 5_000]),
          fee_bps=st.sampled_from([0, 1, 100, 250, 333, 9_999, 10_000]),
          merchant_override=st.none() | st.sampled_from([1, 2, 12, 25, 100]),
          invoice_override=st.none() | st.none() | st.sampled_from([1, 3, 19, 20]),
          expires_in=st.none() | st.sampled_from([60, 600, 3600]))
    def create_invoice(self, data: st.DataObject, currency: str, new_merchant: bool, tolerance: int,
                       fee_bps: int, merchant_override: int | None, invoice_override: int | None,
                       expires_in: int | None) -> None:
        if new_merchant or not self.merchant_ids:
            merchant, _ = self.run(merchants.create_merchant(
                self.deps, name=f"Shop {len(self.merchant_ids)}", fee_bps=fee_bps,
                confirmations_override=merchant_override, underpayment_tolerance_bps=tolerance,
                methods=METHODS))
            self.merchant_ids.append(merchant.id)
        merchant_id = data.draw(st.sampled_from(self.merchant_ids), label="merchant")
        amount = data.draw(PRICES[currency], label="amount")
        request = invoices.InvoiceRequest(amount=amount, currency=currency, expires_in=expires_in,
                                          confirmations=invoice_override)
        body = self.run(invoices.create_invoice(self.deps, merchant_id, request,
                                                   view=lambda i: {"id": i.id})).view
        created = self.invoice(body["id"])
        assert created.status is IS.PENDING and created.merchant_id == merchant_id
        assert created.amount_paid == created.amount_detected == 0 and created.asset is None
        self.invoice_ids.append(created.id)

    def _amount(self, data: st.DataObject, invoice: Invoice | None, asset: str) -> int:
        option = invoice.option(asset) if invoice else None
        dust = ASSETS[asset].dust_min
        if option is None:
            return data.draw(st.integers(1, 10**12), label="amount")
        assert invoice is not None
        due = option.amount
        enough = due - due * invoice.underpayment_tolerance_bps // 10_000
        kind = data.draw(st.sampled_from(
            ["dust", "under", "exact", "exact", "over", "enough", "just_short", "any"]), label="kind")
        if kind == "dust":
            return data.draw(st.integers(1, dust - 1), label="amount")
        if kind == "under":
            return max(1, due * data.draw(st.integers(1, 99), label="percent") // 100)
        if kind == "exact":
            return due
        if kind == "over":
            return due + data.draw(st.integers(1, due), label="extra")
        if kind == "enough":
            return max(1, enough)
        if kind == "just_short":
            return max(1, enough - 1)
        return data.draw(st.integers(1, 3 * due), label="amount")

    @rule(data=st.data())
    def ingest_new_transfer(self, data: st.DataObject) -> None:
        """Any invoice (or none at all), any asset."""
        if not self.invoice_ids or data.draw(st.integers(0, 9), label="no invoice") == 0:
            target = data.draw(st.sampled_from([None, "inv_nonexistent"]), label="invoice")
        else:
            target = data.draw(st.sampled_from(self.invoice_ids), label="invoice")
        self._ingest_new(data, target, right_asset=False)

    @precondition(lambda self: self.invoice_ids)
    @rule(data=st.data())
    def pay_an_open_invoice(self, data: st.DataObject) -> None:
        """An invoice that still takes money, in one of its own assets."""
        d = self.dump()
        open_ = [i for i in self.invoice_ids
                 if d.invoices[i].status in (IS.PENDING, IS.CONFIRMING, IS.EXPIRED)]
        target = data.draw(st.sampled_from(open_ or self.invoice_ids), label="invoice")
        self._ingest_new(data, target, right_asset=True)

    def _ingest_new(self, data: st.DataObject, target: str | None, *, right_asset: bool) -> None:
        before = self.dump()
        invoice = before.invoices.get(target) if target else None
        offered = [o.asset for o in invoice.options] if invoice else []
        if invoice is not None and invoice.asset is not None and right_asset:
            offered = [invoice.asset]
        everything = st.sampled_from(sorted(ASSETS))
        own = st.sampled_from(offered)
        if "USDT_TRC20" in offered:  # the only rail that needs more than one confirmation
            own = st.just("USDT_TRC20") | own
        asset = data.draw(own if offered and right_asset else own | everything if offered
                          else everything, label="asset")
        chain = CHAIN_OF[asset]
        amount = self._amount(data, invoice, asset)
        conf = data.draw(TRON_CONFIRMATIONS, label="confirmations") if chain is Chain.TRON else 1
        final = data.draw(TRON_FINAL, label="final") if chain is Chain.TRON else True
        n = next(self.tx_numbers)
        transfer = ObservedTransfer(chain, f"tx{n:05d}", data.draw(st.integers(0, 2), label="index"),
                                    asset, amount, f"addr-{asset}", None, 1000 + n, conf, final=final)
        now = self.clock.now()
        result = self.run(ingest.ingest_transfer(self.deps, transfer, target))

        reason = self._expected_reason(invoice, asset, now)
        event(f"new transfer: {result.outcome} {result.reason or ''}".strip())
        if reason is not None:
            assert (result.outcome, result.reason, result.payment_id) == ("unmatched", reason, None)
            self.transfers[transfer.key] = Tracked(transfer, target, matched=False)
            return
        assert invoice is not None
        assert result.outcome == "credited" and result.payment_id, result
        option = invoice.option(asset)
        assert option is not None
        override = invoice.confirmations
        if override is None:
            override = before.merchants[invoice.merchant_id]["confirmations_override"]
        required = required_confirmations(asset, amount, option.usd_rate, override)
        tracked = Tracked(transfer, target, matched=True, status=PS.DETECTED, required=required)
        self._observe(tracked, conf, final)
        event(f"first sighting: {asset} {tracked.status}")
        self.transfers[transfer.key] = tracked

    @staticmethod
    def _expected_reason(invoice: Invoice | None, asset: str, now: datetime) -> str | None:
        if invoice is None:
            return "no_matching_invoice"
        if invoice.option(asset) is None or (invoice.asset is not None and asset != invoice.asset):
            return "wrong_asset"
        if invoice.status in (IS.PENDING, IS.CONFIRMING):
            return None
        if invoice.status is IS.EXPIRED:
            return None if now < invoice.monitor_until else "invoice_expired"
        return f"invoice_{invoice.status.value}"

    @staticmethod
    def _observe(tracked: Tracked, conf: int, final: bool) -> bool:
        """The model of Payment.observe; returns whether (status, confirmations) changed."""
        before = (tracked.status, tracked.confirmations)
        if tracked.status in (PS.CONFIRMED, PS.FAILED):
            return False
        assert tracked.required is not None
        tracked.confirmations = conf
        if tracked.status is PS.ORPHANED:
            tracked.status = PS.DETECTED
        if tracked.status is PS.DETECTED and conf >= 1:
            tracked.status = PS.CONFIRMING
        # Nothing is confirmed before the chain calls it final (Tron: solidified).
        if tracked.status is PS.CONFIRMING and final and conf >= tracked.required:
            tracked.status = PS.CONFIRMED
        tracked.last_was_observation = True
        return (tracked.status, tracked.confirmations) != before

    @precondition(lambda self: self.transfers)
    @rule(data=st.data())
    def reingest_with_more_confirmations(self, data: st.DataObject) -> None:
        everything = sorted(self.transfers)
        moving = [k for k in everything if self.transfers[k].status in (PS.DETECTED, PS.CONFIRMING,
                                                                       PS.ORPHANED)]
        choices = st.sampled_from(everything)
        if moving:
            choices = st.sampled_from(moving) | choices
        tracked = self.transfers[data.draw(choices, label="transfer")]
        old = tracked.transfer
        if old.chain is Chain.TRON:
            more = data.draw(st.sampled_from([0, 1, 1, 5, 11]) | st.integers(0, 20), label="more")
            conf = min(tracked.confirmations + more, 20)
            final = data.draw(TRON_FINAL, label="final")
        else:
            conf, final = 1, True
        again = ObservedTransfer(old.chain, old.tx_id, old.index, old.asset, old.amount,
                                 old.destination, old.memo, old.block, conf, final=final)
        # The invoice id a watcher passes is irrelevant once the key is known.
        other = data.draw(st.sampled_from([tracked.invoice_id, *self.invoice_ids[-1:], None]),
                          label="invoice")
        before = self.dump()
        result = self.run(ingest.ingest_transfer(self.deps, again, other))
        if not tracked.matched or (tracked.refused and tracked.status is PS.ORPHANED):
            assert result.outcome == "unchanged"
            assert self.dump().raw == before.raw
            return
        if tracked.status is PS.ORPHANED:
            # Back on the chain: taken again only as a new payment would be.
            reason = self._expected_reason(before.invoices.get(tracked.invoice_id or ""),
                                           old.asset, self.clock.now())
            if reason is not None:
                event(f"re-sighting after orphan: refused ({reason})")
                assert (result.outcome, result.reason) == ("unmatched", reason), result
                tracked.refused, tracked.transfer = reason, again
                tracked.last_was_observation = True
                return
        changed = self._observe(tracked, conf, final)
        event(f"re-sighting: {result.outcome} -> {tracked.status}")
        tracked.transfer = again
        assert result.outcome == ("updated" if changed else "unchanged"), (result, tracked)
        if not changed:
            assert self.dump().raw == before.raw

    @precondition(lambda self: any(tr.last_was_observation for tr in self.transfers.values()))
    @rule(data=st.data())
    def reingest_identical_observation(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(k for k, tr in self.transfers.items()
                                               if tr.last_was_observation)), label="transfer")
        tracked = self.transfers[key]
        before = self.dump()
        result = self.run(ingest.ingest_transfer(self.deps, tracked.transfer, tracked.invoice_id))
        assert result.outcome == "unchanged", (result, tracked)
        assert self.dump().raw == before.raw, "seeing the same fact twice changed something"

    def _in_status(self, *statuses: PaymentStatus) -> list[tuple[str, str, int]]:
        return sorted(k for k, tr in self.transfers.items() if tr.status in statuses)

    def _terminal(self, tracked: Tracked | None, action: str) -> None:
        """Orphan or fail `tracked` (None: a key nobody has seen) and check the outcome."""
        target = PS.ORPHANED if action == "orphan" else PS.FAILED
        # A failed receipt for an orphaned payment means it came back on the new fork and
        # failed there: orphaned -> detected -> failed.
        allowed_from = (PS.CONFIRMING,) if action == "orphan" else (PS.DETECTED, PS.CONFIRMING,
                                                                     PS.ORPHANED)
        call = ingest.orphan_transfer if action == "orphan" else ingest.fail_transfer
        unknown = ("tron", f"tx-unknown-{next(self.tx_numbers)}", 0)
        key = unknown if tracked is None else tracked.transfer.key
        before = self.dump()
        if tracked is None or not tracked.matched or tracked.status is target:
            result = self.run(call(self.deps, *key))
            assert result.outcome == "unchanged"
            assert self.dump().raw == before.raw
            return
        if tracked.status not in allowed_from:
            try:
                self.run(call(self.deps, *key))
            except IllegalTransition:
                pass
            else:
                raise AssertionError(f"{action} of a {tracked.status} payment was accepted")
            event(f"{action}: refused from {tracked.status}")
            assert self.dump().raw == before.raw, "a refused transition left something behind"
            return
        result = self.run(call(self.deps, *key))
        event(f"{action}: {tracked.status} -> {target}")
        assert result.outcome == "updated"
        tracked.status = target
        if action == "orphan":
            tracked.confirmations = 0
            tracked.last_was_observation = False

    @precondition(lambda self: self._in_status(PS.CONFIRMING))
    @rule(data=st.data())
    def orphan_a_confirming_transfer(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self._in_status(PS.CONFIRMING)), label="transfer")
        self._terminal(self.transfers[key], "orphan")

    @precondition(lambda self: self._in_status(PS.DETECTED, PS.CONFIRMING))
    @rule(data=st.data())
    def fail_a_pending_transfer(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self._in_status(PS.DETECTED, PS.CONFIRMING)), label="transfer")
        self._terminal(self.transfers[key], "fail")

    @rule(data=st.data(), action=st.sampled_from(["orphan", "fail"]))
    def orphan_or_fail_any_transfer(self, data: st.DataObject, action: str) -> None:
        """Any transfer at all, or an unknown key: refused, ignored or applied."""
        keys = sorted(self.transfers)
        key = data.draw(st.none() | st.sampled_from(keys) if keys else st.none(), label="transfer")
        self._terminal(self.transfers[key] if key else None, action)

    @rule(minutes=st.sampled_from([0, 1, 1, 5, 5, 14, 16, 61, 600, 1441]))
    def advance_clock_and_expire(self, minutes: int) -> None:
        now = self.clock.advance(minutes=minutes)
        before = self.dump()
        due = {i.id for i in before.invoices.values() if i.status is IS.PENDING and i.expires_at <= now}
        assert self.run(invoices.expire_due(self.deps)) == len(due)
        after = self.dump()
        for invoice in after.invoices.values():
            was = before.invoices[invoice.id]
            if invoice.id in due:
                assert invoice.status is IS.EXPIRED
            else:
                assert invoice.status is was.status
            if invoice.status is IS.PENDING:
                assert invoice.expires_at > now

    @precondition(lambda self: self.invoice_ids)
    @rule(data=st.data(), wrong_merchant=st.integers(0, 9))
    def cancel_invoice(self, data: st.DataObject, wrong_merchant: int) -> None:
        invoice_id = data.draw(st.sampled_from(self.invoice_ids), label="invoice")
        before = self.dump()
        invoice = before.invoices[invoice_id]
        if wrong_merchant == 0:
            try:
                self.run(invoices.cancel_invoice(self.deps, "mer_someone_else", invoice_id))
            except NotFound:
                pass
            else:
                raise AssertionError("another merchant cancelled the invoice")
            assert self.dump().raw == before.raw
            return
        if invoice.status is IS.PENDING and invoice.amount_detected == 0:
            event("cancel: allowed")
            cancelled = self.run(invoices.cancel_invoice(self.deps, invoice.merchant_id, invoice_id))
            assert cancelled.status is IS.CANCELLED
            assert self.invoice(invoice_id).status is IS.CANCELLED
            return
        try:
            self.run(invoices.cancel_invoice(self.deps, invoice.merchant_id, invoice_id))
        except Conflict:
            pass
        else:
            raise AssertionError(f"a {invoice.status} invoice with {invoice.amount_detected} "
                                 "detected was cancelled")
        event(f"cancel: conflict ({invoice.status})")
        assert self.dump().raw == before.raw

    @rule(batch=st.sampled_from([1, 3, 500]))
    def run_projections(self, batch: int) -> None:
        self.run(relay.run_projections(self.deps, batch))

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def everything_adds_up(self) -> None:
        d = self.dump()
        for invoice in d.invoices.values():
            event(f"invoice seen {invoice.status} {invoice.exception or ''}".strip())
        self._check_inbound_facts(d)
        self._check_invoices(d)
        self._check_ledger(d)
        self._check_event_log(d)

    def _check_inbound_facts(self, d: Dump) -> None:
        payment_keys = Counter((p.chain.value, p.tx_id, p.index) for p in d.payments)
        unmatched_keys = Counter((u["chain"], u["tx_id"], u["tx_index"]) for u in d.unmatched)
        assert max(payment_keys.values(), default=1) == 1, "a transfer is stored twice"
        assert max(unmatched_keys.values(), default=1) == 1, "an unmatched transfer is stored twice"
        refused = {k for k, tr in self.transfers.items() if tr.refused}
        assert set(payment_keys) & set(unmatched_keys) == refused, \
            "a transfer is both a payment and unmatched, but was not refused after an orphan"
        assert set(payment_keys) | set(unmatched_keys) == set(self.transfers)
        by_key = {(p.chain.value, p.tx_id, p.index): p for p in d.payments}
        for key, tracked in self.transfers.items():
            if not tracked.matched:
                assert key in unmatched_keys
                continue
            p = by_key[key]
            assert (p.status, p.confirmations) == (tracked.status, tracked.confirmations), (p, tracked)
            assert p.required_confirmations == tracked.required, (p, tracked)
            assert p.invoice_id == tracked.invoice_id and p.amount == tracked.transfer.amount
            assert p.dust == (p.amount < ASSETS[p.asset].dust_min)
            assert 1 <= p.required_confirmations <= FINALITY[p.asset]
            assert (p.confirmed_at is not None) == (p.status is PS.CONFIRMED)

    def _check_invoices(self, d: Dump) -> None:
        by_invoice: dict[str, list[Payment]] = defaultdict(list)
        for p in d.payments:
            by_invoice[p.invoice_id].append(p)
        assert set(d.invoices) == set(self.invoice_ids)
        for invoice in d.invoices.values():
            mine = [p for p in by_invoice[invoice.id] if not p.dust]
            if invoice.asset is None:
                assert not mine, "a non-dust payment did not pick the invoice's asset"
            counted = [p for p in mine if p.asset == invoice.asset]
            assert counted == mine, "an invoice holds non-dust payments in two assets"
            detected = sum(p.amount for p in counted if p.status in LIVE)
            paid = sum(p.amount for p in counted if p.status is PS.CONFIRMED)
            assert (invoice.amount_detected, invoice.amount_paid) == (detected, paid), invoice
            first = "set_" + invoice.id.removeprefix("inv_")
            settled = sorted((s for s in d.settlements if s.invoice_id == invoice.id),
                             key=lambda s: (s.id != first, s.created_at, s.id))
            if invoice.status is not IS.PAID:
                assert not settled, "an unpaid invoice was settled"
                assert invoice.paid_at is None
                if invoice.asset is not None and invoice.status is not IS.CANCELLED:
                    due = invoice.amount_due
                    assert due is not None
                    enough = due - due * invoice.underpayment_tolerance_bps // 10_000
                    if invoice.status is IS.CONFIRMING:
                        assert detected >= enough > paid, invoice
                    else:
                        assert detected < enough, invoice
                continue
            assert settled, "a paid invoice has no settlement"
            assert invoice.paid_at is not None and invoice.asset is not None
            # Everything confirmed is settled: what confirmed after the invoice was settled
            # got a settlement of its own (one per payment), nothing stays in clearing.
            assert sum(s.gross for s in settled) == invoice.amount_paid, (invoice, settled)
            late = {s.id.removeprefix("set_") for s in settled[1:]}
            assert late <= {p.id.removeprefix("pay_") for p in counted}, settled
            assert settled[0].id == first
            due = invoice.amount_due
            assert due is not None
            assert settled[0].gross >= due - due * invoice.underpayment_tolerance_bps // 10_000
            for settlement in settled:
                assert settlement.gross > 0, "a settlement with nothing confirmed"
                assert settlement.gross == settlement.fee + settlement.net
                assert settlement.fee == settlement.gross * invoice.fee_bps // 10_000
                assert (settlement.asset, settlement.merchant_id, settlement.fee_bps) == (
                    invoice.asset, invoice.merchant_id, invoice.fee_bps)

    def _check_ledger(self, d: Dump) -> None:
        per_entry: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for entry_id, p in d.postings:
            per_entry[entry_id][p.asset] += p.amount
        assert set(per_entry) == set(d.entries), "a journal entry without postings (or orphan postings)"
        for entry_id, totals in per_entry.items():
            assert not any(totals.values()), f"journal entry {d.entries[entry_id]} does not balance"
        postings = [p for _, p in d.postings]
        replay = ledger.balances(postings)
        assert d.balances == replay
        per_asset: dict[str, int] = defaultdict(int)
        for (_, asset), amount in replay.items():
            per_asset[asset] += amount
        assert not any(per_asset.values())

        # Each confirmed, non-dust payment is received once; each settlement posted once.
        kinds = Counter(d.entries.values())
        assert max(kinds.values(), default=1) == 1
        received = {ref for kind, ref in d.entries.values() if kind == "payment_received"}
        confirmed = [p for p in d.payments if p.status is PS.CONFIRMED and not p.dust]
        assert received == {p.id for p in confirmed}
        assert {ref for kind, ref in d.entries.values() if kind == "settlement"} == {
            s.id for s in d.settlements}

        expected: dict[tuple[str, str], int] = defaultdict(int)
        for p in confirmed:
            expected[(f"external:{p.asset}", p.asset)] -= p.amount
            expected[(f"clearing:{p.merchant_id}:{p.asset}", p.asset)] += p.amount
        for s in d.settlements:
            expected[(f"clearing:{s.merchant_id}:{s.asset}", s.asset)] -= s.gross
            expected[(f"merchant:{s.merchant_id}:{s.asset}", s.asset)] += s.net
            expected[(f"fees:{s.asset}", s.asset)] += s.fee
        nonzero = {k: v for k, v in replay.items() if v}
        assert nonzero == {k: v for k, v in expected.items() if v}
        # A settlement never takes more out of clearing than was received there.
        assert all(v >= 0 for (account, _), v in replay.items() if not account.startswith("external:"))

    def _check_event_log(self, d: Dump) -> None:
        by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in d.events:
            by_subject[e["subject_id"]].append(e)
        for invoice in d.invoices.values():
            mine = by_subject[invoice.id]
            assert mine[0]["type"] == "invoice.created" and mine[0]["data"]["status"] == "pending"
            status = IS.PENDING
            for e in (e for e in mine if "previous_status" in e["data"]):
                move = (IS(e["data"]["previous_status"]), IS(e["data"]["status"]))
                assert move[0] is status and move in INVOICE_MOVES, (invoice.id, move)
                assert e["type"] == f"invoice.{move[1].value}"
                status = move[1]
            assert status is invoice.status, "the event log and the invoice row disagree"
        for p in d.payments:
            history = [e for e in by_subject[p.id] if e["type"].startswith("payment.")]
            assert history[0]["type"] == "payment.detected"
            status = PS.DETECTED
            for e in history[1:]:
                move = (status, PS(e["type"].removeprefix("payment.")))
                assert move in PAYMENT_MOVES, (p.id, move)
                status = move[1]
            assert status is p.status, "the event log and the payment row disagree"
        for s in d.settlements:
            (created,) = by_subject[s.id]
            assert created["type"] == "settlement.created"
            assert (created["data"]["gross"], created["data"]["fee"], created["data"]["net"]) == (
                str(s.gross), str(s.fee), str(s.net))

    # --- the end: read models --------------------------------------------------------------

    def teardown(self) -> None:
        try:
            self.run(self._check_read_models())
        finally:
            self.run(self.container.close())
            self.loop.close()
            self.drop_database()
            shutil.rmtree(self.tmp, ignore_errors=True)

    async def _snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        async with self.deps.uow() as uow:
            return await uow.read_models.snapshot()

    async def _check_read_models(self) -> None:
        await relay.catch_up(self.deps)
        live = await self._snapshot()
        await relay.rebuild(self.deps)
        rebuilt = await self._snapshot()
        assert live == rebuilt, "rebuilding the read models from the log changed them"
        d = await self._dump()
        counts = Counter((i.merchant_id, i.status.value) for i in d.invoices.values())
        summary = {(m, s): n for m, s, n in live["rm_invoice_summary"] if n}
        assert summary == dict(counts)
        revenue: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for s in d.settlements:
            row = revenue[(s.merchant_id, s.asset)]
            row[0] += s.gross
            row[1] += s.net
            row[2] += 1
        assert {(m, a): [g, n, c] for m, a, g, n, c in live["rm_merchant_revenue"]} == dict(revenue)


SETTINGS = settings(max_examples=25, stateful_step_count=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(params=DATABASES)
def new_database(request: pytest.FixtureRequest) -> Callable[[Path], tuple[str, Callable[[], None]]]:
    if request.param == "sqlite":
        return PaymentMachine.new_database
    from tests.support.servers import PostgresServer

    server: PostgresServer = request.getfixturevalue("pg_server")
    names = itertools.count()

    def make(_tmp: Path) -> tuple[str, Callable[[], None]]:
        name = f"sm{os.getpid()}_{next(names)}"
        url = server.create_database(name, template="krypton_template")
        return url, lambda: server.drop_database(name)
    return make


def test_payment_flows_keep_every_invariant(
        new_database: Callable[[Path], tuple[str, Callable[[], None]]]) -> None:
    machine = type("Machine", (PaymentMachine,), {"new_database": staticmethod(new_database)})
    run_state_machine_as_test(machine, settings=SETTINGS)


async def test_full_tolerance_does_not_pay_an_invoice_before_any_money_is_confirmed(
        container: Container, clock: ManualClock) -> None:
    """A tolerance of 100 % is refused; the largest one still needs confirmed money to pay."""
    deps = container.deps
    with pytest.raises(DomainError):
        await merchants.create_merchant(deps, name="Free shop", underpayment_tolerance_bps=10_000)
    merchant, _ = await merchants.create_merchant(deps, name="Lenient shop",
                                                  underpayment_tolerance_bps=5_000)
    body = (await invoices.create_invoice(
        deps, merchant.id, invoices.InvoiceRequest(amount="500", currency="USDT",
                                                   methods=["usdt_trc20"]),
        view=lambda i: {"id": i.id})).view
    unconfirmed = ObservedTransfer(Chain.TRON, "tx-lenient", 0, "USDT_TRC20", 500_000_000,
                                   "T-deposit", None, None, 0)
    assert (await ingest.ingest_transfer(deps, unconfirmed, body["id"])).outcome == "credited"
    invoice = await invoices.get_invoice(deps, merchant.id, body["id"])
    async with deps.uow(write=False) as uow:
        settlements = await uow.settlements.for_invoice(invoice.id)
    assert invoice.status is not IS.PAID and not settlements, (
        f"invoice is {invoice.status} with amount_paid={invoice.amount_paid} and settlements "
        f"{settlements} before anything was confirmed")
