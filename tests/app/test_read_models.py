"""Read models follow the log live, and a rebuild from the log gives the same result."""

from __future__ import annotations

from krypton.app import ingest, invoices, merchants, relay
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from tests.support.clock import ManualClock


async def test_rebuild_equals_live(container: Container, clock: ManualClock) -> None:
    deps = container.deps
    merchant, _ = await merchants.create_merchant(deps, name="Shop")
    ids = []
    for n in range(6):
        body = (await invoices.create_invoice(
            deps, merchant.id, invoices.InvoiceRequest(amount=str(n + 1), currency="TON"),
            view=lambda i: {"id": i.id})).view
        ids.append(body["id"])
    for n, invoice_id in enumerate(ids[:4]):
        clock.advance(seconds=30)
        await ingest.ingest_transfer(deps, ObservedTransfer(
            Chain.TON, f"tx{n}", 0, "TON", (n + 1) * 10**9, "a", None, 1, 1), invoice_id)
        await relay.run_projections(deps, batch=3)  # live, in small batches between writes
    await invoices.cancel_invoice(deps, merchant.id, ids[4])
    clock.advance(days=1)
    await invoices.expire_due(deps)
    await relay.catch_up(deps)
    async with deps.uow(write=False) as uow:
        live = await uow.read_models.snapshot()
        summary = await uow.read_models.invoice_summary(merchant.id)
        revenue = await uow.read_models.merchant_summary(merchant.id)
    assert summary == {"pending": 0, "confirming": 0, "paid": 4, "cancelled": 1, "expired": 1}
    assert revenue[0]["gross"] == 10 * 10**9 and revenue[0]["count"] == 4
    replayed = await relay.rebuild(deps, batch=7)
    assert replayed > 0
    async with deps.uow(write=False) as uow:
        assert await uow.read_models.snapshot() == live
