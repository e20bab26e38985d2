"""Which invoice a transfer pays (app/matching.py): a memo anywhere in the comment, and a
comment naming two memos kept as unmatched with that reason."""

from __future__ import annotations

from krypton.app import invoices, matching, merchants
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.invoice import Invoice
from krypton.domain.payment import ObservedTransfer

TON = 10**9


async def _invoice(container: Container, merchant_id: str) -> Invoice:
    created = await invoices.create_invoice(container.deps, merchant_id,
                                            invoices.InvoiceRequest(amount="10", currency="TON"))
    assert created.invoice is not None and created.invoice.memo is not None
    return created.invoice


def _paying(invoice: Invoice, tx: str, comment: str) -> ObservedTransfer:
    return ObservedTransfer(Chain.TON, tx, 0, "TON", 10 * TON, invoice.ton_address or "", comment, 7, 1)


async def test_memo_in_a_sentence_pays_and_two_memos_are_ambiguous(container: Container) -> None:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    first, second = await _invoice(container, merchant.id), await _invoice(container, merchant.id)
    assert first.memo is not None and second.memo is not None
    transfers = [_paying(first, "tx-1", f"Order {first.memo.lower()} thanks"),
                 _paying(first, "tx-2", f"{first.memo} {second.memo}"),
                 _paying(first, "tx-3", f"{second.memo}, sorry: {second.memo}"),
                 _paying(first, "tx-4", "no memo at all")]
    async with container.deps.uow(write=False) as uow:
        assert await matching.match(uow, transfers) == [
            (first.id, None), (None, "ambiguous_memo"), (second.id, None), (None, "no_matching_invoice")]
        assert await matching.find_invoices(uow, transfers) == [first.id, None, second.id, None]
    results = await matching.receive_all(container.deps, transfers)
    assert [(r.outcome, r.reason) for r in results] == [
        ("credited", None), ("unmatched", "ambiguous_memo"), ("credited", None),
        ("unmatched", "no_matching_invoice")]
    async with container.deps.uow(write=False) as uow:
        kept = {u["tx_id"]: u["reason"] for u in await uow.unmatched.list(10)}
    assert kept == {"tx-2": "ambiguous_memo", "tx-4": "no_matching_invoice"}
