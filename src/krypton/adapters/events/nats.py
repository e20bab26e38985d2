"""The event-log export to NATS JetStream (the EventSink port).

One stream, KRYPTON_EVENTS, over `krypton.events.>`: an event goes to the subject of its
aggregate type, the prefix of its type (`invoice.created` -> `krypton.events.invoice`), with
its id as the message id (Nats-Msg-Id), so JetStream drops an event published again within
the stream's duplicate window (the relay republishes its last batch after a crash).

Publishes are pipelined, but one aggregate's next event is sent only once the previous one
is acknowledged: a rejected or lost message is never overtaken by a later event of the same
aggregate, so each aggregate's events are stored in commit order even across retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck, StreamConfig
from nats.js.errors import NotFoundError

from krypton.app.ports import StoredEvent

STREAM = "KRYPTON_EVENTS"
SUBJECT_PREFIX = "krypton.events"
# How long JetStream remembers message ids: a relay restarted within it republishes its
# last batch without duplicates. Longer outages can leave duplicates; consumers that must
# not see one dedupe on the event id (the Nats-Msg-Id header).
DUPLICATE_WINDOW = timedelta(minutes=10)
# Seconds for JetStream to acknowledge a message. nats-py 2.16 never resolves an async
# publish the stream rejected (its reply handler raises instead), so a rejection surfaces
# as this timeout.
ACK_TIMEOUT = 5.0


def subject(event_type: str) -> str:
    """The subject of an event type: its aggregate type, the part before the first dot."""
    return f"{SUBJECT_PREFIX}.{event_type.split('.', 1)[0]}"


def payload(event: StoredEvent) -> bytes:
    return json.dumps({
        "id": event.id, "type": event.type, "merchant_id": event.merchant_id,
        "subject_id": event.subject_id, "data": event.data,
        "created_at": event.created_at.isoformat(),
    }, separators=(",", ":")).encode()


class NatsSink:
    """Publishes events to JetStream; connects (and creates the stream) on first use."""

    def __init__(self, url: str, *, stream: str = STREAM,
                 duplicate_window: timedelta = DUPLICATE_WINDOW,
                 ack_timeout: float = ACK_TIMEOUT) -> None:
        self.url = url
        self.ack_timeout = ack_timeout
        self.stream = stream
        self.duplicate_window = duplicate_window
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            nc = await nats.connect(self.url, connect_timeout=self.ack_timeout)
            js = nc.jetstream(timeout=self.ack_timeout)
            try:
                try:
                    await js.stream_info(self.stream)  # an operator's own settings stay
                except NotFoundError:
                    await js.add_stream(StreamConfig(
                        name=self.stream, subjects=[f"{SUBJECT_PREFIX}.>"],
                        duplicate_window=self.duplicate_window.total_seconds()))
            except BaseException:
                await nc.close()
                raise
            self._nc, self._js = nc, js
        return self._js

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        js = await self._jetstream()
        waiting: dict[str, asyncio.Future[PubAck]] = {}  # aggregate -> its unacknowledged message
        try:
            for event in events:
                if (previous := waiting.pop(event.subject_id, None)) is not None:
                    await asyncio.wait_for(previous, self.ack_timeout)
                waiting[event.subject_id] = await js.publish_async(
                    subject(event.type), payload(event), wait_stall=self.ack_timeout,
                    headers={"Nats-Msg-Id": event.id})
            for future in list(waiting.values()):
                await asyncio.wait_for(future, self.ack_timeout)
        except BaseException:
            if self._nc is not None and self._nc.is_closed:
                self._nc = self._js = None  # it gave up reconnecting: connect afresh next time
            raise
        finally:
            for future in waiting.values():
                future.cancel()  # frees its slot in the client's pending-publish limit

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
            self._nc = self._js = None
