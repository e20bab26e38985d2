"""The JetStream sink on a real nats-server: subjects, message ids, and an aggregate's
events never stored out of order when the broker rejects one of them."""

from __future__ import annotations

from datetime import UTC, datetime

import nats
import pytest
from nats.js.api import StreamConfig
from nats.js.errors import APIError

from krypton.adapters.events.nats import STREAM, NatsSink, subject
from krypton.app.ports import StoredEvent
from tests.support.servers import NatsServer

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _event(seq: int, aggregate: str, data: str = "") -> StoredEvent:
    return StoredEvent(seq, 0, f"evt_{seq}", "invoice.paid", "mer_1", aggregate, {"d": data}, NOW)


async def _ids(url: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(STREAM)
        return [(await js.get_msg(STREAM, seq)).header["Nats-Msg-Id"]  # type: ignore[index]
                for seq in range(info.state.first_seq, info.state.last_seq + 1)
                if info.state.messages]
    finally:
        await nc.close()


def test_subject_is_the_aggregate_type() -> None:
    assert subject("invoice.created") == "krypton.events.invoice"
    assert subject("fee_collector.activated") == "krypton.events.fee_collector"


async def test_publishing_again_stores_nothing_twice(nats_server: NatsServer) -> None:
    sink = NatsSink(nats_server.url)
    try:
        await sink.publish([_event(1, "inv_a"), _event(2, "inv_b")])
        await sink.publish([_event(1, "inv_a"), _event(2, "inv_b"), _event(3, "inv_a")])
    finally:
        await sink.close()
    assert await _ids(nats_server.url) == ["evt_1", "evt_2", "evt_3"]


async def test_a_rejected_event_is_not_overtaken_by_its_aggregate(nats_server: NatsServer) -> None:
    # An operator's stream that refuses large messages: the sink keeps its settings.
    nc = await nats.connect(nats_server.url)
    await nc.jetstream().add_stream(StreamConfig(
        name=STREAM, subjects=["krypton.events.>"], max_msg_size=400, duplicate_window=60))
    await nc.close()
    sink = NatsSink(nats_server.url, ack_timeout=0.5)
    try:
        # nats-py leaves a rejected async publish unanswered: it shows as the ack timeout.
        with pytest.raises((APIError, TimeoutError)):
            await sink.publish([_event(1, "inv_a"), _event(2, "inv_a", "x" * 1000),
                                _event(3, "inv_b"), _event(4, "inv_a")])
    finally:
        await sink.close()
    stored = await _ids(nats_server.url)
    assert stored[0] == "evt_1" and "evt_2" not in stored
    assert "evt_4" not in stored  # it would be out of order once evt_2 is retried
