"""ProviderClient: JSON over HTTP to one chain's providers, with fallback between endpoints,
per-endpoint rate limits with priorities, adaptive back-off on throttling, circuit breakers
and retries with full-jitter exponential back-off.

One call (`get_json` / `post_json`) runs up to `max_attempts` attempts:

1. pick an endpoint (`_select`): among those whose circuit admits traffic, prefer one not
   yet tried in this call; DISCOVERY traffic probes a half-open endpoint first (so a
   recovered primary is noticed without risking confirmation checks on it); otherwise
   closed before half-open, then recent success rate, then latency + expected queue wait,
   then configuration order;
2. wait for a token of that endpoint's limiter (CONFIRM before DISCOVERY);
3. send with a timeout, classify the outcome (errors.py), update health, breaker and rate;
4. on a retryable error try again: at once on an endpoint not yet tried, or after a
   full-jitter back-off when only already-failed endpoints are left.

When no endpoint admits traffic, the call fails fast with the retryable
AllEndpointsUnavailable; the caller keeps its cursor and tries later.

POST is retried like GET: every POST Krypton sends to a provider is a read (TronGrid's
/wallet/* queries) or an idempotent broadcast (a signed transaction has one hash).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
import structlog

from krypton.adapters.chains.provider import metrics
from krypton.adapters.chains.provider.endpoint import Endpoint
from krypton.adapters.chains.provider.errors import (
    AllEndpointsUnavailable,
    ProviderConnectionError,
    ProviderError,
    RateLimited,
    bad_payload,
    error_for_exception,
    error_for_status,
)
from krypton.adapters.chains.provider.health import Breaker, CircuitState, EndpointStats, Health
from krypton.adapters.chains.provider.limiter import (
    Clock,
    Priority,
    PriorityTokenBucket,
    RateAdaptation,
    Sleep,
)

log = structlog.get_logger()

Params = Mapping[str, str | int | float | bool | None]


@dataclass(frozen=True, slots=True)
class _Form:
    """A form body (post_form), told apart from a JSON body on its way to _exchange."""

    fields: dict[str, str]


@dataclass(slots=True)
class _Slot:
    """Everything the client keeps about one endpoint."""

    index: int
    endpoint: Endpoint
    limiter: PriorityTokenBucket
    breaker: Breaker
    health: Health

    @property
    def name(self) -> str:
        return self.endpoint.name


class ProviderClient:
    """Calls one chain's providers. `http` is owned by the caller (shared pool, closed by
    them); `timeout` bounds every attempt as a whole (connect + send + wait + read)."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        http: httpx.AsyncClient,
        timeout: float,
        max_attempts: int = 4,
        base_delay: float = 0.25,
        max_delay: float = 8.0,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 30.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        adaptation: RateAdaptation = RateAdaptation(),
        health_window: float = 60.0,
        parse_float: Callable[[str], Any] = float,
    ) -> None:
        _check_settings(endpoints, timeout, max_attempts, base_delay, max_delay, breaker_threshold,
                        breaker_cooldown)
        self._http = http
        # Decimal for APIs that send prices as JSON numbers, so none passes through a float.
        self._parse_float = parse_float
        self._timeout = timeout
        self._http_timeout = httpx.Timeout(timeout)
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._slots = [
            _Slot(
                index=i,
                endpoint=ep,
                limiter=PriorityTokenBucket(ep.rate_per_second, ep.burst, clock=clock, sleep=sleep,
                                            adaptation=adaptation),
                breaker=Breaker(breaker_threshold, breaker_cooldown, clock),
                health=Health(clock, health_window),
            )
            for i, ep in enumerate(endpoints)
        ]
        metrics.CIRCUITS.add(self)

    async def get_json(
        self, path: str, *, params: Params | None = None, priority: Priority = Priority.DISCOVERY
    ) -> Any:
        """GET base_url/path and return the decoded JSON body."""
        return await self._call("GET", path, params=params, body=None, priority=priority)

    async def post_json(
        self, path: str, *, json: Any = None, priority: Priority = Priority.DISCOVERY
    ) -> Any:
        """POST `json` to base_url/path and return the decoded JSON body."""
        return await self._call("POST", path, params=None, body=json, priority=priority)

    async def post_form(
        self, path: str, *, params: Params | None = None, data: Mapping[str, str],
        priority: Priority = Priority.DISCOVERY,
    ) -> Any:
        """POST `data` as application/x-www-form-urlencoded to base_url/path (`params` in the
        query string) and return the decoded JSON body: how web pages' APIs (Fragment's) are
        called. Same limiter, breaker, retries and metrics as the JSON calls."""
        return await self._call("POST", path, params=params, body=_Form(dict(data)),
                                priority=priority)

    def circuits(self) -> list[tuple[str, CircuitState]]:
        """Each endpoint's circuit now (for /metrics)."""
        return [(slot.name, slot.breaker.state) for slot in self._slots]

    def stats(self) -> tuple[EndpointStats, ...]:
        """A snapshot per endpoint, in configuration order."""
        return tuple(self._snapshot(slot) for slot in self._slots)

    async def aclose(self) -> None:
        """Stop the limiters' pump tasks (the shared httpx client is the caller's to close)."""
        for slot in self._slots:
            await slot.limiter.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # The retry loop is ours, not tenacity's or stamina's. Each attempt chooses its endpoint
    # again, and the back-off applies only when every usable endpoint has already failed this
    # call: a failover is immediate, with no sleep at all. Delays come from the injected rng
    # and sleep, so tests replay them exactly. tenacity would need a wait callback that looks
    # into the selection, would still call sleep(0) on each failover, and its full-jitter wait
    # uses the global `random`. stamina's jitter is added to the exponential delay (not full
    # jitter), from the global `random`, with the real sleep. tenacity's AsyncRetrying also
    # costs 22 µs per call against 0.1 µs here. Retry-After is the limiter's job: it pauses
    # every caller of that endpoint, not just this loop.
    async def _call(
        self, method: str, path: str, *, params: Params | None, body: Any, priority: Priority
    ) -> Any:
        tried: set[str] = set()
        last: ProviderError | None = None
        for attempt in range(self._max_attempts):
            slot = self._select(priority, tried)
            if slot is not None and slot.name in tried:
                # Only endpoints that already failed this call are left: back off first,
                # then choose again (a circuit may have changed meanwhile).
                await self._sleep(self._backoff(attempt - 1))
                slot = self._select(priority, tried)
            if slot is None:
                raise self._unavailable(method, path) from last
            tried.add(slot.name)
            try:
                return await self._attempt(slot, method, path, params, body, priority)
            except ProviderError as err:
                if not err.retryable:
                    raise
                if attempt + 1 == self._max_attempts:
                    log.warning("provider_gave_up", method=method, path=path, attempts=attempt + 1,
                                endpoint=slot.name, error=err.kind, status=err.status)
                    raise
                last = err
                log.info("provider_retry", endpoint=slot.name, method=method, path=path,
                         attempt=attempt + 1, error=err.kind, status=err.status)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _backoff(self, retry: int) -> float:
        """Full jitter (AWS architecture blog): uniform over [0, min(cap, base·2^retry)], so
        callers that failed together do not come back together."""
        ceiling = min(self._max_delay, self._base_delay * 2.0 ** min(retry, 60))
        return self._rng.uniform(0.0, ceiling)

    def _select(self, priority: Priority, tried: set[str]) -> _Slot | None:
        usable = [s for s in self._slots if s.breaker.available()]
        candidates = [s for s in usable if s.name not in tried] or usable
        if not candidates:
            return None
        if priority is Priority.DISCOVERY:
            for slot in candidates:
                if slot.breaker.state is CircuitState.HALF_OPEN:
                    return slot
        return min(candidates, key=self._rank)

    @staticmethod
    def _rank(slot: _Slot) -> tuple[bool, float, float, int]:
        rate = slot.health.success_rate()
        cost = (slot.health.latency or 0.0) + slot.limiter.estimated_wait()
        return (slot.breaker.state is not CircuitState.CLOSED, -(1.0 if rate is None else rate), cost,
                slot.index)

    async def _attempt(
        self, slot: _Slot, method: str, path: str, params: Params | None, body: Any, priority: Priority
    ) -> Any:
        probe = slot.breaker.begin()  # claimed before queueing, so no second probe slips in
        try:
            await slot.limiter.acquire(priority)
            started = self._clock()
            try:
                result = await self._exchange(slot.endpoint, method, path, params, body)
            except ProviderError as err:
                latency = self._clock() - started
                metrics.observe(slot.name, err.kind, latency)
                self._on_failure(slot, err, latency)
                raise
            latency = self._clock() - started
            metrics.observe(slot.name, "ok", latency)
            self._on_success(slot, latency)
            return result
        finally:
            if probe:
                slot.breaker.end_probe()

    async def _exchange(
        self, endpoint: Endpoint, method: str, path: str, params: Params | None, body: Any
    ) -> Any:
        try:
            # httpx's timeout is per phase; the outer deadline also stops a server that
            # trickles bytes just fast enough to keep every phase alive.
            async with asyncio.timeout(self._timeout):
                form = body.fields if isinstance(body, _Form) else None
                response = await self._http.request(
                    method, endpoint.url(path), params=params,
                    json=None if form is not None else body, data=form,
                    headers=dict(endpoint.headers), timeout=self._http_timeout,
                )
        except (TimeoutError, httpx.RequestError) as exc:
            raise error_for_exception(endpoint, method, path, exc) from exc
        if not response.is_success:
            raise error_for_status(endpoint, method, path, response)
        try:
            return response.json(parse_float=self._parse_float)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise bad_payload(endpoint, method, path, response) from exc

    def _on_success(self, slot: _Slot, latency: float) -> None:
        if slot.breaker.alive():
            slot.health.restart_latency()
            log.info("provider_circuit_closed", endpoint=slot.name)
        slot.health.record_success(latency)
        if slot.limiter.succeeded():
            log.info("provider_rate_recovered", endpoint=slot.name, rate=slot.limiter.rate,
                     configured_rate=slot.limiter.configured_rate)

    def _on_failure(self, slot: _Slot, err: ProviderError, latency: float) -> None:
        summary = f"{err.kind}: {err}"
        if isinstance(err, RateLimited):
            slot.health.record_failure(summary, latency, throttled=True)
            rate = slot.limiter.throttled(err.retry_after)
            log.warning("provider_throttled", endpoint=slot.name, status=err.status,
                        retry_after=err.retry_after, rate=rate)
        elif err.retryable:
            # A refused connection returns at once; its "latency" would flatter the endpoint.
            measured = None if isinstance(err, ProviderConnectionError) else latency
            slot.health.record_failure(summary, measured, throttled=False)
            if slot.breaker.fault():
                log.warning("provider_circuit_opened", endpoint=slot.name, error=err.kind,
                            consecutive_failures=slot.breaker.consecutive_faults)
        else:
            slot.health.record_client_error(summary, latency)
            if slot.breaker.alive():  # it answered: alive, whatever it thought of our request
                log.info("provider_circuit_closed", endpoint=slot.name)
            if err.status in {401, 403}:  # a wrong or expired key: only an operator can fix it
                log.warning("provider_client_error", endpoint=slot.name, status=err.status,
                            hint="check this endpoint's API key")
            else:
                log.debug("provider_client_error", endpoint=slot.name, status=err.status)

    def _unavailable(self, method: str, path: str) -> AllEndpointsUnavailable:
        waits = [w for s in self._slots if (w := s.breaker.retry_in()) is not None]
        retry_in = min(waits) if waits else None
        states = ", ".join(f"{s.name}={s.breaker.state.value}" for s in self._slots)
        log.warning("provider_all_unavailable", method=method, path=path, retry_in=retry_in)
        return AllEndpointsUnavailable(
            f"all endpoints unavailable for {method} {path} ({states}); retry in "
            f"{retry_in or 0.0:.1f}s and do not advance the cursor",
            retry_in=retry_in,
        )

    def _snapshot(self, slot: _Slot) -> EndpointStats:
        health, limiter = slot.health, slot.limiter
        return EndpointStats(
            name=slot.name,
            host=slot.endpoint.host,
            state=slot.breaker.state,
            successes=health.successes,
            failures=health.failures,
            throttled=health.throttled,
            client_errors=health.client_errors,
            consecutive_failures=slot.breaker.consecutive_faults,
            success_rate=health.success_rate(),
            latency_ms=None if health.latency is None else health.latency * 1000.0,
            last_error=health.last_error,
            last_error_age_s=health.last_error_age(),
            configured_rate=limiter.configured_rate,
            effective_rate=limiter.rate,
            queued=limiter.queued,
            paused_for_s=limiter.paused_for(),
            retry_in_s=slot.breaker.retry_in(),
        )


def _check_settings(
    endpoints: Sequence[Endpoint], timeout: float, max_attempts: int, base_delay: float,
    max_delay: float, breaker_threshold: int, breaker_cooldown: float,
) -> None:
    if not endpoints:
        raise ValueError("ProviderClient needs at least one endpoint")
    names = [ep.name for ep in endpoints]
    if len(set(names)) != len(names):
        raise ValueError(f"endpoint names must be unique (stats and logs key on them): {names}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError("timeout must be a positive number of seconds")
    if max_attempts < 1 or breaker_threshold < 1:
        raise ValueError("max_attempts and breaker_threshold must be at least 1")
    if not (0 <= base_delay <= max_delay) or breaker_cooldown < 0:
        raise ValueError("need 0 <= base_delay <= max_delay and breaker_cooldown >= 0")
