"""Two job runners on one PostgreSQL database (two worker processes, in one test process):
each background job runs in exactly one of them, and when that one stops (its lease
connection closes, as when its process dies) the other takes the job over."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from krypton.bootstrap import Container, build
from krypton.config import Settings
from krypton.web.api.schemas import WebhookObjects
from krypton.workers import loops
from tests.support.clock import ManualClock
from tests.support.servers import PostgresServer

OBJECTS = WebhookObjects("http://127.0.0.1:8000", testnet=False)

_names = itertools.count()
JOBS = {"expiry", "projections", "checkpoint", "chains", "webhook-relay"}  # the leased ones
EVERYWHERE = "webhook-sender"  # claims its own work: runs in every runner


async def quick(_seconds: float) -> None:
    """The runners' rests and lease retries, shortened: the test moves no wall clock."""
    await asyncio.sleep(0.01)


def recording(runner: str, ran: set[tuple[str, str]]) -> loops.Adapt:
    def adapt(jobs: list[loops.Job]) -> list[loops.Job]:
        def wrap(job: loops.Job) -> loops.Job:
            async def step() -> int:
                ran.add((runner, job.name if job.leased else f"unleased {job.name}"))
                return await job.step()
            return replace(job, step=step)
        return [wrap(job) for job in jobs]
    return adapt


async def until(done: object, what: str) -> None:
    """Poll until done() is true; the limit only stops a hung test, it measures nothing."""
    for _ in range(1000):
        if callable(done) and done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
async def two_containers(pg_server: PostgresServer, tmp_path: Path) -> AsyncIterator[list[Container]]:
    url = pg_server.create_database(f"jobs{os.getpid()}_{next(_names)}", template="krypton_template")
    async with AsyncExitStack() as stack:
        containers = []
        for name in ("a", "b"):
            container = await build(Settings(data_dir=tmp_path / name, database_url=url),
                                    clock=ManualClock())
            stack.push_async_callback(container.close)
            containers.append(container)
        yield containers


async def test_each_job_runs_in_one_runner_and_moves_when_it_stops(two_containers: list[Container]) -> None:
    a, b = two_containers
    ran: set[tuple[str, str]] = set()
    first = loops.start(a, OBJECTS, sleep=quick, adapt=recording("a", ran))
    second = None
    try:
        await until(lambda: {job for _, job in ran} >= JOBS, "the first runner to take every job")
        second = loops.start(b, OBJECTS, sleep=quick, adapt=recording("b", ran))
        # The second runner asks for each lease again and again meanwhile: it never gets one.
        for _ in range(30):
            await asyncio.sleep(0.01)
        assert {runner for runner, job in ran if job in JOBS} == {"a"}

        await first.stop()  # closes its lease connection, as a dead process's closes
        ran.clear()
        await until(lambda: {job for _, job in ran} >= JOBS, "the second runner to take over")
        assert {runner for runner, job in ran if job in JOBS} == {"b"}
    finally:
        await first.stop()
        if second is not None:
            await second.stop()


async def test_two_runners_started_together_split_the_jobs(two_containers: list[Container]) -> None:
    a, b = two_containers
    ran: set[tuple[str, str]] = set()
    runners = [loops.start(a, OBJECTS, sleep=quick, adapt=recording("a", ran)),
               loops.start(b, OBJECTS, sleep=quick, adapt=recording("b", ran))]
    try:
        await until(lambda: {job for _, job in ran} >= JOBS, "every job to run")
        for _ in range(30):
            await asyncio.sleep(0.01)
        for job in JOBS:  # each in exactly one runner
            assert len({runner for runner, name in ran if name == job}) == 1, (job, ran)
        assert {runner for runner, name in ran if name == f"unleased {EVERYWHERE}"} == {"a", "b"}
    finally:
        for runner in runners:
            await runner.stop()
