"""The scheduled backup (app/backups.py): due by the newest backup's own time, pruned after
each new one, on the real store over a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from krypton.adapters.db import backup as store_module
from krypton.app import backups
from krypton.bootstrap import Container
from tests.support.clock import ManualClock

SIX_HOURS = backups.Schedule(timedelta(hours=6), keep=3)


async def test_backs_up_when_due_and_keeps_the_newest(container: Container, clock: ManualClock,
                                                      tmp_path: Path) -> None:
    store = store_module.Store(container.db, tmp_path / "b", None)
    taken = []
    for minutes in range(0, 30 * 60, 30):  # the job's rounds over 30 hours
        now = clock.current + timedelta(minutes=minutes)
        if await backups.run_due(store, now, SIX_HOURS):
            taken.append(now - clock.current)
    assert taken == [timedelta(hours=h) for h in (0, 6, 12, 18, 24)]
    kept = [b.taken_at - clock.current for b in store.list()]
    assert kept == [timedelta(hours=h) for h in (24, 18, 12)]


async def test_a_restarted_worker_does_not_back_up_again(container: Container, clock: ManualClock,
                                                         tmp_path: Path) -> None:
    folder = tmp_path / "b"
    first = store_module.Store(container.db, folder, None)
    assert await backups.run_due(first, clock.now(), SIX_HOURS)
    # Another process (the lease moved) reads the same folder: not due for 6 hours.
    second = store_module.Store(container.db, folder, None)
    assert not await backups.run_due(second, clock.now() + timedelta(hours=5, minutes=59), SIX_HOURS)
    assert await backups.run_due(second, clock.now() + timedelta(hours=6), SIX_HOURS)


class Failing:
    def __init__(self, latest: datetime | None) -> None:
        self._latest = latest
        self.pruned = 0

    async def latest(self) -> datetime | None:
        return self._latest

    async def make(self, now: datetime) -> object:
        raise store_module.BackupError("the copy fails PRAGMA integrity_check")

    async def prune(self, keep: int) -> int:
        self.pruned += 1
        return 0


async def test_a_failed_backup_prunes_nothing() -> None:
    store = Failing(datetime(2026, 12, 1, tzinfo=UTC))
    # The failure reaches the job runner (logged, tried again next round); older backups stay.
    with pytest.raises(store_module.BackupError):
        await backups.run_due(store, datetime(2026, 12, 7, tzinfo=UTC), SIX_HOURS)
    assert store.pruned == 0


async def test_a_clock_set_back_still_gets_backups() -> None:
    class Future(Failing):
        async def make(self, now: datetime) -> object:
            return now
    store = Future(datetime(2027, 1, 1, tzinfo=UTC))  # the newest looks 3 weeks ahead
    assert await backups.run_due(store, datetime(2026, 12, 7, tzinfo=UTC), SIX_HOURS)
    assert store.pruned == 1
