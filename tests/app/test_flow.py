"""An invoice paid end to end through the use cases, on every database."""

from __future__ import annotations

from krypton.app import ingest, invoices, relay
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from tests.support.clock import ManualClock


async def test_exact_ton_payment_pays_and_settles(container: Container, merchant: IssuedKey,
                                                   clock: ManualClock) -> None:
    deps = container.deps
    body = (await invoices.create_invoice(
        deps, merchant.merchant_id, invoices.InvoiceRequest(amount="10", currency="TON"),
        view=lambda i: {"id": i.id})).view
    transfer = ObservedTransfer(Chain.TON, "tx-1", 0, "TON", 10_000_000_000, "addr", None, 7, 1)
    first = await ingest.ingest_transfer(deps, transfer, body["id"])
    again = await ingest.ingest_transfer(deps, transfer, body["id"])
    assert (first.outcome, again.outcome) == ("credited", "unchanged")
    invoice = await invoices.get_invoice(deps, merchant.merchant_id, body["id"])
    assert (invoice.status.value, invoice.amount_paid) == ("paid", 10_000_000_000)
    async with deps.uow(write=False) as uow:
        (settlement,) = await uow.settlements.for_invoice(invoice.id)
        balances = await uow.ledger.balances()
    assert (settlement.gross, settlement.fee, settlement.net) == (10_000_000_000, 100_000_000, 9_900_000_000)
    assert balances[(f"merchant:{merchant.merchant_id}:TON", "TON")] == 9_900_000_000
    assert balances[("fees:TON", "TON")] == 100_000_000
    assert sum(balances.values()) == 0
    assert await relay.catch_up(deps) > 0
