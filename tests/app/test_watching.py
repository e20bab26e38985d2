"""app/watching.py with a scripted ChainReader: what the use cases do with a reader's output,
whatever chain is behind it (the real readers run against the devnet in tests/workers)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from krypton.app import invoices, merchants, watching
from krypton.app.ports import ChainRead, TransferKey, Watch
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.invoice import Invoice
from krypton.domain.payment import ObservedTransfer

TON = 10**9


class ScriptedReader:
    """Answers each read with the next scripted page; raises once the script runs out."""

    chain = "ton"
    cursor_name = "test:scripted"
    rechecks = True

    def __init__(self, pages: list[ChainRead], recheck: ChainRead | None = None) -> None:
        self.pages = pages
        self.cursors: list[str | None] = []
        self.watches: list[Watch] = []
        self.answer = recheck or ChainRead()
        self.rechecked: list[TransferKey] = []

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        self.cursors.append(cursor)
        self.watches.append(watch)
        if not self.pages:
            raise ConnectionError("provider down")
        return self.pages.pop(0)

    async def recheck(self, unfinished: Sequence[TransferKey]) -> ChainRead:
        self.rechecked.extend(unfinished)
        return self.answer


async def _invoice(container: Container) -> Invoice:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    created = await invoices.create_invoice(container.deps, merchant.id,
                                            invoices.InvoiceRequest(amount="10", currency="TON"))
    assert created.invoice is not None
    return created.invoice


def _paying(invoice: Invoice, tx: str, confirmations: int = 1, final: bool = True) -> ObservedTransfer:
    return ObservedTransfer(Chain.TON, tx, 0, "TON", 10 * TON, invoice.ton_address or "",
                            invoice.memo, 7, confirmations, final=final)


async def _cursor(container: Container) -> str | None:
    async with container.deps.uow(write=False) as uow:
        return await uow.cursors.get(ScriptedReader.cursor_name)


async def _statuses(container: Container, invoice: Invoice) -> list[str]:
    async with container.deps.uow(write=False) as uow:
        return [p.status.value for p in await uow.payments.for_invoice(invoice.id)]


async def test_the_cursor_moves_only_after_its_page_was_ingested(container: Container) -> None:
    invoice = await _invoice(container)
    reader = ScriptedReader([ChainRead(seen=[_paying(invoice, "tx-1")], cursor="1", more=True,
                                       handled=1)])
    with pytest.raises(ConnectionError):  # the second page fails: the first one is kept
        await watching.follow(container.deps, reader)
    assert await _cursor(container) == "1"
    assert await _statuses(container, invoice) == ["confirmed"]
    # The next round starts after page one; reading page one again changes nothing.
    reader.pages = [ChainRead(seen=[_paying(invoice, "tx-1")], cursor="2", handled=1)]
    assert await watching.follow(container.deps, reader) == 1
    assert reader.cursors == [None, "1", "1"]
    assert await _cursor(container) == "2"
    assert await _statuses(container, invoice) == ["confirmed"]


async def test_a_read_without_a_cursor_keeps_the_stored_one(container: Container) -> None:
    reader = ScriptedReader([ChainRead(cursor="5"), ChainRead(handled=0)])
    await watching.follow(container.deps, reader)
    await watching.follow(container.deps, reader)
    assert await _cursor(container) == "5"


async def test_rejected_transfers_are_kept_unmatched_with_their_reason(container: Container) -> None:
    invoice = await _invoice(container)
    fake = ObservedTransfer(Chain.TON, "tx-fake", 0, "COUNTERFEIT", 10, invoice.ton_address or "",
                            invoice.memo, 7, 1)
    await watching.follow(container.deps, ScriptedReader([ChainRead(rejected=[(fake, "counterfeit_token")])]))
    async with container.deps.uow(write=False) as uow:
        assert [u["reason"] for u in await uow.unmatched.list(10)] == ["counterfeit_token"]
    assert await _statuses(container, invoice) == []


async def test_the_reader_is_told_which_transactions_are_known(container: Container) -> None:
    invoice = await _invoice(container)
    reader = ScriptedReader([ChainRead(seen=[_paying(invoice, "tx-1")]), ChainRead()])
    await watching.follow(container.deps, reader)
    await watching.follow(container.deps, reader)
    known = reader.watches[-1].known
    assert known is not None
    assert await known(["tx-1", "tx-2"]) == {"tx-1"}


async def test_recheck_orphans_only_payments_counted_in_a_block(container: Container) -> None:
    invoice = await _invoice(container)
    reader = ScriptedReader([ChainRead(seen=[_paying(invoice, "tx-seen", confirmations=0, final=False),
                                             _paying(invoice, "tx-mined", confirmations=1, final=False)])],
                            recheck=ChainRead(vanished=[("tx-seen", 0), ("tx-mined", 0)]))
    await watching.follow(container.deps, reader)
    assert sorted(await _statuses(container, invoice)) == ["confirming", "detected"]
    assert await watching.recheck(container.deps, reader) == 1
    assert sorted(reader.rechecked) == [("tx-mined", 0), ("tx-seen", 0)]
    assert sorted(await _statuses(container, invoice)) == ["detected", "orphaned"]
