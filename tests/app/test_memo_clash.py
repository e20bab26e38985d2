"""A memo drawn twice is drawn again, not a failed invoice (on every database)."""

from __future__ import annotations

import dataclasses

from krypton.adapters.system import RandomIds
from krypton.app import invoices
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container


class SameFirstMemo(RandomIds):
    """Hands out the same memo bytes twice (as a real clash would), then random ones."""

    def __init__(self) -> None:
        self.repeats = [b"\x00" * 8, b"\x00" * 8]

    def random_bytes(self, n: int) -> bytes:
        return self.repeats.pop(0) if self.repeats else super().random_bytes(n)


async def test_a_memo_already_taken_is_drawn_again(container: Container,
                                                   merchant: IssuedKey) -> None:
    deps = dataclasses.replace(container.deps, ids=SameFirstMemo())
    created = [await invoices.create_invoice(
        deps, merchant.merchant_id, invoices.InvoiceRequest(amount="1", currency="TON"),
        view=lambda i: i) for _ in range(2)]
    first, second = (c.view for c in created)
    assert first.memo == "KR-33333333"  # the repeated draw
    assert second.memo not in (None, first.memo)
    stored = await invoices.get_invoice(deps, merchant.merchant_id, second.id)
    assert stored.memo == second.memo
