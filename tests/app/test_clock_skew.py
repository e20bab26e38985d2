"""The server clock against the chains' clocks (issue 19 §2): each head sample records the
chain's time for the decisions judged by it and exports the skew; beyond the limit one
warning per episode, not one per sample."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from krypton.app import chain_time, merchants
from krypton.app.chain_time import ChainHead
from krypton.app.clock_skew import SkewWatch
from krypton.app.deps import Deps
from krypton.bootstrap import ChainAdapters, Container
from krypton.workers.watch import STALE_SECONDS, HeadLag
from tests.support.clock import ManualClock

LIMIT = timedelta(seconds=60)
# The head sampler, the heads it will read, and its monotonic clock.
Sampled = tuple[HeadLag, dict[str, ChainHead], list[float]]
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def skew(chain: str) -> float | None:
    return REGISTRY.get_sample_value("krypton_clock_skew_seconds", {"chain": chain})


# --- episodes ----------------------------------------------------------------------------------

def test_an_episode_is_reported_when_it_begins_and_when_it_ends_not_in_between() -> None:
    watch = SkewWatch(LIMIT)
    seen = []
    # (server clock - head time) in seconds, sample after sample
    for seconds in (3, 61, 600, 45, 31, 29, 2, -61, -600, -10):
        [one] = watch.observe(T0 + timedelta(seconds=seconds), {"ton": T0})
        assert one.seconds == seconds
        seen.append("began" if one.began else "ended" if one.ended else "")
    # 45 and 31 are within the limit but not within half of it: the same episode goes on.
    assert seen == ["", "began", "", "", "", "ended", "", "began", "", "ended"]


def test_each_chain_has_episodes_of_its_own() -> None:
    watch = SkewWatch(LIMIT)
    [ton, tron] = watch.observe(T0, {"tron": T0 - timedelta(minutes=10), "ton": T0})
    assert (ton.chain, ton.began, tron.chain, tron.began) == ("ton", False, "tron", True)
    assert watch.over == {"tron"}


def test_the_limit_is_a_setting_with_a_sentence() -> None:
    from krypton.config import Settings

    assert Settings().clock_skew_limit_seconds == 60
    assert "warning" in (Settings.model_fields["clock_skew_limit_seconds"].description or "")


# --- the head sampler ----------------------------------------------------------------------------

@dataclasses.dataclass
class _Watch:
    deps: Deps
    caught_up: dict[str, float] = dataclasses.field(default_factory=dict)
    last_round_began: float | None = 0.0


@pytest.fixture
async def sampled(container: Container, clock: ManualClock) -> AsyncIterator[Sampled]:
    heads = {"ton": ChainHead(100, clock.now()), "tron": ChainHead(7, clock.now())}
    monotonic = [0.0]

    async def read_heads() -> dict[str, ChainHead]:
        return dict(heads)

    lag = HeadLag(_Watch(container.deps), read_heads, clock=lambda: monotonic[0],  # type: ignore[arg-type]
                  skew=SkewWatch(LIMIT))
    yield lag, heads, monotonic
    monotonic[0] += STALE_SECONDS + 1  # withdraw the figures: the gauge is process-wide
    lag.watch.last_round_began = 0.0
    await lag.step()


async def test_each_sample_records_the_chain_time_and_exports_the_skew(
        sampled: Sampled, clock: ManualClock) -> None:
    lag, heads, _ = sampled
    clock.advance(seconds=4)  # the heads are 4 s old when they are compared
    await lag.step()
    assert (skew("ton"), skew("tron")) == (4.0, 4.0)
    async with lag.watch.deps.uow(write=False) as uow:
        assert await chain_time.latest(uow) == {"ton": heads["ton"].time, "tron": heads["tron"].time}
    assert REGISTRY.get_sample_value("krypton_watcher_head_lag_blocks", {"chain": "ton"}) == 0


@pytest.mark.parametrize("jump", [timedelta(minutes=10), -timedelta(minutes=10)], ids=["ahead", "back"])
async def test_a_clock_jump_is_warned_about_once_per_episode(
        sampled: Sampled, clock: ManualClock,
        jump: timedelta) -> None:
    lag, heads, monotonic = sampled
    with capture_logs() as logs:
        await lag.step()
        clock.current += jump
        for _ in range(5):  # five samples, 15 s apart, the chain moving on as usual
            monotonic[0] += 15
            lag.watch.last_round_began = monotonic[0]  # the chain job runs here all along
            clock.advance(seconds=15)
            for chain, head in heads.items():
                heads[chain] = ChainHead(head.number + 3, head.time + timedelta(seconds=15))
            await lag.step()
        assert skew("ton") == jump.total_seconds()
        clock.current -= jump  # NTP puts it right
        await lag.step()
    warnings = [e for e in logs if e["event"] == "clock_skew"]
    assert [(w["chain"], w["skew_seconds"], w["log_level"]) for w in warnings] == \
        [("ton", jump.total_seconds(), "warning"), ("tron", jump.total_seconds(), "warning")]
    assert [e["chain"] for e in logs if e["event"] == "clock_skew_over"] == ["ton", "tron"]
    assert skew("ton") == skew("tron") == 0


async def test_a_jump_back_never_moves_the_recorded_chain_time_back(
        sampled: Sampled, clock: ManualClock) -> None:
    """The recorded time is the chain's own: the server clock has no say in it."""
    lag, heads, _ = sampled
    await lag.step()
    newest = heads["ton"].time
    clock.current -= timedelta(minutes=10)
    heads["ton"] = ChainHead(99, newest - timedelta(seconds=5))  # a lagging provider's answer
    await lag.step()
    async with lag.watch.deps.uow(write=False) as uow:
        assert (await chain_time.latest(uow))["ton"] == newest


async def test_the_skew_is_withdrawn_where_the_chain_job_stopped(
        sampled: Sampled) -> None:
    lag, _, monotonic = sampled
    await lag.step()
    assert skew("ton") is not None
    monotonic[0] += STALE_SECONDS + 1
    await lag.step()
    assert skew("ton") is None and skew("tron") is None


async def test_the_devnet_heads_carry_the_chains_time(container: Container, clock: ManualClock) -> None:
    """The real client and parsers against the devnet: the time is the head block's."""
    assert container.devnet is not None
    await merchants.create_merchant(container.deps, name="Shop")
    chains: ChainAdapters = container.chains()
    try:
        clock.advance(seconds=30)
        container.devnet.produce("ton")
        container.devnet.produce("tron")
        heads = await chains.heads()
    finally:
        await chains.aclose()
    devnet = container.devnet
    assert heads["ton"] == ChainHead(devnet.ton.head.seqno,
                                     datetime.fromtimestamp(devnet.ton.head.gen_utime, UTC))
    assert heads["tron"].number == devnet.tron.head.number
    assert heads["tron"].time == datetime.fromtimestamp(devnet.tron.head.timestamp / 1000, UTC)
    assert heads["tron"].time == heads["ton"].time == clock.now()
