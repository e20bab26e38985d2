"""The scheduled backup: take one when the newest is older than the interval, then keep only
the newest few. Due-ness is read from the backups themselves (their names carry the UTC time
they were taken), so a restarted worker, or another process taking the job's lease over,
neither backs up twice nor waits a whole interval again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


class BackupStore(Protocol):
    async def latest(self) -> datetime | None:
        """When the newest verified backup was taken; None without one."""
        ...

    async def make(self, now: datetime) -> object:
        """Take a verified backup stamped `now`; raises when it cannot be verified."""
        ...

    async def prune(self, keep: int) -> int:
        """Delete all but the newest `keep` backups; returns how many went."""
        ...


@dataclass(frozen=True)
class Schedule:
    interval: timedelta
    keep: int


async def run_due(store: BackupStore, now: datetime, schedule: Schedule) -> bool:
    """Back up if one is due at `now`; prune to `schedule.keep` after a new backup only (a
    failed one leaves the older ones in place). Returns whether a backup was taken."""
    latest = await store.latest()
    # A backup stamped after `now` means the clock was set back: back up rather than wait.
    if latest is not None and timedelta(0) <= now - latest < schedule.interval:
        return False
    await store.make(now)
    await store.prune(schedule.keep)
    return True
