"""The provider_health table's repository: each provider endpoint's latest report (stored
in whole milliseconds, seconds and basis points: tables.py says why)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from krypton.adapters.db import tables as t
from krypton.adapters.db.repositories import Repo
from krypton.app.ports import ProviderReport, ProviderSnapshot

_c = t.provider_health.c
_DIALECTS: dict[str, Any] = {"sqlite": sqlite, "postgresql": postgresql}


class ProviderHealthRepo(Repo):
    async def put(self, reports: Sequence[ProviderReport]) -> None:
        if not reports:
            return
        # An upsert, not update-then-insert: while the chain job's lease moves, the old and
        # the new holder may both report an endpoint for the first time at once.
        insert = _DIALECTS[self.conn.dialect.name].insert(t.provider_health).values(
            [_row(report) for report in reports])
        await self.conn.execute(insert.on_conflict_do_update(
            index_elements=[_c.name],
            set_={col.name: insert.excluded[col.name] for col in t.provider_health.c if col.name != "name"}))

    async def all(self) -> list[ProviderReport]:
        rows = (await self.conn.execute(sa.select(t.provider_health).order_by(_c.name))).all()
        return [_report(row) for row in rows]


def _row(report: ProviderReport) -> dict[str, Any]:
    s = report.snapshot
    return dict(name=s.name, host=s.host, state=s.state,
                success_bps=None if s.success_rate is None else round(s.success_rate * 10_000),
                latency_ms=_whole(s.latency_ms), failures=s.failures, throttled=s.throttled,
                consecutive_failures=s.consecutive_failures, last_error=s.last_error,
                last_error_age_s=_whole(s.last_error_age_s), updated_at=report.updated_at,
                process=report.process)


def _whole(value: float | None) -> int | None:
    return None if value is None else round(value)


def _report(row: sa.Row[Any]) -> ProviderReport:
    snapshot = ProviderSnapshot(
        name=row.name, host=row.host, state=row.state,
        success_rate=None if row.success_bps is None else row.success_bps / 10_000,
        latency_ms=row.latency_ms, failures=row.failures, throttled=row.throttled,
        consecutive_failures=row.consecutive_failures, last_error=row.last_error,
        last_error_age_s=row.last_error_age_s)
    return ProviderReport(snapshot, row.updated_at, row.process)
