"""Provider health, cluster-wide: the process running the chain job reports its provider
endpoints' stats (breakers, success rate, latency, errors) every few seconds, and any
process reads the latest report of each endpoint, judged stale when it stopped coming."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from krypton.app.deps import Deps
from krypton.app.ports import ProviderReport, ProviderSnapshot

# The reports come every few seconds; one this old means the reporting process stopped
# (or lost the chain job's lease without another process taking it over).
STALE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """An endpoint's latest report, as of now."""

    report: ProviderReport
    age_s: int  # seconds since it was reported
    stale: bool  # no report for longer than STALE_AFTER

    @property
    def snapshot(self) -> ProviderSnapshot:
        return self.report.snapshot


async def record(deps: Deps, snapshots: Sequence[ProviderSnapshot], process: str) -> int:
    """Store `snapshots` as `process`'s (hostname:pid) report at the clock's now; how many."""
    if not snapshots:
        return 0
    now = deps.clock.now()
    async with deps.uow() as uow:
        await uow.provider_health.put([ProviderReport(s, now, process) for s in snapshots])
        await uow.commit()
    return len(snapshots)


async def latest(deps: Deps) -> list[ProviderStatus]:
    """Every endpoint's latest report, by name, with its age and whether it is stale."""
    now = deps.clock.now()
    async with deps.uow(write=False) as uow:
        reports = await uow.provider_health.all()
    statuses = []
    for report in reports:
        age = max(timedelta(0), now - report.updated_at)
        statuses.append(ProviderStatus(_aged(report, age), int(age.total_seconds()), age > STALE_AFTER))
    return statuses


def _aged(report: ProviderReport, age: timedelta) -> ProviderReport:
    """The last error's age as of now, not as of the report (it went on ageing since)."""
    snapshot = report.snapshot
    if snapshot.last_error_age_s is None:
        return report
    return replace(report, snapshot=replace(
        snapshot, last_error_age_s=snapshot.last_error_age_s + age.total_seconds()))
