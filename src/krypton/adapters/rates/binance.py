"""Binance's spot price ticker (https://developers.binance.com, "Symbol price ticker"):

    GET {base}/api/v3/ticker/price?symbol=TONUSDT
    200 {"symbol": "TONUSDT", "price": "5.12300000"}
    400 {"code": -1121, "msg": "Invalid symbol."}

`base` is https://api.binance.com (api1…api4.binance.com and api-gcp.binance.com are
documented alternatives: list them as fallback endpoints). Prices are decimal strings.
The answer carries no time: a rate is dated when we received it.

Binance quotes TON in USDT and has no USD market, so this source says TON/USD = TON/USDT
and USDT/USD = 1 (the peg), labelled "usdt-peg" so an invoice shows it. CoinGecko, the
primary source, quotes USDT's market price in USD.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from krypton.adapters.chains.provider import ProviderClient
from krypton.adapters.rates.quotes import BadQuote, rate_text
from krypton.domain.pricing import UsdRate

NAME = "binance"
PEG = "usdt-peg"
PATH = "/api/v3/ticker/price"
SYMBOLS = {"TON": "TONUSDT"}


def parse(body: Any, symbol: str) -> str:
    """The price in a /ticker/price answer for one symbol."""
    if not isinstance(body, dict) or body.get("symbol") != symbol or "price" not in body:
        raise BadQuote(f"{NAME}: expected {{'symbol': {symbol!r}, 'price': ...}}, got {body!r:.120}")
    return rate_text(body["price"], f"{NAME} {symbol}")


class Binance:
    name = NAME

    def __init__(self, provider: ProviderClient, now: Callable[[], datetime]) -> None:
        self._provider = provider
        self._now = now

    async def fetch(self, currencies: Sequence[str]) -> dict[str, UsdRate]:
        rates = {}
        for currency in currencies:
            if currency == "USDT":
                rates[currency] = UsdRate(currency, "1", PEG, self._now())
                continue
            symbol = SYMBOLS[currency]
            body = await self._provider.get_json(PATH, params={"symbol": symbol})
            rates[currency] = UsdRate(currency, parse(body, symbol), NAME, self._now())
        return rates
