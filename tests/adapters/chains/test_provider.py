"""The provider layer (krypton.adapters.chains.provider) against a real HTTP server on
127.0.0.1 (provider_server.py): retries, fallback, circuit breakers, throttling, priorities,
the head cache and the operators' statistics.

Back-off, breaker cooldowns and the rate limiter run on a virtual clock (`VirtualTime`):
the client's sleeps are recorded and move the clock instead of waiting. Only the timeout
cases wait for real, with a 0.2 s timeout. No test asserts a wall-clock duration.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import structlog

from krypton.adapters.chains.provider import (
    AllEndpointsUnavailable,
    BadPayload,
    CircuitState,
    ClientError,
    Endpoint,
    Priority,
    PriorityTokenBucket,
    ProviderClient,
    ProviderConnectionError,
    ProviderTimeout,
    RateAdaptation,
    RateLimited,
    ServerError,
    TtlCache,
    cached,
    parse_retry_after,
)
from tests.adapters.chains.provider_server import ProviderServer, Reply

SECRET = "sk-test-0123456789abcdefghijklmnop"
SEED = 20261124
TIMEOUT = 0.2  # only the hang tests wait for it


class VirtualTime:
    """A clock/sleep pair. auto=True: every sleep is recorded and moves the clock at once.
    auto=False: sleeps wait until the test calls advance() past their deadline."""

    def __init__(self, *, auto: bool = True) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._auto = auto
        self._pending: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self._auto:
            self.now += seconds
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((self.now + seconds, fut))
        await fut

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [(t, f) for t, f in self._pending if t <= self.now + 1e-9]
        self._pending = [p for p in self._pending if p not in due]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)


class MaxRng(random.Random):
    """Always draws the top of the jitter range, to see the back-off ceiling itself."""

    def uniform(self, a: float, b: float) -> float:
        return b


async def wait_until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Let the server thread catch up (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.002)


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    srv = ProviderServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def srv(server: ProviderServer) -> ProviderServer:
    server.reset()
    return server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


MakeClient = Callable[..., ProviderClient]


@pytest.fixture
async def make(srv: ProviderServer, http: httpx.AsyncClient, vt: VirtualTime) -> AsyncIterator[MakeClient]:
    """make("a", "b", **settings): a client over endpoints at srv.url/a, srv.url/b (a name
    becomes a fast endpoint: its limiter never gets in the way unless a test wants it)."""
    clients: list[ProviderClient] = []

    def build(*endpoints: str | Endpoint, **overrides: Any) -> ProviderClient:
        settings: dict[str, Any] = {
            "http": http, "timeout": 1.0, "max_attempts": 4, "base_delay": 0.1, "max_delay": 1.0,
            "breaker_threshold": 5, "breaker_cooldown": 60.0, "clock": vt.clock, "sleep": vt.sleep,
            "rng": random.Random(SEED),
        }
        settings.update(overrides)
        eps = [ep if isinstance(ep, Endpoint) else endpoint(srv, ep) for ep in endpoints]
        client = ProviderClient(eps, **settings)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


def endpoint(srv: ProviderServer, name: str, **kw: Any) -> Endpoint:
    settings: dict[str, Any] = {"headers": {"X-API-Key": SECRET}, "rate_per_second": 1e6, "burst": 1000}
    settings.update(kw)
    return Endpoint(name, f"{srv.url}/{name}", **settings)


def arrived(srv: ProviderServer, count: int) -> bool:
    return srv.count() == count


def stats_of(client: ProviderClient, name: str) -> Any:
    return next(s for s in client.stats() if s.name == name)


# -- plain calls --------------------------------------------------------------------------


async def test_get_json_returns_the_body_and_sends_params_and_key(
    srv: ProviderServer, make: MakeClient
) -> None:
    srv.script("/a/transactions", Reply.json({"transactions": [], "address_book": {}}))
    client = make("a")

    body = await client.get_json("/transactions", params={"account": "0:ab", "limit": 10})

    assert body == {"transactions": [], "address_book": {}}
    (arrival,) = srv.arrivals("/a/transactions")
    assert arrival.query == {"account": "0:ab", "limit": "10"}
    assert arrival.headers["x-api-key"] == SECRET


async def test_post_json_sends_the_json_body(srv: ProviderServer, make: MakeClient) -> None:
    srv.script("/a/wallet/gettransactioninfobyid", Reply.json({"id": "ab"}))
    client = make("a")

    body = await client.post_json("wallet/gettransactioninfobyid", json={"value": "ab"})

    assert body == {"id": "ab"}
    (arrival,) = srv.arrivals("/a/wallet/gettransactioninfobyid")
    assert arrival.method == "POST" and json.loads(arrival.body) == {"value": "ab"}


# -- retries ------------------------------------------------------------------------------


async def test_5xx_is_retried_with_full_jitter_then_succeeds(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/head", Reply.status(500), Reply.status(503), then=Reply.json({"seqno": 7}))
    client = make("a", base_delay=0.1, max_delay=1.0)

    assert await client.get_json("/head") == {"seqno": 7}

    assert srv.count("/a/head") == 3
    expected = random.Random(SEED)
    assert vt.sleeps == [expected.uniform(0, 0.1), expected.uniform(0, 0.2)]
    assert all(0 <= delay <= bound for delay, bound in zip(vt.sleeps, [0.1, 0.2], strict=True))


async def test_backoff_ceiling_doubles_then_caps_at_max_delay(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/head", then=Reply.status(502))
    client = make("a", max_attempts=6, base_delay=0.1, max_delay=0.25, rng=MaxRng(), breaker_threshold=99)

    with pytest.raises(ServerError) as caught:
        await client.get_json("/head")

    assert vt.sleeps == pytest.approx([0.1, 0.2, 0.25, 0.25, 0.25])
    assert srv.count("/a/head") == 6
    err = caught.value
    assert (err.status, err.retryable, err.endpoint) == (502, True, "a")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_fail_at_once(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime, status: int
) -> None:
    srv.script("/a/head", then=Reply.status(status))
    client = make("a", "b")

    with pytest.raises(ClientError) as caught:
        await client.get_json("/head")

    assert (caught.value.status, caught.value.retryable) == (status, False)
    assert srv.count() == 1 and vt.sleeps == []
    assert stats_of(client, "a").client_errors == 1
    assert stats_of(client, "a").consecutive_failures == 0  # it answered: not a fault


async def test_408_is_the_retryable_client_error(srv: ProviderServer, make: MakeClient) -> None:
    srv.script("/a/head", Reply.status(408), then=Reply.json({"ok": True}))
    client = make("a")

    assert await client.get_json("/head") == {"ok": True}
    assert srv.count("/a/head") == 2


async def test_non_json_2xx_is_a_retryable_bad_payload(srv: ProviderServer, make: MakeClient) -> None:
    srv.script("/a/head", Reply.text("<html>502 Bad Gateway</html>"), then=Reply.json({"ok": True}))
    client = make("a")
    assert await client.get_json("/head") == {"ok": True}

    srv.script("/a/broken", then=Reply.text("not json", content_type="application/json"))
    with pytest.raises(BadPayload) as caught:
        await client.get_json("/broken")
    assert caught.value.retryable and caught.value.status == 200
    assert srv.count("/a/broken") == 4


async def test_a_hanging_endpoint_times_out_retryably(srv: ProviderServer, make: MakeClient) -> None:
    srv.script("/a/head", Reply.hang(1.0))
    client = make("a", timeout=TIMEOUT, max_attempts=1)

    with pytest.raises(ProviderTimeout) as caught:
        await client.get_json("/head")

    assert caught.value.retryable and caught.value.endpoint == "a"
    assert stats_of(client, "a").last_error.startswith("timeout")


# -- fallback -----------------------------------------------------------------------------


async def test_falls_back_to_the_second_endpoint_when_the_first_fails(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/head", then=Reply.status(500))
    srv.script("/b/head", then=Reply.json({"from": "b"}))
    client = make("a", "b")

    assert await client.get_json("/head") == {"from": "b"}
    assert vt.sleeps == []  # failing over to a fresh endpoint needs no back-off

    # The next call goes straight to the endpoint that works.
    assert await client.get_json("/head") == {"from": "b"}
    assert (srv.count("/a/head"), srv.count("/b/head")) == (1, 2)
    assert stats_of(client, "a").failures == 1 and stats_of(client, "a").success_rate == 0.0


async def test_falls_back_when_the_first_endpoint_hangs(srv: ProviderServer, make: MakeClient) -> None:
    srv.script("/a/head", then=Reply.hang(1.0))
    srv.script("/b/head", then=Reply.json({"from": "b"}))
    client = make("a", "b", timeout=TIMEOUT)

    assert await client.get_json("/head") == {"from": "b"}
    assert stats_of(client, "a").last_error.startswith("timeout")


async def test_falls_back_when_the_first_endpoint_refuses_connections(
    srv: ProviderServer, make: MakeClient, http: httpx.AsyncClient, vt: VirtualTime
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    dead = Endpoint("dead", f"http://127.0.0.1:{dead_port}", rate_per_second=1e6, burst=1000)
    srv.script("/b/head", then=Reply.json({"from": "b"}))
    client = make(dead, "b")

    assert await client.get_json("/head") == {"from": "b"}
    assert stats_of(client, "dead").last_error.startswith("connection")

    lone = make(Endpoint("dead2", f"http://127.0.0.1:{dead_port}", rate_per_second=1e6, burst=1000),
                max_attempts=1)
    with pytest.raises(ProviderConnectionError) as caught:
        await lone.get_json("/head")
    assert caught.value.retryable


async def test_returns_to_a_failed_endpoint_after_backoff_when_none_is_fresh(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/head", Reply.status(500), then=Reply.json({"from": "a"}))
    srv.script("/b/head", Reply.status(500), then=Reply.json({"from": "b"}))
    client = make("a", "b")

    assert await client.get_json("/head") == {"from": "a"}
    assert len(vt.sleeps) == 1  # a → b at once, then back off before trying a again


# -- circuit breaker ----------------------------------------------------------------------


async def _open(client: ProviderClient, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ServerError):
            await client.get_json("/head")


async def test_breaker_opens_after_threshold_consecutive_failures(
    srv: ProviderServer, make: MakeClient
) -> None:
    srv.script("/a/head", then=Reply.status(500))
    client = make("a", breaker_threshold=3, max_attempts=1, breaker_cooldown=60.0)

    await _open(client, 2)
    assert stats_of(client, "a").state is CircuitState.CLOSED
    await _open(client, 1)
    assert stats_of(client, "a").state is CircuitState.OPEN

    with pytest.raises(AllEndpointsUnavailable) as caught:
        await client.get_json("/head")
    assert srv.count("/a/head") == 3  # failed fast, nothing sent
    assert caught.value.retryable and caught.value.retry_in == pytest.approx(60.0)


async def test_a_success_resets_the_consecutive_failure_count(srv: ProviderServer, make: MakeClient) -> None:
    srv.script("/a/head", Reply.status(500), Reply.status(500), Reply.json({}), Reply.status(500),
               Reply.status(500))
    client = make("a", breaker_threshold=3, max_attempts=1)

    for expect_ok in (False, False, True, False, False):
        if expect_ok:
            await client.get_json("/head")
        else:
            await _open(client, 1)
    assert stats_of(client, "a").state is CircuitState.CLOSED
    assert stats_of(client, "a").consecutive_failures == 2


async def test_half_open_probe_success_closes_the_circuit(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/head", Reply.status(500), Reply.status(500), then=Reply.json({"back": True}))
    client = make("a", breaker_threshold=2, max_attempts=1, breaker_cooldown=60.0)
    await _open(client, 2)

    vt.advance(59.0)
    assert stats_of(client, "a").state is CircuitState.OPEN
    vt.advance(1.0)
    assert stats_of(client, "a").state is CircuitState.HALF_OPEN

    assert await client.get_json("/head") == {"back": True}
    after = stats_of(client, "a")
    assert (after.state, after.consecutive_failures, after.retry_in_s) == (CircuitState.CLOSED, 0, None)


async def test_half_open_probe_failure_reopens_the_circuit(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/head", then=Reply.status(500))
    client = make("a", breaker_threshold=2, max_attempts=1, breaker_cooldown=60.0)
    await _open(client, 2)
    vt.advance(60.0)

    await _open(client, 1)  # the probe

    after = stats_of(client, "a")
    assert after.state is CircuitState.OPEN and after.retry_in_s == pytest.approx(60.0)


async def test_half_open_admits_one_probe_at_a_time(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/head", Reply.status(500), Reply.json({"probe": True}, delay=0.3))
    client = make("a", breaker_threshold=1, max_attempts=1, breaker_cooldown=60.0)
    await _open(client, 1)
    vt.advance(60.0)

    probe = asyncio.create_task(client.get_json("/head"))
    await wait_until(lambda: srv.count("/a/head") == 2)
    with pytest.raises(AllEndpointsUnavailable):
        await client.get_json("/head")  # the probe is still out

    assert await probe == {"probe": True}
    assert stats_of(client, "a").state is CircuitState.CLOSED


async def test_discovery_probes_a_half_open_endpoint_confirm_stays_on_a_closed_one(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/head", Reply.status(500), then=Reply.json({"from": "a"}))
    srv.script("/b/head", then=Reply.json({"from": "b"}))
    client = make("a", "b", breaker_threshold=1, breaker_cooldown=60.0)
    assert await client.get_json("/head") == {"from": "b"}  # a failed and opened
    vt.advance(60.0)

    assert await client.get_json("/head", priority=Priority.CONFIRM) == {"from": "b"}
    assert await client.get_json("/head", priority=Priority.DISCOVERY) == {"from": "a"}
    assert stats_of(client, "a").state is CircuitState.CLOSED


async def test_all_circuits_open_fails_fast_with_a_retryable_error(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/head", then=Reply.status(500))
    srv.script("/b/head", then=Reply.status(503))
    client = make("a", "b", breaker_threshold=1, breaker_cooldown=60.0)

    # Both circuits open during this call; the third attempt has nowhere to go.
    with pytest.raises(AllEndpointsUnavailable) as caught:
        await client.get_json("/head")
    assert isinstance(caught.value.__cause__, ServerError)

    sent = srv.count()
    vt.advance(10.0)
    with pytest.raises(AllEndpointsUnavailable) as caught:
        await client.get_json("/head", priority=Priority.CONFIRM)
    err = caught.value
    assert srv.count() == sent
    assert err.retryable and err.retry_in == pytest.approx(50.0)
    assert "all endpoints unavailable" in str(err) and "do not advance the cursor" in str(err)
    assert {s.state for s in client.stats()} == {CircuitState.OPEN}


# -- throttling ---------------------------------------------------------------------------


async def test_429_honours_retry_after_and_halves_the_rate(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/head", Reply.status(429, headers={"Retry-After": "3"}), then=Reply.json({"ok": 1}))
    client = make(endpoint(srv, "a", rate_per_second=2.0, burst=1))
    start = vt.now

    assert await client.get_json("/head") == {"ok": 1}

    # Back-off (< 0.1 s) then the limiter holds the endpoint until Retry-After has passed.
    assert vt.now - start == pytest.approx(3.0)
    a = stats_of(client, "a")
    assert (a.throttled, a.effective_rate, a.configured_rate) == (1, 1.0, 2.0)
    assert a.state is CircuitState.CLOSED  # throttling is not a fault


async def test_rate_recovers_additively_to_the_configured_rate(
    srv: ProviderServer, make: MakeClient
) -> None:
    srv.script("/a/head", Reply.status(429), then=Reply.json({}))
    client = make(endpoint(srv, "a", rate_per_second=4.0, burst=1),
                  adaptation=RateAdaptation(decrease=0.5, step=0.25, successes_per_step=2))

    rates = []
    for _ in range(6):
        await client.get_json("/head")
        rates.append(stats_of(client, "a").effective_rate)

    # 429 → 2.0; then +0.25 × 4.0 for every 2 successes, never above 4.0.
    assert rates == [2.0, 3.0, 3.0, 4.0, 4.0, 4.0]


async def test_repeated_throttling_stops_at_the_floor(srv: ProviderServer, make: MakeClient) -> None:
    srv.script("/a/head", then=Reply.status(429))
    client = make(endpoint(srv, "a", rate_per_second=1.0, burst=1), max_attempts=8,
                  adaptation=RateAdaptation(floor=0.1))

    with pytest.raises(RateLimited) as caught:
        await client.get_json("/head")

    assert caught.value.retryable and caught.value.retry_after is None
    assert stats_of(client, "a").effective_rate == pytest.approx(0.1)


async def test_a_throttled_endpoint_hands_its_traffic_to_another(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/head", Reply.status(429, headers={"Retry-After": "30"}), then=Reply.json({"from": "a"}))
    srv.script("/b/head", then=Reply.json({"from": "b"}))
    client = make("a", "b")

    assert await client.get_json("/head") == {"from": "b"}
    assert await client.get_json("/head") == {"from": "b"}
    assert vt.sleeps == [] and stats_of(client, "a").paused_for_s == pytest.approx(30.0)


async def test_tron_style_403_is_throttling_when_the_endpoint_says_so(
    srv: ProviderServer, make: MakeClient
) -> None:
    body = {"Error": "The key exceeds the frequency limit(15), and the query server is suspended for 30s"}
    srv.script("/a/wallet/getnowblock", Reply.status(403, body=body), then=Reply.json({"block": 1}))
    client = make(endpoint(srv, "a", rate_per_second=10.0, throttle_statuses=frozenset({429, 403})))

    assert await client.post_json("/wallet/getnowblock") == {"block": 1}
    assert stats_of(client, "a").effective_rate == 5.0


def test_parse_retry_after() -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=10), usegmt=True), now=now) == 10.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=10), usegmt=True), now=now) == 0.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("86400") == 120.0  # capped: the watcher would rather fail over
    for unreadable in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(unreadable) is None


# -- priorities ---------------------------------------------------------------------------


async def test_confirm_waiters_are_served_before_discovery_waiters(
    srv: ProviderServer, http: httpx.AsyncClient
) -> None:
    vt = VirtualTime(auto=False)
    srv.script("/a/order", then=Reply.json({}))
    async with ProviderClient([endpoint(srv, "a", rate_per_second=1.0, burst=1)], http=http, timeout=1.0,
                              clock=vt.clock, sleep=vt.sleep) as client:

        def call(tag: str, priority: Priority) -> asyncio.Task[Any]:
            return asyncio.create_task(client.get_json("/order", params={"id": tag}, priority=priority))

        tasks = [call("first", Priority.DISCOVERY)]
        await wait_until(lambda: srv.count() == 1)  # took the only token: the limiter is saturated
        tasks += [call(f"d{i}", Priority.DISCOVERY) for i in (1, 2, 3)]
        await wait_until(lambda: client.stats()[0].queued == 3)
        tasks += [call(f"c{i}", Priority.CONFIRM) for i in (1, 2)]  # queued after the discoveries
        await wait_until(lambda: client.stats()[0].queued == 5)

        for served in range(2, 7):  # one token per virtual second
            vt.advance(1.0)
            await wait_until(functools.partial(arrived, srv, served))
        await asyncio.gather(*tasks)

    order = [a.query["id"] for a in srv.arrivals("/a/order")]
    assert order == ["first", "c1", "c2", "d1", "d2", "d3"]


async def test_limiter_spaces_requests_at_the_rate_after_the_burst() -> None:
    vt = VirtualTime()
    bucket = PriorityTokenBucket(2.0, 2.0, clock=vt.clock, sleep=vt.sleep, adaptation=RateAdaptation())

    for _ in range(5):
        await bucket.acquire(Priority.DISCOVERY)

    assert vt.sleeps == pytest.approx([0.5, 0.5, 0.5])  # two from the burst, then one per 1/rate
    await bucket.aclose()


async def test_a_cancelled_waiter_does_not_hold_up_the_queue() -> None:
    vt = VirtualTime(auto=False)
    bucket = PriorityTokenBucket(1.0, 1.0, clock=vt.clock, sleep=vt.sleep, adaptation=RateAdaptation())
    await bucket.acquire(Priority.DISCOVERY)
    gone = asyncio.create_task(bucket.acquire(Priority.CONFIRM))
    kept = asyncio.create_task(bucket.acquire(Priority.DISCOVERY))
    await wait_until(lambda: bucket.queued == 2)

    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    vt.advance(1.0)
    await asyncio.wait_for(kept, 1.0)

    assert bucket.queued == 0
    await bucket.aclose()


# -- head cache ---------------------------------------------------------------------------


async def test_head_cache_serves_within_ttl_and_refetches_after(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/masterchainInfo", Reply.json({"last": {"seqno": 1}}), Reply.json({"last": {"seqno": 2}}))
    client = make("a")
    head = cached(3.0, clock=vt.clock)(
        lambda: client.get_json("/masterchainInfo", priority=Priority.CONFIRM))

    assert (await head())["last"]["seqno"] == 1
    vt.advance(2.9)
    assert (await head())["last"]["seqno"] == 1
    assert srv.count("/a/masterchainInfo") == 1
    vt.advance(0.1)
    assert (await head())["last"]["seqno"] == 2
    assert srv.count("/a/masterchainInfo") == 2


async def test_head_cache_shares_one_in_flight_fetch(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/masterchainInfo", Reply.json({"last": {"seqno": 9}}, delay=0.1))
    client = make("a")
    head = cached(3.0, clock=vt.clock)(lambda: client.get_json("/masterchainInfo"))

    results = await asyncio.gather(*(head() for _ in range(10)))

    assert results == [{"last": {"seqno": 9}}] * 10
    assert srv.count("/a/masterchainInfo") == 1


async def test_head_cache_does_not_keep_failures(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    srv.script("/a/masterchainInfo", Reply.status(404), then=Reply.json({"last": {"seqno": 3}}))
    client = make("a")
    head = cached(3.0, clock=vt.clock)(lambda: client.get_json("/masterchainInfo"))

    with pytest.raises(ClientError):
        await head()
    assert await head() == {"last": {"seqno": 3}}


async def test_one_caller_cancelling_does_not_cancel_the_shared_fetch() -> None:
    vt = VirtualTime()
    release = asyncio.Event()
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    cache: TtlCache[str, int] = TtlCache(5.0, clock=vt.clock)
    impatient = asyncio.create_task(cache.get("head", fetch))
    patient = asyncio.create_task(cache.get("head", fetch))
    await wait_until(lambda: calls == 1)
    impatient.cancel()
    await asyncio.gather(impatient, return_exceptions=True)
    release.set()

    assert await patient == 42
    assert await cache.get("head", fetch) == 42 and calls == 1


def fetch_value(value: int) -> Callable[[], Any]:
    async def fetch() -> int:
        return value

    return fetch


async def test_a_cached_value_ages_from_the_start_of_its_fetch() -> None:
    """A slow answer is as old as the moment it was asked for, not when it arrived."""
    vt = VirtualTime()
    calls = 0

    async def slow_fetch() -> int:
        nonlocal calls
        calls += 1
        vt.advance(2.0)  # the provider took 2 s to answer
        return calls

    cache: TtlCache[str, int] = TtlCache(3.0, clock=vt.clock)
    assert await cache.get("head", slow_fetch) == 1  # asked at 1000, stored at 1002
    vt.advance(0.9)
    assert await cache.get("head", slow_fetch) == 1
    vt.advance(0.1)  # 3 s after the fetch started
    assert await cache.get("head", slow_fetch) == 2  # asked at 1003, stored at 1005

    async def slower_fetch() -> int:
        vt.advance(3.5)  # outlasts the ttl: handed to its caller, never served from the cache
        return 99

    assert await cache.get("other", slower_fetch) == 99
    assert await cache.get("other", fetch_value(7)) == 7


async def test_invalidate_drops_one_key_or_all() -> None:
    vt = VirtualTime()
    cache: TtlCache[str, int] = TtlCache(5.0, clock=vt.clock)
    assert await cache.get("a", fetch_value(1)) == 1
    assert await cache.get("b", fetch_value(2)) == 2

    cache.invalidate("a")
    cache.invalidate("missing")  # nothing to drop: no error
    assert await cache.get("a", fetch_value(10)) == 10
    assert await cache.get("b", fetch_value(20)) == 2

    cache.invalidate()
    assert await cache.get("a", fetch_value(100)) == 100
    assert await cache.get("b", fetch_value(200)) == 200


async def test_cached_keys_by_arguments_and_zero_ttl_never_serves_from_the_cache() -> None:
    vt = VirtualTime()
    calls: list[tuple[int, str]] = []

    async def lookup(n: int, *, unit: str = "ton") -> str:
        calls.append((n, unit))
        return f"{n} {unit}"

    cached_lookup = cached(3.0, clock=vt.clock)(lookup)
    assert await cached_lookup(1) == "1 ton"
    assert await cached_lookup(1) == "1 ton"
    assert await cached_lookup(1, unit="usdt") == "1 usdt"
    assert await cached_lookup(2) == "2 ton"
    assert calls == [(1, "ton"), (1, "usdt"), (2, "ton")]
    assert cached_lookup.__name__ == "lookup"

    uncached = cached(0.0, clock=vt.clock)(lookup)
    assert await uncached(5) == await uncached(5) == "5 ton"
    assert calls[-2:] == [(5, "ton"), (5, "ton")]
    with pytest.raises(ValueError, match="ttl"):
        TtlCache(-1.0)


# -- operators' view and secrets ----------------------------------------------------------


async def test_stats_snapshot_for_operators(srv: ProviderServer, http: httpx.AsyncClient) -> None:
    srv.script("/a/head", then=Reply.status(500))
    srv.script("/b/head", then=Reply.json({"from": "b"}))
    endpoints = [endpoint(srv, "a", rate_per_second=10.0), endpoint(srv, "b", rate_per_second=25.0)]
    async with ProviderClient(endpoints, http=http, timeout=1.0) as client:  # real clock and sleep
        await client.get_json("/head")
        a, b = client.stats()

    assert (a.name, a.state, a.successes, a.failures, a.consecutive_failures) == ("a", "closed", 0, 1, 1)
    assert a.success_rate == 0.0 and a.last_error is not None and a.last_error.startswith("server_error")
    assert a.last_error_age_s is not None and a.last_error_age_s >= 0
    assert (b.successes, b.failures, b.success_rate, b.last_error) == (1, 0, 1.0, None)
    assert b.latency_ms is not None and b.latency_ms > 0
    assert (b.configured_rate, b.effective_rate, b.queued) == (25.0, 25.0, 0)
    assert (b.paused_for_s, b.retry_in_s) == (0.0, None)
    assert b.host == srv.url.removeprefix("http://")
    dumped = json.dumps([s.as_dict() for s in (a, b)])
    assert '"state": "closed"' in dumped and SECRET not in dumped


async def test_api_keys_never_reach_logs_errors_or_reprs(srv: ProviderServer, make: MakeClient) -> None:
    path_key = "0123456789abcdef0123456789abcdef"  # some providers put the key in the URL path
    echo = {"error": f"invalid api key {SECRET}"}  # providers may echo what we sent
    srv.script("/a/head", Reply.status(500, body=echo), Reply.status(429, body=echo),
               then=Reply.status(401, body=echo))
    srv.script("/a/down", then=Reply.status(500, body=echo))
    srv.script(f"/{path_key}/head", then=Reply.status(404, body={"error": f"no route /{path_key}/head"}))
    keyed_path = Endpoint("getblock", f"{srv.url}/{path_key}/", rate_per_second=1e6, burst=10)
    client = make("a", breaker_threshold=2)

    keyed = make(keyed_path)
    errors: list[BaseException] = []
    with structlog.testing.capture_logs() as logs:
        for target, path, kind in ((client, "/head", ClientError),  # 500, 429, then 401
                                   (client, "/down", AllEndpointsUnavailable),  # opens the circuit
                                   (keyed, "/head", ClientError)):
            with pytest.raises(kind) as caught:
                await target.get_json(path)
            errors += [caught.value, caught.value.__cause__ or caught.value]

    events = {e["event"] for e in logs}
    assert {"provider_throttled", "provider_circuit_opened", "provider_client_error"} <= events
    for text in [repr(logs), *map(str, errors), json.dumps([s.as_dict() for s in client.stats()]),
                 repr(endpoint(srv, "a")), repr(keyed_path)]:
        assert SECRET not in text and path_key not in text


async def test_endpoint_and_client_settings_are_checked(http: httpx.AsyncClient) -> None:
    for bad in (
        {"name": "", "base_url": "https://x"},
        {"name": "x", "base_url": "ftp://x"},
        {"name": "x", "base_url": "https://x", "rate_per_second": 0},
        {"name": "x", "base_url": "https://x", "burst": 0.5},
    ):
        with pytest.raises(ValueError):
            Endpoint(**bad)
    headers = {"X-API-Key": SECRET}
    ep = Endpoint("x", "https://toncenter.com/api/v3/", headers=headers)
    headers["X-API-Key"] = "changed"
    assert ep.headers["X-API-Key"] == SECRET
    assert ep.url("/masterchainInfo") == ep.url("masterchainInfo") == "https://toncenter.com/api/v3/masterchainInfo"
    with pytest.raises(ValueError, match="unique"):
        ProviderClient([ep, ep], http=http, timeout=1.0)
    with pytest.raises(ValueError):
        ProviderClient([], http=http, timeout=1.0)


# -- /metrics -----------------------------------------------------------------------------


async def test_calls_and_circuit_states_are_exported(
    srv: ProviderServer, make: MakeClient, vt: VirtualTime
) -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    name = f"metrics-{random.random():.6f}"  # series of its own, whatever ran before
    srv.script(f"/{name}/head", Reply.status(500), Reply.status(500), then=Reply.json({"ok": 1}))
    client = make(name, breaker_threshold=2, max_attempts=1, breaker_cooldown=60.0)
    assert sample("krypton_provider_circuit_state", endpoint=name) == 0
    await _open(client, 2)
    assert sample("krypton_provider_calls_total", endpoint=name, outcome="server_error") == 2
    assert sample("krypton_provider_circuit_state", endpoint=name) == 2
    vt.advance(60.0)  # half-open is read off the clock at scrape time
    assert sample("krypton_provider_circuit_state", endpoint=name) == 1
    assert await client.get_json("/head") == {"ok": 1}
    assert sample("krypton_provider_calls_total", endpoint=name, outcome="ok") == 1
    assert sample("krypton_provider_call_seconds_count", endpoint=name) == 3
    assert sample("krypton_provider_circuit_state", endpoint=name) == 0
