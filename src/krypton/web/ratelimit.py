"""Multi-tier rate limits (the `limits` library): per key, per client IP, and global.

Counters live in process memory by default and in Redis when KRYPTON_REDIS_URL is set, so
several server processes share them (a `redis+cluster://` URL: a Redis Cluster; each counter
is one key, so it lives on one shard). The global limit is then one for all processes.
"""

from __future__ import annotations

import math
import time

import redis.asyncio
from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from prometheus_client import Counter

from krypton.config import Settings
from krypton.web.errors import ApiError

# Which limit refused: global, ip, key_create or key_reads (never the key or the address).
REJECTIONS = Counter("krypton_rate_limit_rejections", "Requests refused with 429 by a rate limit",
                     ["limit"])


class Limiter:
    def __init__(self, settings: Settings) -> None:
        storage: Storage
        # Owned here so `close` can release the connections (limits never closes them).
        self._pool: redis.asyncio.ConnectionPool | None = None
        self._cluster: redis.asyncio.RedisCluster | None = None
        if settings.redis_url and settings.redis_url.removeprefix("async+").startswith(
                "redis+cluster://"):
            # limits builds the cluster client itself (no pool to hand over); closed below.
            cluster = RedisClusterStorage("async+" + settings.redis_url.removeprefix("async+"),
                                          implementation="redispy", key_prefix="krypton")
            self._cluster = cluster.bridge.storage  # type: ignore[attr-defined]
            storage = cluster
        elif settings.redis_url:
            uri = "async+" + settings.redis_url if "+" not in settings.redis_url.split(":")[0] \
                else settings.redis_url
            plain = settings.redis_url.removeprefix("async+").replace("redis+unix://", "unix://", 1)
            self._pool = redis.asyncio.ConnectionPool.from_url(plain)
            # `connection_pool` is a documented option; limits types **options too narrowly.
            storage = RedisStorage(uri, implementation="redispy", key_prefix="krypton",
                                   connection_pool=self._pool)  # type: ignore[arg-type]
        else:
            storage = MemoryStorage()
        self.storage = storage
        self.strategy = FixedWindowRateLimiter(storage)
        self.create = parse(settings.rate_limit_invoice_create)
        self.reads = parse(settings.rate_limit_reads)
        self.public = parse(settings.rate_limit_public)
        self.global_ = parse(settings.rate_limit_global)

    async def _hit(self, item: RateLimitItem, *ids: str) -> None:
        if not await self.strategy.hit(item, *ids):
            REJECTIONS.labels(ids[0] if ids[0] != "key" else f"key_{ids[1]}").inc()
            stats = await self.strategy.get_window_stats(item, *ids)
            retry = max(1, math.ceil(stats.reset_time - time.time()))
            raise ApiError(429, "rate_limited",
                           f"Too many requests ({item}); retry after {retry} seconds.",
                           headers={"Retry-After": str(retry)})

    async def check_global(self) -> None:
        await self._hit(self.global_, "global")

    async def check_key(self, key_id: str, tier: str) -> None:
        await self.check_global()
        item = self.create if tier == "create" else self.reads
        await self._hit(item, "key", tier, key_id)

    async def check_ip(self, request: Request) -> None:
        await self.check_global()
        await self._hit(self.public, "ip", request.client.host if request.client else "unknown")

    async def reset(self) -> None:
        await self.storage.reset()

    async def close(self) -> None:
        """Release the Redis connections, if any (the app calls this on shutdown)."""
        if self._pool is not None:
            await self._pool.aclose()
        if self._cluster is not None:
            await self._cluster.aclose()
