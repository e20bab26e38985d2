"""The business series of /metrics, counted from the event log by the "metrics" consumer:
an invoice paid on the devnet's terms moves them exactly as the ledger says, each event is
counted once, the fee check agrees with the fee rule and catches a wrong fee."""

from __future__ import annotations

import contextlib
import dataclasses

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from krypton.adapters.metrics.business import BusinessMetrics, PrometheusTelemetry, fee_matches
from krypton.app import ingest, invoices
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from krypton.domain.settlement import settle
from tests.support.clock import ManualClock


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def histogram(name: str, **labels: str) -> tuple[float, float]:
    return value(f"{name}_count", **labels), value(f"{name}_sum", **labels)


async def test_a_paid_invoice_moves_the_business_series_once(
        container: Container, merchant: IssuedKey, clock: ManualClock) -> None:
    deps = container.deps
    counter = BusinessMetrics(deps)
    await counter.step()  # whatever earlier events this database holds (the merchant's)
    before = {
        "paid": value("krypton_invoices_total", status="paid"),
        "created": value("krypton_invoices_total", status="created"),
        "confirmed": value("krypton_payments_total", chain="ton", status="confirmed"),
        "settled": value("krypton_settlement_attempts_total", outcome="settled"),
        "fees": value("krypton_fees_booked_total", asset="TON"),
        "mismatch": value("krypton_fee_mismatches_total", asset="TON"),
        "confirmation": histogram("krypton_payment_confirmation_seconds", chain="ton"),
        "delay": histogram("krypton_settlement_delay_seconds"),
    }
    invoice = (await invoices.create_invoice(
        deps, merchant.merchant_id, invoices.InvoiceRequest(amount="10", currency="TON"),
        view=lambda i: {"id": i.id})).view
    seen = ObservedTransfer(Chain.TON, "tx-m1", 0, "TON", 10_000_000_000, "addr", None, 7, 0,
                            final=False)
    await ingest.ingest_transfer(deps, seen, invoice["id"])
    clock.advance(seconds=42)
    await ingest.ingest_transfer(deps, dataclasses.replace(seen, confirmations=1, final=True),
                                 invoice["id"])

    assert await counter.step() > 0
    assert await counter.step() == 0  # nothing twice
    assert value("krypton_invoices_total", status="created") == before["created"] + 1
    assert value("krypton_invoices_total", status="paid") == before["paid"] + 1
    assert value("krypton_payments_total", chain="ton", status="confirmed") == before["confirmed"] + 1
    assert value("krypton_settlement_attempts_total", outcome="settled") == before["settled"] + 1
    assert value("krypton_fees_booked_total", asset="TON") == before["fees"] + 100_000_000
    assert value("krypton_fee_mismatches_total", asset="TON") == before["mismatch"]
    count, total = histogram("krypton_payment_confirmation_seconds", chain="ton")
    assert (count, total) == (before["confirmation"][0] + 1, before["confirmation"][1] + 42)
    # Confirmed and settled in one transaction: no delay at all.
    assert histogram("krypton_settlement_delay_seconds") == (before["delay"][0] + 1, before["delay"][1])


async def test_a_failed_settlement_is_counted(container: Container, merchant: IssuedKey) -> None:
    """The transaction that would settle a final transfer rolls back: no event says so, the
    use case reports it."""

    class Broken:
        def __call__(self, *, write: bool = True) -> object:
            raise ConnectionError("database away")

    deps = dataclasses.replace(container.deps, uow=Broken(), telemetry=PrometheusTelemetry())  # type: ignore[arg-type]
    before = value("krypton_settlement_attempts_total", outcome="failed")
    final = ObservedTransfer(Chain.TON, "tx-f", 0, "TON", 1, "addr", None, 7, 1)
    for transfer in (final, dataclasses.replace(final, final=False)):
        with contextlib.suppress(ConnectionError):
            await ingest.ingest_transfer(deps, transfer, "inv_x")
    assert value("krypton_settlement_attempts_total", outcome="failed") == before + 1


def _event(settlement: object) -> dict[str, object]:
    s = settlement
    return {"asset": "TON", "gross": str(s.gross), "fee": str(s.fee), "net": str(s.net),  # type: ignore[attr-defined]
            "fee_bps": s.fee_bps, "forwarded": str(s.forwarded),  # type: ignore[attr-defined]
            "collector_fee": str(s.collector_fee)}  # type: ignore[attr-defined]


@given(gross=st.integers(0, 10**18), bps=st.integers(0, 10_000),
       on_chain=st.none() | st.tuples(st.integers(0, 10**15), st.integers(0, 10**13)))
def test_the_fee_check_agrees_with_the_fee_rule(gross: int, bps: int,
                                                on_chain: tuple[int, int] | None) -> None:
    from datetime import UTC, datetime

    from krypton.domain.fees import FeeSplit

    chain = None if on_chain is None else FeeSplit(on_chain[0] + on_chain[1], on_chain[1], on_chain[0])
    settlement = settle("set_1", "mer_1", "inv_1", "TON", gross, bps, datetime(2026, 1, 1, tzinfo=UTC),
                        on_chain=chain, collector_address="0:ab" if chain else None)
    data = _event(settlement)
    assert fee_matches(data)
    assert not fee_matches({**data, "fee": str(settlement.fee + 1)})
    assert not fee_matches({**data, "net": str(settlement.net - 1)})
