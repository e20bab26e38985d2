"""Export of the event log to a broker (an EventSink), in commit order.

The position is stored like any consumer's, but only after the sink holds the batch: a
crash in between publishes the batch again, and the sink drops what it already holds (the
event id is the message id). The batch is read and the position written in two short
transactions, not one around the publish: a transaction held open over network I/O would
hold the SQLite writer, and on PostgreSQL the event-log horizon for every reader."""

from __future__ import annotations

from krypton.app.deps import Deps
from krypton.app.ports import EventSink

EXPORT = "export"


async def export_events(deps: Deps, sink: EventSink, batch: int = 500) -> int:
    """Publish the next batch of events to `sink`; returns how many were published."""
    async with deps.uow() as uow:  # a writer: the first call stores the position's row
        position = await uow.events.consumer_position(EXPORT)
        stored = await uow.events.read(position, batch)
        await uow.commit()
    if not stored:
        return 0
    await sink.publish(stored)
    reached = (stored[-1].txid, stored[-1].seq)
    async with deps.uow() as uow:
        # Never backwards: another instance may have exported further meanwhile.
        if await uow.events.consumer_position(EXPORT) < reached:
            await uow.events.set_consumer_position(EXPORT, reached)
        await uow.commit()
    return len(stored)
