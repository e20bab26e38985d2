"""GET /api/v1/operator/health's providers: each endpoint's latest report with its age, a
report over a minute old marked stale with a sentence. On both databases."""

from __future__ import annotations

from datetime import timedelta

from krypton.app import provider_health
from krypton.app.ports import ProviderSnapshot
from krypton.bootstrap import Container
from krypton.domain.roles import Role
from tests.support.clock import ManualClock
from tests.web.conftest import SignIn
from tests.web.helpers import API

HEALTH = f"{API}/operator/health"


def snapshot(name: str, state: str) -> ProviderSnapshot:
    return ProviderSnapshot(
        name=name, host=f"{name}.example", state=state, success_rate=0.5, latency_ms=120.0,
        failures=3, throttled=1, consecutive_failures=2,
        last_error=f"server_error: {name}: GET /transactions -> HTTP 502: bad gateway",
        last_error_age_s=4.0)


async def test_health_lists_each_providers_latest_report_and_marks_old_ones_stale(
        container: Container, clock: ManualClock, signed_in: SignIn) -> None:
    operator = await signed_in(Role.OPERATOR, None)
    assert (await operator.get(HEALTH)).json()["providers"] == []  # nothing reported yet

    deps = container.deps
    await provider_health.record(deps, [snapshot("trongrid-0", "closed")], "worker-old:1")
    reported = clock.advance(seconds=75)
    await provider_health.record(deps, [snapshot("toncenter-0", "open")], "worker-new:2")
    clock.advance(seconds=5)

    answer = await operator.get(HEALTH)
    assert answer.status_code == 200, answer.text
    ton, tron = answer.json()["providers"]  # by name
    assert ton == {
        "name": "toncenter-0", "host": "toncenter-0.example", "state": "open", "success_rate": 0.5,
        "latency_ms": 120, "failures": 3, "throttled": 1, "consecutive_failures": 2,
        "last_error": "server_error: toncenter-0: GET /transactions -> HTTP 502: bad gateway",
        "last_error_age_s": 9, "updated_at": reported.isoformat(), "age_seconds": 5,
        "stale": False, "stale_note": None, "process": "worker-new:2"}
    assert (tron["name"], tron["age_seconds"], tron["stale"], tron["process"]) == (
        "trongrid-0", 80, True, "worker-old:1")
    assert tron["stale_note"] == "No report for 80 s: is the worker running?"
    assert tron["updated_at"] == (reported - timedelta(seconds=75)).isoformat()
