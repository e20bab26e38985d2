"""Pricing at a dated rate: a USD price converts only at a rate no older than its max_age,
a price in the asset itself at any; the invoice records where its rates came from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from krypton.domain import pricing
from krypton.domain.errors import RateUnavailable
from krypton.domain.pricing import UsdRate

QUOTED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LIMIT = timedelta(minutes=10)
TON = UsdRate("TON", "4", "coingecko", QUOTED, LIMIT)


def test_a_usd_price_uses_a_rate_up_to_its_max_age_and_not_a_microsecond_more() -> None:
    (option,) = pricing.options("USD", 1000, ["ton"], {"TON": TON}, QUOTED + LIMIT)
    assert (option.amount, option.rate, option.usd_rate) == (2_500_000_000, "4", "4")
    with pytest.raises(RateUnavailable) as raised:
        pricing.options("USD", 1000, ["ton"], {"TON": TON}, QUOTED + LIMIT + timedelta(microseconds=1))
    assert raised.value.message == (
        "No USD rate for TON newer than 2026-11-24 12:00:00 UTC (the last one, from coingecko, "
        "is from 2026-11-24 12:00:00 UTC); try again later.")
    assert (raised.value.code, raised.value.field, raised.value.retry_after) == (
        "rate_unavailable", "currency", 30)


def test_a_price_in_the_asset_takes_an_old_rate_for_its_confirmation_policy() -> None:
    (option,) = pricing.options("TON", 3 * 10**9, ["ton"], {"TON": TON}, QUOTED + timedelta(days=1))
    assert (option.amount, option.rate, option.usd_rate) == (3 * 10**9, "1", "4")


def test_a_fixed_rate_never_ages() -> None:
    static = UsdRate("TON", "5.00", "static")
    assert static.usable(QUOTED + timedelta(days=3650))


def test_provenance_names_every_source_and_the_oldest_time() -> None:
    later = UsdRate("USDT", "1", "coingecko", QUOTED + timedelta(seconds=2), LIMIT)
    stars = UsdRate("XTR", "0.013", "static")
    assert pricing.provenance([later, TON, stars]) == ("coingecko+static", QUOTED)
    assert pricing.provenance([stars]) == ("static", None)
