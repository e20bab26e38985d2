"""The event-log export to NATS JetStream: every event once, each aggregate's in commit
order, even when the relay dies mid-batch and starts again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import nats
import pytest

from krypton.adapters.events.nats import STREAM, NatsSink
from krypton.app import export
from krypton.app.ports import StoredEvent
from krypton.bootstrap import Container, build
from krypton.domain.events import Event
from krypton.web.api.schemas import WebhookObjects
from krypton.workers import loops
from tests.support.servers import NatsServer

OBJECTS = WebhookObjects("http://127.0.0.1:8000", testnet=False)

AGGREGATES = ("invoice", "payment", "settlement")


async def _append_events(container: Container, commits: int) -> list[str]:
    """Commits of a few events each, interleaving several aggregates of each type; returns
    the event ids in commit order."""
    ids = []
    now = container.deps.clock.now()
    for c in range(commits):
        async with container.deps.uow() as uow:
            for kind in AGGREGATES:
                subject = f"{kind}-{c % 4}"
                ids.append(await uow.events.append(
                    Event(f"{kind}.step", "mer_1", subject, {"commit": c}), now))
            await uow.commit()
    return ids


async def _stream(url: str) -> list[tuple[str, str, str]]:
    """(subject, Nats-Msg-Id, aggregate id) of every message in the stream, in stream order."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(STREAM)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(STREAM, seq)
            body = json.loads(msg.data or b"")
            assert body["id"] == (msg.headers or {})["Nats-Msg-Id"]
            out.append((msg.subject, body["id"], body["subject_id"]))
        return out
    finally:
        await nc.close()


class HangsAfter:
    """A relay's sink that stops answering after `k` events reached the broker, until the
    relay's task is cancelled (the process is stopped mid-batch)."""

    def __init__(self, sink: NatsSink, k: int) -> None:
        self.sink, self.k = sink, k
        self.stuck = asyncio.Event()

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        await self.sink.publish(events[:self.k])
        self.stuck.set()
        await asyncio.Event().wait()


class DiesAfter:
    """A relay's sink that crashes after `k` events reached the broker (a kill mid-batch)."""

    def __init__(self, sink: NatsSink, k: int) -> None:
        self.sink, self.k = sink, k

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        await self.sink.publish(events[:self.k])
        raise ConnectionError("relay killed mid-batch")


async def _order_of(container: Container) -> dict[str, list[str]]:
    """Each aggregate's event ids in commit order, as the log holds them."""
    async with container.deps.uow(write=False) as uow:
        stored = await uow.events.read((0, 0), 10_000)
    order: dict[str, list[str]] = {}
    for e in stored:
        order.setdefault(e.subject_id, []).append(e.id)
    return order


async def test_a_relay_killed_mid_batch_leaves_every_event_once_in_order(
        container: Container, nats_server: NatsServer) -> None:
    ids = await _append_events(container, 20)  # 60 events, 12 aggregates
    first = NatsSink(nats_server.url)
    try:
        # The first batch dies after 7 of its 25 events are in the stream: the position stays.
        with pytest.raises(ConnectionError):
            await export.export_events(container.deps, DiesAfter(first, 7), batch=25)
        assert await export.export_events(container.deps, first, batch=25) == 25
        # The next batch is cancelled after 11 of its events are in (the process stopped).
        hangs = HangsAfter(first, 11)
        task = asyncio.create_task(export.export_events(container.deps, hangs, batch=25))
        await hangs.stuck.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await first.close()
    restarted = NatsSink(nats_server.url)  # a new process
    try:
        while await export.export_events(container.deps, restarted, batch=25):
            pass
    finally:
        await restarted.close()

    stream = await _stream(nats_server.url)
    assert sorted(msg_id for _, msg_id, _ in stream) == sorted(ids)  # each exactly once
    for aggregate, in_log in (await _order_of(container)).items():
        assert [m for _, m, a in stream if a == aggregate] == in_log
    assert {s for s, _, _ in stream} == {f"krypton.events.{kind}" for kind in AGGREGATES}


async def test_export_without_new_events_publishes_nothing(
        container: Container, nats_server: NatsServer) -> None:
    sink = NatsSink(nats_server.url)
    try:
        await _append_events(container, 2)
        assert await export.export_events(container.deps, sink) == 6
        assert await export.export_events(container.deps, sink) == 0
    finally:
        await sink.close()
    assert len(await _stream(nats_server.url)) == 6


async def test_the_worker_runs_the_export_only_when_nats_is_configured(
        container: Container, nats_server: NatsServer) -> None:
    chains = container.chains()
    try:
        assert "export" not in [job.name for job in loops.jobs(container, chains, OBJECTS)]
        settings = container.settings.model_copy(update={"nats_url": nats_server.url})
        exporting = Container(settings, container.db, container.deps,
                              event_sink=NatsSink(nats_server.url))
        try:
            job = {job.name: job for job in loops.jobs(exporting, chains, OBJECTS)}["export"]
            await _append_events(container, 1)
            assert await job.step() == 3
        finally:
            assert exporting.event_sink is not None
            await exporting.event_sink.close()
    finally:
        await chains.aclose()
    assert len(await _stream(nats_server.url)) == 3


async def test_build_makes_the_sink_from_krypton_nats_url(
        container: Container, nats_server: NatsServer) -> None:
    settings = container.settings.model_copy(update={"nats_url": nats_server.url})
    built = await build(settings)
    try:
        assert built.event_sink is not None and built.event_sink.url == nats_server.url
    finally:
        await built.close()
