"""The scheduled backup job in the job list (workers/loops.py): there when an interval is set,
taking a verified backup into KRYPTON_BACKUP_DIR and keeping KRYPTON_BACKUP_KEEP of them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from krypton.adapters.db import backup as backups
from krypton.bootstrap import Container
from krypton.web.api.schemas import WebhookObjects
from krypton.workers import loops
from tests.support.clock import ManualClock

OBJECTS = WebhookObjects("http://127.0.0.1:8000", testnet=False)


def backup_job(container: Container) -> loops.Job | None:
    found = [j for j in loops.backup_jobs(container) if j.name == "backup"]
    return found[0] if found else None


async def test_the_job_is_in_the_list(container: Container) -> None:
    scheduled = replace(container, settings=container.settings.model_copy(update={"backup_interval": 3600}))
    chains = container.chains()
    try:
        assert "backup" in {j.name for j in loops.jobs(scheduled, chains, OBJECTS)}
    finally:
        await chains.aclose()


async def test_the_job_backs_up_on_schedule_and_prunes(container: Container, clock: ManualClock,
                                                       tmp_path: Path) -> None:
    settings = container.settings.model_copy(update={
        "backup_interval": 6 * 3600, "backup_keep": 2, "backup_dir": tmp_path / "b"})
    scheduled = replace(container, settings=settings)
    job = backup_job(scheduled)
    assert job is not None and job.leased
    for _ in range(4):  # 4 looks, 6 hours apart: 4 backups, the newest 2 kept
        await job.step()
        await job.step()  # a second look at the same time: not due
        clock.advance(hours=6)
    kept = backups.list_backups(tmp_path / "b")
    assert [clock.now() - b.taken_at for b in kept] == [timedelta(hours=6), timedelta(hours=12)]


async def test_no_job_with_interval_zero(container: Container) -> None:
    off = replace(container, settings=container.settings.model_copy(update={"backup_interval": 0}))
    assert backup_job(off) is None
