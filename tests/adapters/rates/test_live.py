"""Live rates as the server builds them (bootstrap.usd_rates), against the devnet's fake
sources through the real provider client: one shared fetch per TTL, CoinGecko then Binance,
the last rates served while every source fails, and a clear error when there never was one."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from krypton.app.ports import RateSource
from krypton.bootstrap import usd_rates
from krypton.config import Settings
from krypton.devnet.rates_api import FakeRates
from krypton.domain.errors import RateUnavailable
from krypton.domain.pricing import UsdRate
from tests.support.clock import ManualClock

TEN_MINUTES = timedelta(minutes=10)


@pytest.fixture
def fake(clock: ManualClock) -> FakeRates:
    return FakeRates(clock.now, {"TON": "4.20", "USDT": "0.9990"})


@pytest.fixture
async def rates(clock: ManualClock, fake: FakeRates) -> AsyncIterator[RateSource]:
    source, close = usd_rates(Settings(rates="live"), clock, fake)
    assert close is not None
    yield source
    await close()


async def test_rates_come_from_coingecko_in_one_shared_fetch(
        rates: RateSource, fake: FakeRates, clock: ManualClock) -> None:
    ton, *more = await asyncio.gather(*(rates.usd_rate(c) for c in ("TON", "USDT", "TON", "USDT")))
    assert ton == UsdRate("TON", "4.2", "coingecko", clock.now(), TEN_MINUTES)
    assert more[0] == UsdRate("USDT", "0.999", "coingecko", clock.now(), TEN_MINUTES)
    assert fake.requests == {"coingecko": 1}


async def test_every_digit_of_a_json_number_survives_the_provider_client(
        rates: RateSource, fake: FakeRates) -> None:
    fake.set_price("TON", "5.123456789012345678")  # a float would keep 5.123456789012346
    assert (await rates.usd_rate("TON")).rate == "5.123456789012345678"


async def test_a_rate_is_reused_for_30_seconds_then_fetched_again(
        rates: RateSource, fake: FakeRates, clock: ManualClock) -> None:
    first = await rates.usd_rate("TON")
    fake.set_price("TON", "4.50")
    clock.advance(seconds=29)
    assert await rates.usd_rate("TON") == first
    clock.advance(seconds=1)
    fresh = await rates.usd_rate("TON")
    assert (fresh.rate, fresh.at) == ("4.5", clock.now())
    assert fake.requests == {"coingecko": 2}


async def test_binance_answers_when_coingecko_fails(
        rates: RateSource, fake: FakeRates, clock: ManualClock) -> None:
    fake.fail("coingecko")
    ton, usdt = await rates.usd_rate("TON"), await rates.usd_rate("USDT")
    # TON's price in USDT to Binance's 8 decimals: 4.20 / 0.9990.
    assert ton == UsdRate("TON", "4.2042042", "binance", clock.now(), TEN_MINUTES)
    assert usdt == UsdRate("USDT", "1", "usdt-peg", clock.now(), TEN_MINUTES)
    assert fake.requests == {"coingecko": 2, "binance": 1}  # CoinGecko tried twice


async def test_the_last_rates_are_served_while_every_source_fails(
        rates: RateSource, fake: FakeRates, clock: ManualClock) -> None:
    fetched = await rates.usd_rate("TON")
    fake.fail("coingecko")
    fake.fail("binance", 429)
    clock.advance(minutes=9)
    stale = await rates.usd_rate("TON")
    assert stale == fetched and stale.at == clock.now() - timedelta(minutes=9)
    assert stale.usable(clock.now())
    asked = dict(fake.requests)
    clock.advance(seconds=20)
    await rates.usd_rate("TON")
    assert fake.requests == asked  # a failed round is cached too: no request per invoice
    clock.advance(minutes=1)
    old = await rates.usd_rate("TON")
    assert old.at == fetched.at and not old.usable(clock.now())  # pricing refuses it now


async def test_no_rate_at_all_is_a_clear_temporary_error(rates: RateSource, fake: FakeRates) -> None:
    fake.fail("coingecko")
    fake.fail("binance")
    with pytest.raises(RateUnavailable) as raised:
        await rates.usd_rate("TON")
    assert raised.value.message == ("No USD rate for TON could be fetched yet from coingecko or "
                                    "binance; try again later.")
    assert raised.value.retry_after == 30 and raised.value.code == "rate_unavailable"


async def test_a_recovered_primary_is_used_again(
        rates: RateSource, fake: FakeRates, clock: ManualClock) -> None:
    fake.fail("coingecko")
    assert (await rates.usd_rate("TON")).source == "binance"
    fake.recover("coingecko")
    clock.advance(seconds=30)
    assert (await rates.usd_rate("TON")).source == "coingecko"


async def test_stars_keep_their_static_rate(rates: RateSource, fake: FakeRates) -> None:
    assert await rates.usd_rate("XTR") == UsdRate("XTR", "0.013", "static")
    assert fake.requests == {}


@pytest.mark.parametrize(("setting", "value", "sentence"), [
    ("rates_binance_urls", [], "rates_binance_urls needs at least one URL."),
    ("rates_coingecko_urls", ["api.coingecko.com"], "is not an http(s) URL with a host."),
    ("rates_max_age_seconds", 10, "must be at least rates_ttl_seconds (30)"),
    ("rates", "sometimes", "'static' or 'live'"),
])
def test_bad_rate_settings_are_refused_with_a_sentence(setting: str, value: object, sentence: str) -> None:
    with pytest.raises(ValueError, match=re.escape(sentence)):
        Settings(**{setting: value})
