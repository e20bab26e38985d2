"""The event log never lets a consumer skip an event whose transaction commits late."""

from __future__ import annotations

import asyncio
import random

import pytest

from krypton.app import relay
from krypton.bootstrap import Container
from krypton.domain.events import Event

pytestmark = pytest.mark.usefixtures("container")


def _event(n: int) -> Event:
    return Event("test.happened", None, f"subject-{n}", {"n": n})


async def _read_all(container: Container, after: tuple[int, int]) -> list[int]:
    async with container.deps.uow(write=False) as uow:
        return [e.data["n"] for e in await uow.events.read(after, 1000)]


# Only PostgreSQL runs writers concurrently (SQLite has one writer at a time).
postgresql_only = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@postgresql_only
async def test_late_commit_with_lower_seq_is_not_skipped(container: Container) -> None:
    now = container.deps.clock.now()
    slow = container.deps.uow()
    await slow.__aenter__()
    await slow.events.append(_event(1), now)
    await slow.events.flush()  # written now: takes the lower seq, but commits last
    async with container.deps.uow() as fast:
        await fast.events.append(_event(2), now)
        await fast.commit()
    # Event 2 is committed, but event 1 (lower seq) may still commit: nothing is readable yet.
    assert await _read_all(container, (0, 0)) == []
    await slow.commit()
    await slow.__aexit__(None, None, None)
    assert sorted(await _read_all(container, (0, 0))) == [1, 2]


@postgresql_only
async def test_older_transaction_writing_later_is_not_skipped(container: Container) -> None:
    now = container.deps.clock.now()
    old = container.deps.uow()
    await old.__aenter__()
    await old.events.append(_event(1), now)
    await old.events.flush()  # the older transaction has its xid and an event written
    async with container.deps.uow() as young:
        await young.events.append(_event(2), now)
        await young.commit()
    # The older transaction is still open: the younger one's event must wait behind it.
    assert await _read_all(container, (0, 0)) == []
    await old.events.append(_event(3), now)
    await old.commit()
    await old.__aexit__(None, None, None)
    assert sorted(await _read_all(container, (0, 0))) == [1, 2, 3]


async def test_consumer_sees_every_event_once_under_concurrent_writers(container: Container) -> None:
    """Many writers with random pauses inside their transactions, a consumer polling all along."""
    deps = container.deps
    rng = random.Random(7)
    writers, per_writer = 12, 15
    delivered: list[int] = []
    done = asyncio.Event()

    async def writer(w: int) -> None:
        for i in range(per_writer):
            async with deps.uow() as uow:
                await uow.events.append(_event(w * 1000 + i), deps.clock.now())
                await uow.events.flush()
                await asyncio.sleep(rng.random() / 200)
                await uow.commit()

    async def consumer() -> None:
        position = (0, 0)
        while True:
            finished = done.is_set()
            async with deps.uow(write=False) as uow:
                batch = await uow.events.read(position, 50)
            delivered.extend(e.data["n"] for e in batch)
            if batch:
                position = (batch[-1].txid, batch[-1].seq)
            elif finished:
                return
            await asyncio.sleep(0)

    reader = asyncio.create_task(consumer())
    await asyncio.gather(*(writer(w) for w in range(writers)))
    done.set()
    await reader
    expected = [w * 1000 + i for w in range(writers) for i in range(per_writer)]
    assert len(delivered) == len(expected)
    assert sorted(delivered) == expected


async def test_projection_position_moves_with_its_effect(container: Container) -> None:
    deps = container.deps
    async with deps.uow() as uow:
        for n in range(3):
            await uow.events.append(_event(n), deps.clock.now())
        await uow.commit()
    assert await relay.run_projections(deps) == 3
    assert await relay.run_projections(deps) == 0
    async with deps.uow(write=False) as uow:
        position = await uow.events.consumer_position(relay.PROJECTIONS)
    assert position[1] > 0


async def test_a_window_gives_every_type_and_only_the_wanted_events_in_full(
        container: Container) -> None:
    now = container.deps.clock.now()
    async with container.deps.uow() as uow:
        for n in range(7):
            kind = "test.wanted" if n % 3 == 0 else "test.counted"
            await uow.events.append(Event(kind, "mer_a" if n else "mer_b", f"subject-{n}", {"n": n}), now)
        await uow.commit()

    def wanted(kind: str, merchant: str | None) -> bool:
        return kind == "test.wanted" and merchant == "mer_a"
    async with container.deps.uow(write=False) as uow:
        first = await uow.events.window((0, 0), 5, wanted)
        assert first.end is not None
        rest = await uow.events.window(first.end, 5, wanted)
        assert rest.end is not None
        done = await uow.events.window(rest.end, 5, lambda kind, merchant: True)
    assert first.types == ["test.wanted", "test.counted", "test.counted", "test.wanted", "test.counted"]
    # Not 0 (another merchant's) nor 6 (past the window's end).
    assert [e.data["n"] for e in first.events] == [3]
    assert rest.types == ["test.counted", "test.wanted"] and [e.data["n"] for e in rest.events] == [6]
    assert (done.end, done.types, done.events) == (None, (), ())


@postgresql_only
async def test_a_window_waits_behind_a_transaction_still_open(container: Container) -> None:
    now = container.deps.clock.now()
    slow = container.deps.uow()
    await slow.__aenter__()
    await slow.events.append(_event(1), now)
    await slow.events.flush()
    async with container.deps.uow() as fast:
        await fast.events.append(_event(2), now)
        await fast.commit()
    async with container.deps.uow(write=False) as uow:
        assert (await uow.events.window((0, 0), 10, lambda kind, merchant: True)).end is None
    await slow.commit()
    await slow.__aexit__(None, None, None)
    async with container.deps.uow(write=False) as uow:
        window = await uow.events.window((0, 0), 10, lambda kind, merchant: True)
    assert sorted(e.data["n"] for e in window.events) == [1, 2] and len(window.types) == 2
