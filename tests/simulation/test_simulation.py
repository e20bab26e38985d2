"""The deterministic simulator: many seeded hostile worlds, the invariants after every step
(tests/simulation/invariants.py). A failure prints its seed and a shrunk trace; replay it
with `pytest tests/simulation --sim-seed N`."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.simulation.conftest import NewDatabase
from tests.simulation.runner import STEPS, run_seed, run_steps
from tests.simulation.world import plan


def test_seeded_world_keeps_every_invariant(sim_database: str, sim_seed: int,
                                            new_database: NewDatabase) -> None:
    run_seed(sim_seed, new_database)


def test_a_seed_replays_exactly(sqlite_template: Path) -> None:
    """The same seed twice: the same plan, the same ids, hashes and outcomes, step by step."""
    def sqlite(tmp: Path) -> tuple[str, Callable[[], None]]:
        shutil.copyfile(sqlite_template, tmp / "krypton.sqlite3")
        return f"sqlite:///{tmp / 'krypton.sqlite3'}", lambda: None

    seed = 7
    assert plan(seed, STEPS) == plan(seed, STEPS)
    first = asyncio.run(run_steps(seed, plan(seed, STEPS), sqlite))
    second = asyncio.run(run_steps(seed, plan(seed, STEPS), sqlite))
    assert first.error is None and second.error is None, (first.error, second.error)
    assert len(first.trace) == STEPS + 1 and first.trace == second.trace
