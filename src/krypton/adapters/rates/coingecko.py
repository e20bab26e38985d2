"""CoinGecko's simple price API (https://docs.coingecko.com, "Coin Price by IDs"):

    GET {base}/simple/price?ids=the-open-network,tether&vs_currencies=usd
        &include_last_updated_at=true&precision=full
    200 {"the-open-network": {"usd": 5.123456, "last_updated_at": 1764950400},
         "tether": {"usd": 1.0002, "last_updated_at": 1764950398}}

`base` is https://api.coingecko.com/api/v3 (a Demo key goes in the x-cg-demo-api-key
header). Prices are JSON numbers: the provider client decodes them as Decimal, so none
passes through a float. A coin id CoinGecko does not know is left out of the answer.
`last_updated_at` is when CoinGecko last updated that price (it refreshes every 60 s on the
public API); a rate is dated by it, never later than when we received it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from krypton.adapters.chains.provider import ProviderClient
from krypton.adapters.rates.quotes import BadQuote, from_epoch, rate_text
from krypton.domain.pricing import UsdRate

NAME = "coingecko"
PATH = "/simple/price"
COIN_IDS = {"TON": "the-open-network", "USDT": "tether"}
KEY_HEADER = "x-cg-demo-api-key"


def params(currencies: Sequence[str]) -> dict[str, str]:
    return {"ids": ",".join(COIN_IDS[c] for c in currencies), "vs_currencies": "usd",
            "include_last_updated_at": "true", "precision": "full"}


def parse(body: Any, currencies: Sequence[str], received_at: datetime) -> dict[str, UsdRate]:
    """The USD rate of each currency in a /simple/price answer."""
    if not isinstance(body, dict):
        raise BadQuote(f"{NAME}: expected a JSON object, got {type(body).__name__}")
    rates = {}
    for currency in currencies:
        coin = body.get(COIN_IDS[currency])
        if not isinstance(coin, dict) or "usd" not in coin:
            raise BadQuote(f"{NAME}: no USD price for {COIN_IDS[currency]} in the answer")
        at = received_at
        if coin.get("last_updated_at") is not None:
            at = min(at, from_epoch(coin["last_updated_at"], f"{NAME} {COIN_IDS[currency]}"))
        rates[currency] = UsdRate(currency, rate_text(coin["usd"], f"{NAME} {COIN_IDS[currency]}"),
                                  NAME, at)
    return rates


class CoinGecko:
    name = NAME

    def __init__(self, provider: ProviderClient, now: Callable[[], datetime]) -> None:
        self._provider = provider
        self._now = now

    async def fetch(self, currencies: Sequence[str]) -> dict[str, UsdRate]:
        body = await self._provider.get_json(PATH, params=params(currencies))
        return parse(body, currencies, self._now())
