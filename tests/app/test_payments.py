"""How observed transfers move invoices, payments, settlements and the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from krypton.app import ingest, invoices, merchants
from krypton.app.deps import Deps
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.errors import Conflict
from krypton.domain.payment import ObservedTransfer
from tests.support.clock import ManualClock

TON = 1_000_000_000  # nanotons in one TON
_tx = iter(range(1, 1_000_000))


@dataclass
class Shop:
    deps: Deps
    merchant_id: str
    clock: ManualClock

    async def invoice(self, amount: str = "10", currency: str = "TON", **kw: Any) -> str:
        body = (await invoices.create_invoice(
            self.deps, self.merchant_id, invoices.InvoiceRequest(amount=amount, currency=currency, **kw),
            view=lambda i: {"id": i.id})).view
        return str(body["id"])

    async def pay(self, invoice_id: str | None, units: int, *, asset: str = "TON",
                  confirmations: int = 1, tx: str | None = None,
                  block_time: datetime | None = None) -> ingest.IngestResult:
        chain = Chain.TRON if asset == "USDT_TRC20" else Chain.TON
        transfer = ObservedTransfer(chain, tx or f"tx-{next(_tx)}", 0, asset, units, "dest", None,
                                    100, confirmations, block_time=block_time)
        return await ingest.ingest_transfer(self.deps, transfer, invoice_id)

    async def state(self, invoice_id: str) -> tuple[str, str | None, int]:
        i = await invoices.get_invoice(self.deps, self.merchant_id, invoice_id)
        return i.status.value, i.exception.value if i.exception else None, i.amount_paid

    async def ledger(self) -> dict[tuple[str, str], int]:
        async with self.deps.uow(write=False) as uow:
            balances = await uow.ledger.balances()
        for asset in {a for _, a in balances}:
            assert sum(v for (_, a), v in balances.items() if a == asset) == 0
        return balances

    async def events(self) -> list[str]:
        async with self.deps.uow(write=False) as uow:
            return [e.type for e in await uow.events.read((0, 0), 1000)]

    async def settlement(self, invoice_id: str) -> tuple[int, int, int] | None:
        async with self.deps.uow(write=False) as uow:
            found = await uow.settlements.for_invoice(invoice_id)
        assert len(found) <= 1, "use settlements() for an invoice settled more than once"
        return (found[0].gross, found[0].fee, found[0].net) if found else None

    async def settlements(self, invoice_id: str) -> list[tuple[int, int, int]]:
        async with self.deps.uow(write=False) as uow:
            return [(s.gross, s.fee, s.net) for s in await uow.settlements.for_invoice(invoice_id)]


@pytest.fixture
async def shop(container: Container, clock: ManualClock) -> Shop:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop", fee_bps=150)
    return Shop(container.deps, merchant.id, clock)


async def test_exact_payment_settles_with_fee_and_events(shop: Shop) -> None:
    inv = await shop.invoice("10")
    await shop.pay(inv, 10 * TON)
    assert await shop.state(inv) == ("paid", None, 10 * TON)
    assert await shop.settlement(inv) == (10 * TON, 150_000_000, 9_850_000_000)
    balances = await shop.ledger()
    assert balances[(f"merchant:{shop.merchant_id}:TON", "TON")] == 9_850_000_000
    assert balances[("fees:TON", "TON")] == 150_000_000
    assert await shop.events() == [
        "merchant.created", "invoice.created", "payment.detected", "payment.confirming",
        "payment.confirmed", "invoice.confirming", "invoice.paid", "settlement.created"]


async def test_underpaid_then_topped_up(shop: Shop) -> None:
    inv = await shop.invoice("10")
    await shop.pay(inv, 4 * TON)
    assert await shop.state(inv) == ("pending", "underpaid", 4 * TON)
    assert await shop.settlement(inv) is None
    await shop.pay(inv, 6 * TON)
    assert await shop.state(inv) == ("paid", None, 10 * TON)
    assert await shop.settlement(inv) == (10 * TON, 150_000_000, 9_850_000_000)


async def test_overpaid_settles_everything_received(shop: Shop) -> None:
    inv = await shop.invoice("10")
    await shop.pay(inv, 12 * TON)
    assert await shop.state(inv) == ("paid", "overpaid", 12 * TON)
    assert await shop.settlement(inv) == (12 * TON, 180_000_000, 11_820_000_000)


async def test_a_second_payment_confirmed_after_settlement_is_settled_too(shop: Shop) -> None:
    """A payer who paid twice: both seen while the invoice waited, the second confirmed
    only after the first had paid and settled it. Its money reaches the merchant as well."""
    inv = await shop.invoice("500", "USDT", methods=["usdt_trc20"])
    await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=0, tx="first")
    await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=0, tx="second")
    await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=19, tx="first")
    assert await shop.state(inv) == ("paid", "overpaid", 500_000_000)
    assert await shop.settlements(inv) == [(500_000_000, 7_500_000, 492_500_000)]
    result = await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=19, tx="second")
    assert result.outcome == "updated"
    assert await shop.state(inv) == ("paid", "overpaid", 1_000_000_000)
    assert await shop.settlements(inv) == [(500_000_000, 7_500_000, 492_500_000)] * 2
    balances = await shop.ledger()
    assert balances[(f"merchant:{shop.merchant_id}:USDT_TRC20", "USDT_TRC20")] == 985_000_000
    assert balances[("fees:USDT_TRC20", "USDT_TRC20")] == 15_000_000
    assert balances.get((f"clearing:{shop.merchant_id}:USDT_TRC20", "USDT_TRC20"), 0) == 0
    assert (await shop.events()).count("settlement.created") == 2


async def test_tron_payment_confirms_once_solidified(shop: Shop) -> None:
    """$500 asks for 12 confirmations by the policy, but Tron calls a transfer final only
    once its block is solidified, 19 blocks on: the payment waits for that, and says so."""
    inv = await shop.invoice("500", "USDT", methods=["usdt_trc20"])
    tx = "tron-tx"
    await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=0, tx=tx)
    assert await shop.state(inv) == ("confirming", None, 0)  # fully paid, awaiting confirmations
    await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=12, tx=tx)
    assert (await shop.state(inv))[0] == "confirming"
    async with shop.deps.uow(write=False) as uow:
        [payment] = await uow.payments.for_invoice(inv)
    assert (payment.confirmations, payment.required_confirmations) == (12, 19)
    await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=19, tx=tx)  # solidified
    assert await shop.state(inv) == ("paid", None, 500_000_000)


async def test_a_due_invoice_is_expired_by_the_payment_itself(shop: Shop) -> None:
    """The expiry worker runs every few seconds: a transfer that arrives before it got to a
    due invoice is judged as late all the same."""
    late = await shop.invoice("10")
    shop.clock.advance(minutes=16)
    await shop.pay(late, 10 * TON)
    assert await shop.state(late) == ("paid", "paid_late", 10 * TON)

    gone = await shop.invoice("10")
    shop.clock.advance(days=2)
    result = await shop.pay(gone, 10 * TON)
    assert (result.outcome, result.reason) == ("unmatched", "invoice_expired")
    assert await shop.state(gone) == ("expired", None, 0)
    events = await shop.events()
    assert events.count("invoice.expired") == 2 and "invoice.paid" in events


async def test_orphaned_payment_returns_invoice_to_pending_and_never_pays(shop: Shop) -> None:
    inv = await shop.invoice("500", "USDT", methods=["usdt_trc20"])
    await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=3, tx="reorged")
    result = await ingest.orphan_transfer(shop.deps, "tron", "reorged", 0)
    assert result.outcome == "updated"
    assert await shop.state(inv) == ("pending", None, 0)
    assert await shop.settlement(inv) is None
    assert await shop.ledger() == {}


async def test_orphaned_payment_coming_back_after_cancel_is_unmatched(shop: Shop) -> None:
    """Reorganised away, the invoice cancelled meanwhile, then the transfer is mined again:
    a cancelled invoice takes no money, so it is kept unmatched (for a refund)."""
    inv = await shop.invoice("500", "USDT", methods=["usdt_trc20"])
    await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=3, tx="reorged")
    await ingest.orphan_transfer(shop.deps, "tron", "reorged", 0)
    await invoices.cancel_invoice(shop.deps, shop.merchant_id, inv)
    back = await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=19, tx="reorged")
    assert (back.outcome, back.reason) == ("unmatched", "invoice_cancelled")
    again = await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=19, tx="reorged")
    assert again.outcome == "unchanged"
    assert await shop.state(inv) == ("cancelled", None, 0)
    async with shop.deps.uow(write=False) as uow:
        (payment,) = await uow.payments.for_invoice(inv)
        (kept,) = await uow.unmatched.list(10)
    assert payment.status.value == "orphaned"
    assert (kept["reason"], kept["invoice_id"], kept["amount"]) == ("invoice_cancelled", inv, 500_000_000)
    assert await shop.ledger() == {}


async def test_orphaned_payment_coming_back_to_a_waiting_invoice_counts_again(shop: Shop) -> None:
    inv = await shop.invoice("500", "USDT", methods=["usdt_trc20"])
    await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=3, tx="reorged")
    await ingest.orphan_transfer(shop.deps, "tron", "reorged", 0)
    back = await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=19, tx="reorged")
    assert back.outcome == "updated"
    assert await shop.state(inv) == ("paid", None, 500_000_000)


async def test_failed_receipt_is_not_paid(shop: Shop) -> None:
    inv = await shop.invoice("500", "USDT", methods=["usdt_trc20"])
    await shop.pay(inv, 500_000_000, asset="USDT_TRC20", confirmations=1, tx="reverted")
    await ingest.fail_transfer(shop.deps, "tron", "reverted", 0)
    assert await shop.state(inv) == ("pending", None, 0)
    assert "payment.failed" in await shop.events()


async def test_paid_late_inside_monitoring_window(shop: Shop) -> None:
    inv = await shop.invoice("10")
    shop.clock.advance(minutes=16)
    assert await invoices.expire_due(shop.deps) == 1
    assert (await shop.state(inv))[0] == "expired"
    await shop.pay(inv, 10 * TON)
    assert await shop.state(inv) == ("paid", "paid_late", 10 * TON)


@pytest.mark.parametrize(("offset", "expected"), [(-1, ("paid", None)), (0, ("paid", "paid_late")),
                                                  (1, ("paid", "paid_late"))])
@pytest.mark.parametrize("expired_first", [True, False])
async def test_lateness_is_judged_by_the_block_time(shop: Shop, offset: int, expected: tuple[str, str | None],
                                                     expired_first: bool) -> None:
    """Seen ten minutes after the expiry (whether or not the expiry worker got there first),
    a transfer made a second before it is on time; at the expiry or after it, late."""
    inv = await shop.invoice("10")
    expires_at = (await invoices.get_invoice(shop.deps, shop.merchant_id, inv)).expires_at
    shop.clock.current = expires_at + timedelta(minutes=10)
    if expired_first:
        assert await invoices.expire_due(shop.deps) == 1
    await shop.pay(inv, 10 * TON, block_time=expires_at + timedelta(seconds=offset))
    assert await shop.state(inv) == (*expected, 10 * TON)


async def test_the_monitoring_window_is_judged_by_the_block_time(shop: Shop) -> None:
    inv = await shop.invoice("10")
    monitor_until = (await invoices.get_invoice(shop.deps, shop.merchant_id, inv)).monitor_until
    shop.clock.current = monitor_until + timedelta(hours=1)
    await invoices.expire_due(shop.deps)
    sent = await shop.pay(inv, 10 * TON, block_time=monitor_until - timedelta(seconds=1))
    assert sent.outcome == "credited"
    assert await shop.state(inv) == ("paid", "paid_late", 10 * TON)
    other = await shop.invoice("10")
    shop.clock.current += timedelta(days=2)
    result = await shop.pay(other, 10 * TON, block_time=shop.clock.current - timedelta(hours=1))
    assert (result.outcome, result.reason) == ("unmatched", "invoice_expired")


async def test_a_block_time_ahead_of_our_clock_counts_as_now(shop: Shop) -> None:
    """A chain clock ahead of ours must not push a payment later than it is seen."""
    inv = await shop.invoice("10")
    await shop.pay(inv, 10 * TON, block_time=shop.clock.now() + timedelta(hours=1))
    assert await shop.state(inv) == ("paid", None, 10 * TON)


async def test_payment_after_monitoring_window_is_kept_unmatched(shop: Shop) -> None:
    inv = await shop.invoice("10")
    shop.clock.advance(hours=25)
    await invoices.expire_due(shop.deps)
    result = await shop.pay(inv, 10 * TON)
    assert (result.outcome, result.reason) == ("unmatched", "invoice_expired")
    assert await shop.state(inv) == ("expired", None, 0)
    async with shop.deps.uow(write=False) as uow:
        assert [u["reason"] for u in await uow.unmatched.list(10)] == ["invoice_expired"]


async def test_dust_is_recorded_and_changes_nothing(shop: Shop) -> None:
    inv = await shop.invoice("10")
    result = await shop.pay(inv, 10)  # 10 nanotons, below the TON dust minimum
    assert result.outcome == "credited"
    assert await shop.state(inv) == ("pending", None, 0)
    async with shop.deps.uow(write=False) as uow:
        payments = await uow.payments.for_invoice(inv)
        invoice = await uow.invoices.get(inv)
    assert [p.dust for p in payments] == [True]
    assert invoice is not None and invoice.asset is None
    assert await shop.ledger() == {}


async def test_same_transfer_twice_credits_once(shop: Shop) -> None:
    inv = await shop.invoice("10")
    first = await shop.pay(inv, 6 * TON, tx="dup")
    second = await shop.pay(inv, 6 * TON, tx="dup")
    assert (first.outcome, second.outcome) == ("credited", "unchanged")
    assert await shop.state(inv) == ("pending", "underpaid", 6 * TON)


async def test_wrong_asset_after_first_payment_is_unmatched(shop: Shop) -> None:
    inv = await shop.invoice("10", "USD", methods=["ton", "usdt_ton"])
    await shop.pay(inv, TON)  # $5 at the static rate: the invoice is now paid in TON
    result = await shop.pay(inv, 5_000_000, asset="USDT_TON")
    assert (result.outcome, result.reason) == ("unmatched", "wrong_asset")


async def test_unknown_invoice_is_unmatched_and_never_credited_elsewhere(shop: Shop) -> None:
    result = await shop.pay(None, 10 * TON)
    assert (result.outcome, result.reason) == ("unmatched", "no_matching_invoice")
    assert "transfer.unmatched" in await shop.events()
    assert await shop.ledger() == {}


async def test_underpayment_tolerance(container: Container) -> None:
    merchant, _ = await merchants.create_merchant(container.deps, name="Tolerant",
                                                  underpayment_tolerance_bps=100)
    shop = Shop(container.deps, merchant.id, ManualClock())
    inv = await shop.invoice("10")
    await shop.pay(inv, 9_900_000_000)  # 1 % short, tolerated
    assert await shop.state(inv) == ("paid", "underpaid", 9_900_000_000)


async def test_cancel_only_pending_without_payments(shop: Shop) -> None:
    inv = await shop.invoice("10")
    await invoices.cancel_invoice(shop.deps, shop.merchant_id, inv)
    assert (await shop.state(inv))[0] == "cancelled"
    with pytest.raises(Conflict):
        await invoices.cancel_invoice(shop.deps, shop.merchant_id, inv)
    partly = await shop.invoice("10")
    await shop.pay(partly, TON)
    with pytest.raises(Conflict):
        await invoices.cancel_invoice(shop.deps, shop.merchant_id, partly)
    assert (await shop.pay(inv, 10 * TON)).reason == "invoice_cancelled"


async def test_usd_price_converts_up_at_locked_rate(shop: Shop) -> None:
    inv = await shop.invoice("9.99", "USD", methods=["ton", "stars"])
    invoice = await invoices.get_invoice(shop.deps, shop.merchant_id, inv)
    amounts = {o.asset: (o.amount, o.rate) for o in invoice.options}
    assert amounts["TON"] == (1_998_000_000, "5.00")
    assert amounts["XTR"] == (769, "0.013")  # 768.46... rounded up
