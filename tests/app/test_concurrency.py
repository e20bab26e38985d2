"""Several processes writing at once: what one transfer, one fee collector and one Tron
deposit index come to when concurrent units of work (separate connections, as separate
`krypton serve` processes would hold) race for them. On PostgreSQL they really run at the
same time; on SQLite they queue for the one writer, and the outcome must be the same."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import TonAddress
from krypton.app import collectors, ingest, invoices, merchants
from krypton.app.deps import Deps
from krypton.app.ports import UnitOfWork
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.collector import CollectorStatus
from krypton.domain.payment import ObservedTransfer
from krypton.workers.watch import ChainWatch
from tests.support.clock import ManualClock
from tests.support.devnet_rig import DevnetRig

TON = 10**9
USDT = 10**6
RACERS = 6  # concurrent units of work per contested thing
WALLET = TonAddress(0, bytes([0x33]) * 32)


@pytest.fixture
async def rig(container: Container, clock: ManualClock) -> AsyncIterator[DevnetRig]:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop", fee_bps=150)
    assert container.devnet is not None
    chains = container.chains()
    yield DevnetRig(container, container.devnet, ChainWatch(container.deps, chains), merchant.id)
    await chains.aclose()


def _transfer(tx_id: str, units: int) -> ObservedTransfer:
    return ObservedTransfer(Chain.TON, tx_id, 0, "TON", units, "dest", None, 100, 1)


async def _where(deps: Deps, transfer: ObservedTransfer) -> tuple[bool, bool]:
    """Whether the transfer's key is filed (as a payment, as unmatched)."""
    async with deps.uow(write=False) as uow:
        return (await uow.payments.by_key(*transfer.key) is not None,
                await uow.unmatched.exists(*transfer.key))


async def _event_types(deps: Deps) -> list[str]:
    async with deps.uow(write=False) as uow:
        return [e.type for e in await uow.events.read((0, 0), 10_000)]


async def test_one_transfer_ingested_at_once_is_filed_once(rig: DevnetRig) -> None:
    deps = rig.container.deps
    invoice = await rig.invoice("10", "TON", ["ton"])
    transfer = _transfer("tx-contested", 10 * TON)
    results = await asyncio.gather(*(ingest.ingest_transfer(deps, transfer, invoice.id)
                                      for _ in range(RACERS)))
    assert sorted(r.outcome for r in results) == ["credited"] + ["unchanged"] * (RACERS - 1)
    assert await _where(deps, transfer) == (True, False)
    types = await _event_types(deps)
    assert types.count("payment.detected") == 1 and "transfer.unmatched" not in types
    assert (await invoices.get_invoice(deps, rig.merchant_id, invoice.id)).status.value == "paid"
    await rig.balances()


async def test_many_transfers_to_one_invoice_each_filed_once(rig: DevnetRig) -> None:
    """Each of several full payments, each seen by several watchers at once: one pays the
    invoice, the rest are kept as unmatched, and no key lands in both tables."""
    deps = rig.container.deps
    invoice = await rig.invoice("10", "TON", ["ton"])
    transfers = [_transfer(f"tx-many-{n}", 10 * TON) for n in range(RACERS)]
    await asyncio.gather(*(ingest.ingest_transfer(deps, t, invoice.id)
                           for _ in range(3) for t in transfers))
    filed = [await _where(deps, t) for t in transfers]
    assert all(paid != unmatched for paid, unmatched in filed)
    assert [paid for paid, _ in filed].count(True) == 1
    types = await _event_types(deps)
    assert types.count("payment.detected") == 1
    assert types.count("transfer.unmatched") == RACERS - 1
    assert types.count("settlement.created") == 1
    await rig.balances()


async def test_a_collector_activated_by_two_checks_at_once_activates_once(
        rig: DevnetRig, clock: ManualClock) -> None:
    deps = rig.container.deps
    _, plan = await collectors.prepare(deps, rig.merchant_id, destination=WALLET.raw)
    rig.devnet.ton.deploy_collector(Cell.one_from_boc(base64.b64decode(plan.state_init)),
                                    plan.deploy_amount)
    rig.devnet.produce("ton")
    chain = rig.watchers.chains.collectors
    activated = await asyncio.gather(*(collectors.activate(deps, chain, rig.merchant_id)
                                       for _ in range(RACERS)))
    assert {c.status for c in activated} == {CollectorStatus.ACTIVE}
    assert (await _event_types(deps)).count("fee_collector.activated") == 1
    clock.advance(seconds=5)
    assert await collectors.activate_deployed(deps, chain) == 0  # nothing left pending


@dataclasses.dataclass
class HeldCommit:
    """A unit-of-work factory whose write units stop just before COMMIT until released: the
    invoice creation that took its deposit index first commits last."""

    make: Callable[..., Any]
    reached: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    release: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def __call__(self, *, write: bool = True) -> UnitOfWork:
        uow = self.make(write=write)
        if write:
            commit = uow.commit

            async def held() -> None:
                self.reached.set()
                await self.release.wait()
                await commit()
            uow.commit = held
        return uow  # type: ignore[no-any-return]


async def test_deposits_committed_out_of_index_order_are_all_watched_and_paid(
        rig: DevnetRig) -> None:
    if rig.container.db.dialect != "postgresql":
        pytest.skip("SQLite has one writer: invoice creations cannot overlap")
    deps = rig.container.deps
    held = HeldCommit(deps.uow)
    slow = DevnetRig(dataclasses.replace(rig.container, deps=dataclasses.replace(deps, uow=held)),
                     rig.devnet, rig.watchers, rig.merchant_id)
    first_task = asyncio.create_task(slow.invoice("50", "USDT", ["usdt_trc20"]))
    await asyncio.wait_for(held.reached.wait(), 30)
    # A deposit index must not be held until COMMIT: the second creation goes ahead (the
    # timeout only keeps a regression from hanging the run).
    second = await asyncio.wait_for(rig.invoice("50", "USDT", ["usdt_trc20"]), 30)
    await rig.watchers.poll()  # the watcher sees the second, higher, index first
    held.release.set()
    first = await first_task
    assert first.tron_index is not None and second.tron_index is not None
    assert first.tron_index < second.tron_index
    for invoice in (first, second):
        assert invoice.tron_address is not None
        rig.devnet.tron.transfer("alice", invoice.tron_address, 50 * USDT)
    rig.devnet.produce("tron", 25)
    await rig.watchers.poll()
    await rig.watchers.poll()
    for invoice in (first, second):
        assert (await invoices.get_invoice(deps, rig.merchant_id, invoice.id)).status.value == "paid"
    await rig.balances()
