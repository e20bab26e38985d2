"""krypton_event_consumer_lag_events and _seconds: how far each reader of the event log
(projections, webhooks, the export, the bot, metrics) is behind, refreshed by a job."""

from __future__ import annotations

from prometheus_client import Gauge

from krypton.app.deps import Deps

# Counting stops here: beyond it the alert (at 1,000) has long fired.
CAP = 100_000
LAG_EVENTS = Gauge("krypton_event_consumer_lag_events",
                   "Events not yet read by each consumer of the event log (counted up to 100,000)",
                   ["consumer"])
LAG_SECONDS = Gauge("krypton_event_consumer_lag_seconds",
                    "Age of the oldest event each consumer has not read yet (0: none)",
                    ["consumer"])


async def refresh(deps: Deps) -> int:
    """Measure every consumer's lag now; returns how many consumers there are."""
    async with deps.uow(write=False) as uow:
        lags = await uow.events.consumer_lags(CAP)
    now = deps.clock.now()
    for lag in lags:
        LAG_EVENTS.labels(lag.consumer).set(lag.events)
        age = (now - lag.oldest_unread).total_seconds() if lag.oldest_unread else 0.0
        LAG_SECONDS.labels(lag.consumer).set(max(0.0, age))
    return len(lags)
