"""Provider health reports (app/provider_health.py) through the provider_health table: a
report replaces the endpoint's previous one, the latest ones come back by name with their
age, a report over a minute old is stale, and the last error keeps ageing. Stored in whole
milliseconds, seconds and basis points. On both databases."""

from __future__ import annotations

from dataclasses import replace

from krypton.app import provider_health
from krypton.app.ports import ProviderSnapshot
from krypton.bootstrap import Container
from tests.support.clock import ManualClock

TON = ProviderSnapshot(name="toncenter-0", host="toncenter.com", state="open", success_rate=0.25,
                       latency_ms=812.4, failures=7, throttled=2, consecutive_failures=5,
                       last_error="server_error: toncenter-0: GET /transactions -> HTTP 502: bad gateway",
                       last_error_age_s=3.2)
TRON = ProviderSnapshot(name="trongrid-0", host="api.trongrid.io", state="closed", success_rate=None,
                        latency_ms=None, failures=0, throttled=0, consecutive_failures=0,
                        last_error=None, last_error_age_s=None)


async def test_reports_round_trip_and_replace_the_previous_one(container: Container,
                                                               clock: ManualClock) -> None:
    deps = container.deps
    assert await provider_health.latest(deps) == []
    reported = clock.now()
    assert await provider_health.record(deps, [TRON, TON], "worker-a:41") == 2
    clock.advance(seconds=2)
    [ton, tron] = await provider_health.latest(deps)  # by name
    # Whole milliseconds and seconds; the error's age is 3 s at the report and 2 s since.
    assert ton.snapshot == replace(TON, latency_ms=812, last_error_age_s=5)
    assert tron.snapshot == TRON
    assert (ton.report.process, ton.report.updated_at, ton.age_s, ton.stale) == (
        "worker-a:41", reported, 2, False)

    recovered = replace(TON, state="closed", success_rate=1.0, consecutive_failures=0)
    assert await provider_health.record(deps, [recovered], "worker-b:7") == 1
    [ton, tron] = await provider_health.latest(deps)
    assert (ton.snapshot.state, ton.snapshot.success_rate, ton.report.process, ton.age_s) == (
        "closed", 1.0, "worker-b:7", 0)
    assert tron.age_s == 2  # not in the newer report: its own row stays as it was


async def test_a_report_over_a_minute_old_is_stale(container: Container, clock: ManualClock) -> None:
    deps = container.deps
    await provider_health.record(deps, [TON], "worker-a:41")
    clock.advance(seconds=60)
    [fresh] = await provider_health.latest(deps)
    assert (fresh.age_s, fresh.stale) == (60, False)
    clock.advance(seconds=1)
    [old] = await provider_health.latest(deps)
    assert (old.age_s, old.stale) == (61, True)


async def test_nothing_to_report_writes_nothing(container: Container) -> None:
    assert await provider_health.record(container.deps, [], "worker-a:41") == 0
    assert await provider_health.latest(container.deps) == []
