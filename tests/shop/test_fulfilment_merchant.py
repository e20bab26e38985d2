"""The shop's merchant, made on first use (app/shop.shop_merchant): two processes (the API
and the worker: two containers on one database, each with its own kit) using the shop for
the first time at once make one merchant between them, on both databases."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from krypton.app import fulfilment, shop
from krypton.bootstrap import Container, build
from krypton.config import Settings
from krypton.domain import events
from tests.support.clock import ManualClock


@pytest.fixture
async def twin(settings: Settings, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Container]:
    """A second process on the same database (its own engine, kit and lock)."""
    c = await build(settings.model_copy(update={"data_dir": tmp_path / "twin"}), clock=clock)
    yield c
    await c.close()


async def _shop_merchants(container: Container) -> list[str]:
    async with container.deps.uow(write=False) as uow:
        return [m.id for m in await uow.merchants.list() if m.name == shop.MERCHANT_NAME]


# One process's first use: build the container (as `krypton server` or `krypton worker`
# does), say it is ready, wait for the go, then use the shop; prints the merchant id.
PROCESS = """
import asyncio, sys, time
from pathlib import Path
from krypton.app import shop
from krypton.bootstrap import build
from krypton.config import Settings

async def main(url: str, data_dir: str, rendezvous: str, name: str) -> None:
    container = await build(Settings(data_dir=Path(data_dir), database_url=url))
    try:
        kit = container.shop()
        assert kit is not None
        Path(rendezvous, name).touch()
        for _ in range(3000):  # a give-up limit only: the test says go once both are ready
            if Path(rendezvous, "go").exists():
                break
            time.sleep(0.005)
        print(await shop.shop_merchant(container.deps, kit))
    finally:
        await container.close()

asyncio.run(main(*sys.argv[1:5]))
"""


async def test_two_processes_using_the_shop_first_at_once_make_one_merchant(
        container: Container, settings: Settings, tmp_path: Path) -> None:
    """Two real processes (the API's and the worker's) on one database, both databases."""
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROCESS, settings.database_url or "", str(tmp_path / name),
        str(rendezvous), name, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for name in ("api", "worker")]
    for _ in range(6000):  # a give-up limit only (building a container takes a few seconds)
        if (rendezvous / "api").exists() and (rendezvous / "worker").exists():
            break
        if any(p.returncode is not None for p in procs):
            break
        await asyncio.sleep(0.01)
    (rendezvous / "go").touch()
    outputs = [await p.communicate() for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()[-2000:]
    found = {out.decode().strip().splitlines()[-1] for out, _ in outputs}
    made = await _shop_merchants(container)
    assert len(made) == 1 and found == set(made)


@pytest.mark.parametrize("rounds", [1, 3])
async def test_two_containers_first_use_make_one_merchant(
        container: Container, twin: Container, rounds: int) -> None:
    """The same in one test process (PostgreSQL: SQLite's in-process driver would block
    the event loop on the other connection's write lock, which two processes never share)."""
    if container.db.dialect != "postgresql":
        pytest.skip("two SQLite writers in one event loop: covered by the two-process test")
    kits = []
    for c in (container, twin):
        for _ in range(rounds):  # several first uses inside each process as well
            kit = c.shop()
            assert kit is not None
            kits.append((c, kit))
    found = await asyncio.gather(*(shop.shop_merchant(c.deps, k) for c, k in kits))
    made = await _shop_merchants(container)
    assert len(made) == 1 and set(found) == set(made)
    async with container.deps.uow(write=False) as uow:
        stored = await uow.events.read((0, 0), 10_000)
    assert [e.subject_id for e in stored if e.type == events.MERCHANT_CREATED] == made


async def test_the_event_consumer_and_an_order_racing_on_first_use_share_the_merchant(
        container: Container, twin: Container) -> None:
    """The worker's consumer (its first step) and the API's first order at the same time."""
    if container.db.dialect != "postgresql":
        pytest.skip("two SQLite writers in one event loop: covered by the two-process test")
    worker, api = container.shop(), twin.shop()
    assert worker is not None and api is not None
    order, _ = await asyncio.gather(
        shop.create_order(twin.deps, api, buyer="tg:1", recipient="durov", quantity=50),
        fulfilment.consume(container.deps, worker))
    (merchant_id,) = await _shop_merchants(container)
    assert worker.merchant_id == api.merchant_id == merchant_id
    async with container.deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(order.invoice_id or "")
    assert invoice is not None and invoice.merchant_id == merchant_id


async def test_a_shop_merchant_made_before_the_claim_is_found_and_kept(container: Container) -> None:
    """A database whose shop merchant predates the claim (made by name only) keeps it."""
    from krypton.app import merchants
    old, _ = await merchants.create_merchant(container.deps, name=shop.MERCHANT_NAME, methods=["ton"])
    kit = container.shop()
    assert kit is not None
    assert await shop.shop_merchant(container.deps, kit) == old.id
    assert await _shop_merchants(container) == [old.id]
