"""Running a seed: the plan's steps with the invariants after each, then `settle` and the
final checks; a failure is shrunk (steps dropped while it still fails) and reported with
its seed and the shrunk trace, ready for `pytest tests/simulation --sim-seed N`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.simulation import invariants
from tests.simulation.world import Step, World, plan

NewDatabase = Callable[[Path], tuple[str, Callable[[], None]]]
STEPS = 40  # a world's length: sized so a seed takes well under a second on SQLite


@dataclass
class Outcome:
    error: Exception | None  # an invariant broken, or anything a step raised
    failed_at: int | None  # the step index (len(steps): the final checks)
    trace: list[str]


async def run_steps(seed: int, steps: Sequence[Step], new_database: NewDatabase) -> Outcome:
    world = World(seed, new_database)
    at: int | None = None
    try:
        await world.setup()
        await invariants.check_step(world)
        for index, step in enumerate(steps):
            at = index
            await world.step(step)
            await invariants.check_step(world)
        at = len(steps)
        await world.settle()
        await invariants.check_end(world)
        return Outcome(None, None, world.trace)
    except Exception as exc:  # any escape is a finding, reported with its trace
        return Outcome(exc, at, world.trace)
    finally:
        await world.close()


async def shrink(seed: int, steps: list[Step], new_database: NewDatabase,
                 budget: int = 200) -> list[Step]:
    """Drop chunks of steps, then single steps, keeping each cut that still fails."""
    chunk = max(1, len(steps) // 2)
    runs = 0
    while chunk >= 1 and runs < budget:
        i, cut = 0, False
        while i < len(steps) and runs < budget:
            candidate = steps[:i] + steps[i + chunk:]
            runs += 1
            if (await run_steps(seed, candidate, new_database)).error is not None:
                steps, cut = candidate, True
            else:
                i += chunk
        if not cut:
            chunk //= 2
    return steps


class SimulationFailed(AssertionError):
    pass


def report(seed: int, outcome: Outcome, steps: Sequence[Step]) -> str:
    lines = [f"simulation seed {seed} failed at step {outcome.failed_at} of {len(steps)}: "
             f"{type(outcome.error).__name__}: {outcome.error}",
             f"replay: .venv/bin/python -m pytest tests/simulation --sim-seed {seed}",
             "shrunk plan: " + " ".join(str(s) for s in steps), "trace:"]
    lines += [f"  {n:3d} {line}" for n, line in enumerate(outcome.trace)]
    return "\n".join(lines)


def run_seed(seed: int, new_database: NewDatabase, steps: int = STEPS, *, shrinking: bool = True) -> None:
    """Run one seed; raise SimulationFailed with the seed and the shrunk trace if it fails."""
    full = plan(seed, steps)
    outcome = asyncio.run(run_steps(seed, full, new_database))
    if outcome.error is None:
        return
    shrunk = asyncio.run(shrink(seed, full, new_database)) if shrinking else full
    final = asyncio.run(run_steps(seed, shrunk, new_database))
    if final.error is None:  # only a flaky failure shrinks to nothing: report the full run
        shrunk, final = full, outcome
    raise SimulationFailed(report(seed, final, shrunk)) from outcome.error
