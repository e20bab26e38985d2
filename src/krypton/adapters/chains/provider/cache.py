"""A small TTL cache for values every watcher asks for often, like the head block number.

`TtlCache.get(key, fetch)` returns the cached value until `ttl` seconds (on the injected
clock) after the fetch that produced it *started*, so a value is never older than `ttl`
when served. Concurrent callers for the same key share one in-flight fetch. Failures are
not cached: every caller waiting on that fetch gets the error, the next call fetches again.

`cached(ttl, clock=...)` wraps an async callable with its own TtlCache keyed by the call's
arguments. Wrap bound methods in `__init__` (`self.head = cached(3.0, clock=clock)(self._head)`)
so each instance has its own cache and clock.

The values live in a cachetools TLRUCache on the injected clock, which drops them when they
expire. Its time-to-use function reads the expiry stored with each value (fetch start +
ttl): a TTLCache would count the ttl from the *end* of the fetch and serve older values.
The shared in-flight fetch is ours: cachetools' decorators know nothing of asyncio.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, ParamSpec, TypeVar

from cachetools import TLRUCache

from krypton.adapters.chains.provider.limiter import Clock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
P = ParamSpec("P")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl: float, *, clock: Clock = time.monotonic) -> None:
        if ttl < 0:
            raise ValueError("ttl must be >= 0")
        self._ttl = ttl
        self._clock = clock
        # (value, expiry) pairs; unbounded like a dict, each store drops the expired ones.
        self._values: TLRUCache[K, tuple[V, float], float] = TLRUCache(math.inf, _expiry, clock)
        self._inflight: dict[K, asyncio.Task[V]] = {}

    async def get(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        try:
            # [] rather than .get(): one clock reading instead of two (0.26 µs against 0.9 µs).
            return self._values[key][0]
        except KeyError:
            pass
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, fetch))
            task.add_done_callback(_consume_exception)
            self._inflight[key] = task
        # shield: one impatient caller cancelling must not cancel the fetch the others await.
        return await asyncio.shield(task)

    def invalidate(self, key: K | None = None) -> None:
        """Drop one key (or everything); an in-flight fetch still completes and is stored."""
        if key is None:
            self._values.clear()
        else:
            self._values.pop(key, None)

    async def _load(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        started = self._clock()
        try:
            value = await fetch()
        finally:
            del self._inflight[key]
        # Not stored at all if the fetch outlasted the ttl: the next caller fetches again.
        self._values[key] = (value, started + self._ttl)
        return value


def _expiry(_key: object, entry: tuple[object, float], _now: float) -> float:
    return entry[1]


class CachedFunction(Generic[P, V]):
    """An async callable whose results are kept in `.cache` for `ttl` seconds."""

    def __init__(self, fn: Callable[P, Awaitable[V]], cache: TtlCache[Hashable, V]) -> None:
        self._fn = fn
        self.cache = cache
        functools.update_wrapper(self, fn)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> V:
        key = (args, tuple(sorted(kwargs.items())))
        return await self.cache.get(key, lambda: self._fn(*args, **kwargs))


def cached(
    ttl: float, *, clock: Clock = time.monotonic
) -> Callable[[Callable[P, Awaitable[V]]], CachedFunction[P, V]]:
    """Decorator: cache an async function's results for `ttl` seconds, one fetch in flight
    per distinct arguments (which must be hashable)."""

    def decorate(fn: Callable[P, Awaitable[V]]) -> CachedFunction[P, V]:
        return CachedFunction(fn, TtlCache(ttl, clock=clock))

    return decorate


def _consume_exception(task: asyncio.Task[object]) -> None:
    # If every waiter was cancelled, nobody reads the error; read it so asyncio does not
    # log "exception was never retrieved" for a failure the next caller will see anyway.
    if not task.cancelled():
        task.exception()
