"""Outbound rate limiting per endpoint: a token bucket whose waiters queue by priority and
whose rate adapts to the provider's 429s (multiplicative decrease, additive increase).

Waiting is event-driven: waiters park on futures in a heap, and a single pump task per
bucket sleeps (with the injected `sleep`) until the next token is due and hands it to the
head of the heap. Nothing polls, and a fake `sleep`/`clock` pair runs it in virtual time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

# Float slack: after sleeping exactly the computed deficit the bucket may hold 0.99999…
# tokens; without it the pump would spin on ever smaller sleeps.
_EPSILON = 1e-9


class Priority(IntEnum):
    """Lower goes first. Confirmation checks decide whether money counts as received, so
    they are served before polling for new transfers when the quota is the bottleneck."""

    CONFIRM = 0
    DISCOVERY = 1


@dataclass(frozen=True, slots=True)
class RateAdaptation:
    """AIMD policy: each throttling answer multiplies the rate by `decrease` (never below
    `floor`, nor above the configured rate); every `successes_per_step` successes in a row
    add `step` × the configured rate back, up to the configured rate."""

    decrease: float = 0.5
    floor: float = 0.1
    step: float = 0.1
    successes_per_step: int = 5

    def __post_init__(self) -> None:
        if not (0 < self.decrease < 1 and self.floor > 0 and self.step > 0 and self.successes_per_step >= 1):
            raise ValueError("RateAdaptation: need 0 < decrease < 1, floor > 0, step > 0 and "
                             "successes_per_step >= 1")


class PriorityTokenBucket:
    """Token bucket (`rate` tokens/s, at most `burst`) with a priority wait queue."""

    def __init__(
        self, rate: float, burst: float, *, clock: Clock, sleep: Sleep, adaptation: RateAdaptation
    ) -> None:
        self.configured_rate = rate
        self.rate = rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._adaptation = adaptation
        self._tokens = burst
        self._last = clock()
        self._paused_until = float("-inf")
        self._successes = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._pump_task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        return sum(1 for _, _, fut in self._waiters if not fut.done())

    def paused_for(self) -> float:
        """Seconds left of a Retry-After pause (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    async def acquire(self, priority: Priority) -> None:
        """Wait for a token. A newcomer never overtakes queued waiters, whatever its priority:
        the fast path is only taken when nobody is waiting."""
        if not self._waiters and self._time_until_token() <= 0:
            self._tokens -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._order), fut))
        self._ensure_pump()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # Granted just as we were cancelled: give the token back for the next waiter.
                self._tokens = min(self._burst, self._tokens + 1)
                self._ensure_pump()
            raise

    def estimated_wait(self) -> float:
        """Seconds a new request would wait here: the pause, then one token per queued waiter."""
        now = self._clock()
        self._refill(now)
        backlog = self.queued + 1 - self._tokens
        return max(self._paused_until - now, backlog / self.rate, 0.0)

    def throttled(self, retry_after: float | None) -> float:
        """The provider said "too fast": drain the bucket, cut the rate, honour Retry-After
        for every caller of this endpoint (not only the one that got the 429). Returns the
        new rate."""
        now = self._clock()
        self._refill(now)
        floor = min(self._adaptation.floor, self.configured_rate)
        self.rate = max(floor, self.rate * self._adaptation.decrease)
        self._successes = 0
        self._tokens = 0.0
        if retry_after is not None:
            self._paused_until = max(self._paused_until, now + retry_after)
        return self.rate

    def succeeded(self) -> bool:
        """Count a success; after a run of them, step the rate back up. True if it changed."""
        if self.rate >= self.configured_rate:
            return False
        self._successes += 1
        if self._successes < self._adaptation.successes_per_step:
            return False
        self._successes = 0
        self._refill(self._clock())  # bank tokens earned at the old rate first
        self.rate = min(self.configured_rate, self.rate + self._adaptation.step * self.configured_rate)
        return True

    async def aclose(self) -> None:
        task, self._pump_task = self._pump_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for _, _, fut in self._waiters:
            fut.cancel()
        self._waiters.clear()

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate)
            self._last = now

    def _time_until_token(self) -> float:
        now = self._clock()
        self._refill(now)
        deficit = 1.0 - self._tokens
        wait = deficit / self.rate if deficit > _EPSILON else 0.0
        return max(wait, self._paused_until - now, 0.0)

    def _ensure_pump(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._pump_task
        # A pump left pending on another (closed) loop would never run again: replace it.
        if task is None or task.done() or task.get_loop() is not loop:
            self._pump_task = loop.create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            while self._waiters and self._waiters[0][2].done():  # cancelled waiters
                heapq.heappop(self._waiters)
            if not self._waiters:
                return
            wait = self._time_until_token()
            if wait > 0:
                # New waiters may arrive meanwhile; whoever heads the heap on waking wins.
                await self._sleep(wait)
                continue
            self._tokens -= 1
            heapq.heappop(self._waiters)[2].set_result(None)
