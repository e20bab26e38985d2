"""The Tron reader's event-scan mode, through the real client and parser against the devnet's
TronGrid: where a scan starts, the cursor it returns per page, and when it reaches back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from krypton.adapters.chains.provider import Endpoint, ProviderClient
from krypton.adapters.chains.tron.client import PAGE, TronGridClient
from krypton.adapters.chains.tron.reader import ScanPolicy, TronReader
from krypton.adapters.chains.tron.transfer import MAINNET_USDT
from krypton.app.ports import Watch
from krypton.devnet import Devnet, create_devnet_app
from tests.adapters.chains.tron.test_derivation import ACCOUNT
from tests.support.clock import ManualClock

ADDRESSES = [ACCOUNT.address(i) for i in range(21)]  # one more than the scan threshold
POLICY = ScanPolicy(lookback=timedelta(hours=1), overlap=timedelta(minutes=5),
                    sweep_every=timedelta(minutes=10))
EVENTS = f"/trongrid/v1/contracts/{MAINNET_USDT}/events"


class Recorded:
    """The query of every contract-events request the reader sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []

    async def __call__(self, request: httpx.Request) -> None:
        if request.url.path == EVENTS:
            self.events.append(dict(request.url.params))


@pytest.fixture
def devnet(clock: ManualClock) -> Devnet:
    return Devnet(clock.now, seed="tests")


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
async def reader(devnet: Devnet, clock: ManualClock, recorded: Recorded) -> AsyncIterator[TronReader]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_devnet_app(devnet)),
                             base_url="http://devnet", event_hooks={"request": [recorded]})
    provider = ProviderClient([Endpoint("devnet", "http://devnet/trongrid", rate_per_second=1000,
                                        burst=100)], http=http, timeout=5)
    yield TronReader(TronGridClient(provider, MAINNET_USDT), clock, POLICY)
    await provider.aclose()
    await http.aclose()


def ms(clock: ManualClock, **ago: float) -> int:
    return int((clock.now() - timedelta(**ago)).timestamp() * 1000)


def watching(since_ms: int) -> Watch:
    return Watch(dict.fromkeys(ADDRESSES, since_ms))


async def test_the_first_scan_starts_at_the_lookback_not_at_the_start_of_history(
        reader: TronReader, recorded: Recorded, clock: ManualClock) -> None:
    await reader.read(None, watching(ms(clock, hours=3)))
    assert reader.scanning
    assert recorded.events[-1]["min_block_timestamp"] == str(ms(clock, hours=1))


async def test_the_first_scan_starts_at_the_oldest_watch_start_when_that_is_later(
        reader: TronReader, recorded: Recorded, clock: ManualClock) -> None:
    await reader.read(None, watching(ms(clock, minutes=10)))
    assert recorded.events[-1]["min_block_timestamp"] == str(ms(clock, minutes=10))


async def test_up_to_the_threshold_every_address_is_polled_and_no_cursor_is_kept(
        reader: TronReader, recorded: Recorded, devnet: Devnet, clock: ManualClock) -> None:
    devnet.tron.transfer("alice", ADDRESSES[3], 7)
    devnet.produce("tron")
    read = await reader.read(None, Watch(dict.fromkeys(ADDRESSES[:20], ms(clock, minutes=1))))
    assert not reader.scanning and recorded.events == []
    assert [t.amount for t in read.seen] == [7] and read.cursor is None and not read.more


async def test_each_page_returns_its_cursor_and_the_scan_goes_on_from_the_next_page(
        reader: TronReader, recorded: Recorded, devnet: Devnet, clock: ManualClock) -> None:
    for _ in range(PAGE):
        devnet.tron.transfer("alice", ADDRESSES[0], 1)
    first = devnet.tron.produce_block()
    clock.advance(seconds=3)
    for _ in range(50):
        devnet.tron.transfer("bob", ADDRESSES[1], 2)
    second = devnet.tron.produce_block()
    watch = watching(ms(clock, minutes=5))

    page = await reader.read(None, watch)
    assert (len(page.seen), page.cursor, page.more) == (PAGE, str(first.timestamp), True)
    assert "fingerprint" not in recorded.events[-1]
    page = await reader.read(page.cursor, watch)
    assert (len(page.seen), page.cursor, page.more) == (50, str(second.timestamp), False)
    assert {t.amount for t in page.seen} == {2}
    assert recorded.events[-1]["min_block_timestamp"] == recorded.events[-2]["min_block_timestamp"]
    assert "fingerprint" in recorded.events[-1]


async def test_a_scan_cut_short_starts_again_at_the_stored_cursor(
        reader: TronReader, recorded: Recorded, devnet: Devnet, clock: ManualClock) -> None:
    """A page whose ingest failed ends its follow(): the next one (a new Watch) must not
    carry on after that page, but read again from the cursor stored before it."""
    for _ in range(PAGE + 1):
        devnet.tron.transfer("alice", ADDRESSES[0], 1)
    block = devnet.tron.produce_block()
    page = await reader.read(None, watching(ms(clock, minutes=5)))
    assert page.more and page.cursor == str(block.timestamp)
    again = await reader.read(None, watching(ms(clock, minutes=5)))  # the cursor was never stored
    assert "fingerprint" not in recorded.events[-1] and len(again.seen) == PAGE
    resumed = await reader.read(page.cursor, watching(ms(clock, minutes=5)))
    assert "fingerprint" not in recorded.events[-1]
    assert recorded.events[-1]["min_block_timestamp"] == str(block.timestamp)
    assert len(resumed.seen) == PAGE


async def test_a_scan_reaches_back_the_overlap_every_half_overlap(
        reader: TronReader, recorded: Recorded, devnet: Devnet, clock: ManualClock) -> None:
    watch_from = ms(clock, minutes=30)
    devnet.tron.transfer("alice", ADDRESSES[0], 1)
    block = devnet.tron.produce_block()
    cursor = (await reader.read(None, watching(watch_from))).cursor
    assert cursor == str(block.timestamp)

    def since() -> int:
        return int(recorded.events[-1]["min_block_timestamp"])

    clock.advance(seconds=10)
    assert (await reader.read(cursor, watching(watch_from))).cursor == cursor
    assert since() == block.timestamp  # between rewinds: from the cursor on
    clock.advance(seconds=140)  # half the overlap after the first scan
    await reader.read(cursor, watching(watch_from))
    assert since() == block.timestamp - 300_000
    clock.advance(seconds=10)
    await reader.read(cursor, watching(watch_from))
    assert since() == block.timestamp
    clock.advance(hours=2)  # never before the lookback, even when the cursor is older
    await reader.read(cursor, watching(watch_from))
    assert since() == ms(clock, hours=1)


def test_a_policy_needs_positive_durations() -> None:
    with pytest.raises(ValueError, match="positive"):
        ScanPolicy(overlap=timedelta(0))
