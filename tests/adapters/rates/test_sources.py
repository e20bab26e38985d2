"""The sources' parsers on the answers their documentation shows: prices kept exact, dated
by the source where it says, and every unusable answer a BadQuote."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from krypton.adapters.rates import binance, coingecko
from krypton.adapters.rates.quotes import BadQuote, rate_text
from krypton.domain.pricing import UsdRate

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
EARLIER = int(NOW.timestamp()) - 45


def decoded(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)  # as the rate sources' provider client does


def test_coingecko_answer_becomes_exact_rates_dated_by_coingecko() -> None:
    body = decoded(f'{{"the-open-network": {{"usd": 5.123456789012345678, "last_updated_at": {EARLIER}}},'
                   f' "tether": {{"usd": 1, "last_updated_at": {EARLIER}}}}}')
    rates = coingecko.parse(body, ("TON", "USDT"), NOW)
    when = datetime.fromtimestamp(EARLIER, UTC)
    assert rates == {"TON": UsdRate("TON", "5.123456789012345678", "coingecko", when),
                     "USDT": UsdRate("USDT", "1", "coingecko", when)}


def test_coingecko_time_never_later_than_receipt_and_optional() -> None:
    ahead = int(NOW.timestamp()) + 600  # a clock ahead of ours does not date a rate in our future
    body = decoded(f'{{"the-open-network": {{"usd": 5.2, "last_updated_at": {ahead}}}, '
                   '"tether": {"usd": 0.999}}')
    rates = coingecko.parse(body, ("TON", "USDT"), NOW)
    assert rates["TON"].at == NOW and rates["USDT"].at == NOW
    assert rates["USDT"].rate == "0.999"


def test_coingecko_request_names_the_coins_and_asks_for_full_precision() -> None:
    assert coingecko.params(("TON", "USDT")) == {
        "ids": "the-open-network,tether", "vs_currencies": "usd",
        "include_last_updated_at": "true", "precision": "full"}


@pytest.mark.parametrize("text", [
    '{"tether": {"usd": 1.0}}',                                        # a coin left out
    '{"the-open-network": {}, "tether": {"usd": 1.0}}',                # no usd price
    '{"the-open-network": {"usd": 0}, "tether": {"usd": 1.0}}',        # zero
    '{"the-open-network": {"usd": -5.1}, "tether": {"usd": 1.0}}',     # negative
    '{"the-open-network": {"usd": "abc"}, "tether": {"usd": 1.0}}',    # not a number
    '{"the-open-network": {"usd": true}, "tether": {"usd": 1.0}}',     # a boolean
    '{"the-open-network": {"usd": 5.1, "last_updated_at": "x"}, "tether": {"usd": 1.0}}',
    '[]',
])
def test_coingecko_unusable_answers_are_bad_quotes(text: str) -> None:
    with pytest.raises(BadQuote):
        coingecko.parse(decoded(text), ("TON", "USDT"), NOW)


def test_binance_price_string_is_normalised() -> None:
    assert binance.parse({"symbol": "TONUSDT", "price": "5.12300000"}, "TONUSDT") == "5.123"
    assert binance.parse({"symbol": "TONUSDT", "price": "100.00000000"}, "TONUSDT") == "100"


@pytest.mark.parametrize("body", [
    {"symbol": "TONBTC", "price": "0.0001"},
    {"symbol": "TONUSDT"},
    {"symbol": "TONUSDT", "price": "0.00000000"},
    {"symbol": "TONUSDT", "price": "NaN"},
    {"code": -1121, "msg": "Invalid symbol."},
    ["TONUSDT", "5"],
])
def test_binance_unusable_answers_are_bad_quotes(body: Any) -> None:
    with pytest.raises(BadQuote):
        binance.parse(body, "TONUSDT")


def test_a_float_is_refused_rather_than_rounded() -> None:
    # The provider client decodes numbers as Decimal; a float reaching here is a wiring bug.
    with pytest.raises(BadQuote, match="float"):
        rate_text(5.1, "test")


def test_absurdly_long_prices_are_refused() -> None:
    with pytest.raises(BadQuote):
        rate_text("1." + "1" * 60, "test")
    with pytest.raises(BadQuote):
        rate_text(Decimal("1E+99"), "test")
    assert rate_text(Decimal("1E-7"), "test") == "0.0000001"
    # Past the 28 digits of Decimal's default context, still not one digit rounded.
    assert rate_text("1.234567890123456789012345678901230", "test") == "1.23456789012345678901234567890123"
