"""The technical series of /metrics: request durations by route template, rate-limit
refusals, every event-log consumer's lag, the chain watcher's head lag, and the PostgreSQL
pool's use."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from krypton.adapters.metrics import consumers
from krypton.app import relay
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.workers.watch import STALE_SECONDS, HeadLag
from tests.conftest import auth


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_requests_are_timed_by_route_template(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    route = "/api/v1/invoices/{invoice_id}"
    before = value("krypton_http_request_duration_seconds_count", method="GET", route=route,
                   status="4xx") or 0
    for missing in ("inv_nothing1", "inv_nothing2"):
        assert (await api.get(f"/api/v1/invoices/{missing}", headers=auth(merchant))).status_code == 404
    assert value("krypton_http_request_duration_seconds_count", method="GET", route=route,
                 status="4xx") == before + 2
    # No route: one series for all of them, whatever path a scanner tries.
    await api.get("/wp-admin/setup.php")
    assert (value("krypton_http_request_duration_seconds_count", method="GET", route="unmatched",
                  status="4xx") or 0) >= 1
    text = (await api.get("/metrics")).text
    assert "inv_nothing1" not in text and "wp-admin" not in text


async def test_rate_limit_refusals_are_counted(api: httpx.AsyncClient, container: Container) -> None:
    limiter = api._transport.app.state.limiter  # type: ignore[attr-defined]
    limiter.public = type(limiter.public)(1)  # one public request per window
    before = value("krypton_rate_limit_rejections_total", limit="ip") or 0
    statuses = [(await api.get("/api/v1/public/invoice/inv_none")).status_code for _ in range(3)]
    assert statuses.count(429) == 2
    assert value("krypton_rate_limit_rejections_total", limit="ip") == before + 2


async def test_consumer_lag_follows_the_consumers(container: Container, merchant: IssuedKey) -> None:
    deps = container.deps
    async with deps.uow() as uow:  # a consumer that has read nothing yet
        await uow.events.consumer_position("lagging")
        await uow.commit()
    assert await consumers.refresh(deps) >= 1
    behind = value("krypton_event_consumer_lag_events", consumer="lagging")
    async with deps.uow(write=False) as uow:
        assert behind == await uow.events.count() > 0  # the merchant's creation, at least
    assert (value("krypton_event_consumer_lag_seconds", consumer="lagging") or 0) >= 0
    await relay.catch_up(deps)  # the projections read everything
    await consumers.refresh(deps)
    assert value("krypton_event_consumer_lag_events", consumer="projections") == 0
    assert value("krypton_event_consumer_lag_seconds", consumer="projections") == 0


class _Watch:
    caught_up: dict[str, float]
    last_round_began: float | None

    def __init__(self) -> None:
        self.caught_up, self.last_round_began = {}, None


async def test_head_lag_counts_blocks_since_the_last_complete_round() -> None:
    now = [1000.0]
    heads = {"ton": 100}

    async def read_heads() -> dict[str, int]:
        return dict(heads)

    watch = _Watch()
    lag = HeadLag(watch, read_heads, clock=lambda: now[0])  # type: ignore[arg-type]
    await lag.step()  # the chain job never ran here: nothing measured
    assert value("krypton_watcher_head_lag_blocks", chain="ton") is None

    watch.last_round_began = now[0]
    await lag.step()  # no round finished yet: measured from the first sample
    assert value("krypton_watcher_head_lag_blocks", chain="ton") == 0
    now[0] += 15
    heads["ton"] = 103
    await lag.step()
    assert value("krypton_watcher_head_lag_blocks", chain="ton") == 3  # stuck since the start

    watch.caught_up["ton"] = watch.last_round_began = now[0] + 1  # a round began, and finished
    now[0] += 15
    heads["ton"] = 106
    await lag.step()
    assert value("krypton_watcher_head_lag_blocks", chain="ton") == 3  # head then was 103 at most

    now[0] += STALE_SECONDS + 1  # the chain job moved to another process
    await lag.step()
    assert value("krypton_watcher_head_lag_blocks", chain="ton") is None


async def test_the_postgresql_pool_is_measured(container: Container) -> None:
    async with container.deps.uow(write=False) as uow:
        await uow.merchants.get("mer_none")
        in_use = value("krypton_db_pool_connections", state="in_use")
    if container.db.dialect != "postgresql":
        return  # SQLite: one writer, no pool to watch
    assert in_use is not None and in_use >= 1
    assert (value("krypton_db_pool_size") or 0) >= 1
