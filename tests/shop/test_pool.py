"""The orchestrator's continuous pool (app/fulfilment.Pool), on both databases, with a
supplier whose purchases wait on the test's gates: an order that becomes due while a slow
one is in flight starts at once, an order is never advanced twice at once, one order's
exception stops no other, and the pool stops (its orders in flight cancelled, nothing lost)
when the lease is lost or the worker stops.

Nothing here measures time: the test opens the gates and waits (with a give-up limit that
only stops a hung test) for states the pool must reach."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

import pytest

from krypton.app import fulfilment, shop
from krypton.app.ports import SupplierOrder, SupplierQuote
from krypton.bootstrap import Container
from krypton.domain.order import OrderStatus
from krypton.workers import loops
from krypton.workers.watch import ChainWatch
from tests.shop.conftest import CHEAP
from tests.shop.support import FakeSigner, FakeSupplier, ShopRig


class GatedSupplier(FakeSupplier):
    """A supplier whose purchase of a gated order waits until the test opens its gate."""

    def __init__(self, name: str, nano_per_star: int) -> None:
        super().__init__(name, nano_per_star)
        self.gates: dict[str, asyncio.Event] = {}
        self.waiting: set[str] = set()  # purchases waiting at their gate now
        self.cancelled: list[str] = []  # purchases cancelled while waiting
        self.broken: set[str] = set()  # purchases raising a bug (not a SupplierError)

    async def quote(self, quantity: int, product: str = "stars") -> SupplierQuote:
        return await super().quote(quantity)  # the port's signature (Stars only here)

    async def purchase(self, order_id: str, recipient: str, quantity: int,
                       quote: SupplierQuote) -> SupplierOrder:
        if order_id in self.broken:
            self.purchase_calls.append(order_id)
            raise RuntimeError(f"a bug while buying {order_id}")
        gate = self.gates.get(order_id)
        if gate is not None:
            self.waiting.add(order_id)
            try:
                await gate.wait()
            except asyncio.CancelledError:
                self.cancelled.append(order_id)
                raise
            finally:
                self.waiting.discard(order_id)
        return await super().purchase(order_id, recipient, quantity, quote)


@pytest.fixture
def gated() -> GatedSupplier:
    return GatedSupplier("gated", CHEAP)


@pytest.fixture
async def pool_rig(container: Container, gated: GatedSupplier) -> AsyncIterator[ShopRig]:
    kit = container.shop()
    assert kit is not None
    kit = dataclasses.replace(kit, suppliers=[gated], signer=FakeSigner([gated]))
    chains = container.chains()
    yield ShopRig(container, kit, ChainWatch(container.deps, chains))
    await chains.aclose()


def _pool(rig: ShopRig, **options: float) -> fulfilment.Pool:
    # Short polls and slices: the test waits for states, a short poll only makes it quicker.
    settings = {"poll_seconds": 0.01, "slice_seconds": 0.05, **options}
    return fulfilment.Pool(rig.deps, rig.kit, **settings)  # type: ignore[arg-type]


async def until(done: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until done(); the limit only stops a hung test, it measures nothing."""
    for _ in range(2000):
        if await done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


async def _running(pool: fulfilment.Pool) -> None:
    try:
        while True:
            await pool.step()
    finally:
        await pool.stop()


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _order(rig: ShopRig, buyer: str) -> shop.Order:
    return await shop.create_order(rig.deps, rig.kit, buyer=buyer, recipient="durov_fan", quantity=50)


def _status(rig: ShopRig, order_id: str, *statuses: OrderStatus) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await rig.order(order_id)).status in statuses
    return check


async def test_an_order_paid_while_a_slow_one_is_in_flight_is_delivered_meanwhile(
        pool_rig: ShopRig, gated: GatedSupplier) -> None:
    rig = pool_rig
    slow, quick = await _order(rig, "tg:1"), await _order(rig, "tg:2")
    gated.gates[slow.id] = asyncio.Event()
    pool = _pool(rig)
    runner = asyncio.create_task(_running(pool))
    try:
        await rig.pay(slow)

        async def slow_waits() -> bool:
            return slow.id in gated.waiting
        await until(slow_waits, "the slow order to wait at its supplier")
        await rig.pay(quick)  # due now: the consumer makes it paid while `slow` is in flight
        await until(_status(rig, quick.id, OrderStatus.FULFILLING, OrderStatus.DELIVERED),
                    "the new order to be bought")

        async def quick_committed() -> bool:
            order = await rig.order(quick.id)
            return order.supplier_request is not None and quick.id not in pool.in_flight
        await until(quick_committed, "the new order to be committed and paid")
        rig.clock.advance(seconds=60)  # its follow-up is due: the supplier saw the payment
        pool.poke()
        await until(_status(rig, quick.id, OrderStatus.DELIVERED), "the new order's delivery")
        # All the while the slow order waited at its supplier, never finished, never restarted.
        assert gated.waiting == {slow.id} and pool.in_flight == {slow.id}
        assert (await rig.order(slow.id)).status in (OrderStatus.PAID, OrderStatus.FULFILLING)

        gated.gates[slow.id].set()
        await until(lambda: _settled(rig, pool, slow.id), "the slow order to be paid")
        rig.clock.advance(seconds=60)
        pool.poke()
        await until(_status(rig, slow.id, OrderStatus.DELIVERED), "the slow order's delivery")
    finally:
        await _stop(runner)
    assert gated.purchase_calls == [quick.id, slow.id]
    signer = rig.kit.signer
    assert isinstance(signer, FakeSigner)
    assert [r.request_id for r in signer.sent] == [quick.id, slow.id]  # each paid once


def _looks_after(pool: fulfilment.Pool, looks: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return pool.looks > looks
    return check


async def _committed(rig: ShopRig, order_id: str) -> bool:
    return (await rig.order(order_id)).supplier_request is not None


async def _settled(rig: ShopRig, pool: fulfilment.Pool, order_id: str) -> bool:
    """Committed and paid, its advance over: its follow-up waits for the clock."""
    return order_id not in pool.in_flight and await _committed(rig, order_id)


async def test_an_order_is_never_advanced_twice_at_once(
        pool_rig: ShopRig, gated: GatedSupplier, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = pool_rig
    order = await _order(rig, "tg:1")
    gated.gates[order.id] = asyncio.Event()
    real = fulfilment.advance
    active: set[str] = set()
    overlaps: list[str] = []
    calls: list[str] = []

    async def watched(deps: object, kit: shop.ShopKit, order_id: str) -> shop.Order:
        calls.append(order_id)
        if order_id in active:
            overlaps.append(order_id)
        active.add(order_id)
        try:
            return await real(deps, kit, order_id)  # type: ignore[arg-type]
        finally:
            active.discard(order_id)

    monkeypatch.setattr(fulfilment, "advance", watched)
    pool = _pool(rig)
    runner = asyncio.create_task(_running(pool))
    try:
        await rig.pay(order)

        async def waiting() -> bool:
            return order.id in gated.waiting
        await until(waiting, "the order to wait at its supplier")
        # The database says it is due all along (its next attempt is its payment's time) and
        # the pool looks again and again, the clock moving on: it stays one advance.
        for _ in range(5):
            rig.clock.advance(seconds=60)
            pool.poke()
            await until(_looks_after(pool, pool.looks), "the pool to look for due orders again")
        assert calls == [order.id] and pool.in_flight == {order.id}
        gated.gates[order.id].set()
        await until(lambda: _settled(rig, pool, order.id), "the order to be paid")
        rig.clock.advance(seconds=60)  # its follow-up is due
        pool.poke()
        await until(_status(rig, order.id, OrderStatus.DELIVERED), "the order's delivery")
    finally:
        await _stop(runner)
    assert overlaps == []
    assert gated.purchase_calls == [order.id]


async def test_one_orders_exception_stops_no_other_and_it_rests_before_another_try(
        pool_rig: ShopRig, gated: GatedSupplier) -> None:
    rig = pool_rig
    bad, good = await _order(rig, "tg:1"), await _order(rig, "tg:2")
    gated.broken.add(bad.id)
    pool = _pool(rig, error_rest=3_600)  # a bug: not tried again within the test
    runner = asyncio.create_task(_running(pool))
    try:
        await rig.pay(bad)
        await rig.pay(good)
        await until(lambda: _settled(rig, pool, good.id), "the good order to be paid")
        rig.clock.advance(seconds=60)
        pool.poke()
        await until(_status(rig, good.id, OrderStatus.DELIVERED), "the good order's delivery")
        for _ in range(5):  # the bad one is due all along, yet left alone while it rests
            rig.clock.advance(seconds=60)
            pool.poke()
            await asyncio.sleep(0.02)
    finally:
        await _stop(runner)
    assert gated.purchase_calls.count(bad.id) == 1
    left = await rig.order(bad.id)
    assert left.status in (OrderStatus.PAID, OrderStatus.FULFILLING) and left.supplier_request is None


class SwitchedLeases:
    """The Leases port with a switch: held until the test says the lease is lost."""

    def __init__(self) -> None:
        self.held = True
        self.asked = 0

    async def try_acquire(self, job: str) -> bool:
        self.asked += 1
        return self.held

    async def release(self, job: str) -> None:
        self.held = False

    async def running(self, jobs: Collection[str]) -> set[str]:
        return set(jobs) if self.held else set()

    async def close(self) -> None:
        self.held = False


async def quick(_seconds: float) -> None:
    """The runner's rests and lease retries, shortened: the test moves no wall clock."""
    await asyncio.sleep(0.01)


@pytest.mark.parametrize("how", ["lease_lost", "worker_stops"])
async def test_the_pool_stops_with_its_lease_and_another_pool_finishes_the_order(
        pool_rig: ShopRig, gated: GatedSupplier, how: str) -> None:
    rig = pool_rig
    order = await _order(rig, "tg:1")
    gated.gates[order.id] = asyncio.Event()
    pool = _pool(rig)
    leases = SwitchedLeases()
    job = loops.Job("shop", pool.step, 1.0, full=0, stop=pool.stop)
    runner = asyncio.create_task(loops.forever(job, leases, quick))
    try:
        await rig.pay(order)

        async def waiting() -> bool:
            return order.id in gated.waiting
        await until(waiting, "the order to wait at its supplier")
        if how == "lease_lost":
            leases.held = False

            async def stopped() -> bool:
                return not pool.in_flight
            await until(stopped, "the pool to stop its orders")
            started, asked = pool.started, leases.asked
            await until(lambda: _more(leases, asked), "the runner to ask for the lease again")
            assert pool.started == started  # without the lease nothing new starts
        else:
            await _stop(runner)
            assert not pool.in_flight
    finally:
        await _stop(runner)
    assert gated.cancelled == [order.id] and gated.purchase_calls == []
    assert (await rig.order(order.id)).supplier_request is None  # nothing committed, nothing paid

    # The next holder (another process: a new pool) takes the order over from the database.
    gated.gates[order.id].set()
    successor = _pool(rig)
    runner = asyncio.create_task(_running(successor))
    try:
        await until(lambda: _settled(rig, successor, order.id), "the order to be paid by the next holder")
        rig.clock.advance(seconds=60)
        successor.poke()
        await until(_status(rig, order.id, OrderStatus.DELIVERED), "the order's delivery")
    finally:
        await _stop(runner)
    signer = rig.kit.signer
    assert isinstance(signer, FakeSigner)
    assert [r.request_id for r in signer.sent] == [order.id]


async def _more(leases: SwitchedLeases, asked: int) -> bool:
    return leases.asked > asked + 1


async def test_rounds_still_deliver(pool_rig: ShopRig, gated: GatedSupplier) -> None:
    """run_round (a round of events then due orders) stays for tools and tests."""
    order = await _order(pool_rig, "tg:1")
    await pool_rig.pay(order)
    await pool_rig.run(2)
    assert (await pool_rig.order(order.id)).status is OrderStatus.DELIVERED
