"""Outbound provider layer the chain watchers use: several endpoints per chain with health
statistics and fallback, a priority-aware rate limiter per endpoint that adapts to 429s,
circuit breakers, retries with full-jitter back-off, and a TTL cache for the head block.

    endpoints = [
        Endpoint("toncenter-key", "https://toncenter.com/api/v3",
                 headers={"X-API-Key": key}, rate_per_second=10),
        Endpoint("toncenter-free", "https://toncenter.com/api/v3", rate_per_second=1),
    ]
    async with httpx.AsyncClient() as http:
        ton = ProviderClient(endpoints, http=http, timeout=10.0)
        head = cached(3.0)(lambda: ton.get_json("/masterchainInfo", priority=Priority.CONFIRM))
        info = await head()

Errors are `ProviderError`s that say whether a retry is worth it (errors.py). The client
returns decoded JSON only; turning it into records is the parsers' job (ton/, tron/).
"""

from krypton.adapters.chains.provider.cache import CachedFunction, TtlCache, cached
from krypton.adapters.chains.provider.client import ProviderClient
from krypton.adapters.chains.provider.endpoint import Endpoint
from krypton.adapters.chains.provider.errors import (
    AllEndpointsUnavailable,
    BadPayload,
    ClientError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    parse_retry_after,
)
from krypton.adapters.chains.provider.health import CircuitState, EndpointStats
from krypton.adapters.chains.provider.limiter import Priority, PriorityTokenBucket, RateAdaptation

__all__ = [
    "AllEndpointsUnavailable",
    "BadPayload",
    "CachedFunction",
    "CircuitState",
    "ClientError",
    "Endpoint",
    "EndpointStats",
    "Priority",
    "PriorityTokenBucket",
    "ProviderClient",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "RateAdaptation",
    "RateLimited",
    "ServerError",
    "TtlCache",
    "cached",
    "parse_retry_after",
]
