"""Live USD rates for TON and USDT from public price sources, tried in order.

The rates are fetched together from one source (all from the first that answers, so an
invoice's rates share one source and time) and kept for `ttl` seconds in the provider
layer's TTL cache, which also makes concurrent callers share one fetch. When every source
fails, the newest rates fetched before are served again, each with its own (old) time and
`max_age`: the pricing rule (domain/pricing.py) refuses a USD price at a rate older than
that, while a price in the asset itself still gets its confirmation policy from it. The
failed round is cached like a good one, so an outage costs one attempt per `ttl`, not one
per invoice.

Telegram Stars (XTR) have a price Telegram sets, not a market one: their rate comes from
the static table.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

import structlog

from krypton.adapters.chains.provider import ProviderError, TtlCache
from krypton.adapters.rates.quotes import BadQuote, PriceSource
from krypton.app.ports import RateSource
from krypton.domain.errors import RateUnavailable
from krypton.domain.pricing import UsdRate

log = structlog.get_logger()

LIVE_CURRENCIES = ("TON", "USDT")
DEFAULT_TTL = 30.0
DEFAULT_MAX_AGE = timedelta(minutes=10)
_KEY = "usd"


class LiveRates:
    def __init__(self, sources: Sequence[PriceSource], fixed: RateSource, *,
                 ticks: Callable[[], float] = time.monotonic, ttl: float = DEFAULT_TTL,
                 max_age: timedelta = DEFAULT_MAX_AGE) -> None:
        """`ticks` (seconds, monotonic) times the cache; the sources date the rates."""
        if not sources:
            raise ValueError("LiveRates needs at least one price source")
        self.name = "live (" + ", then ".join(s.name for s in sources) + ")"
        self._sources = tuple(sources)
        self._fixed = fixed
        self._ttl = ttl
        self._max_age = max_age
        self._cache: TtlCache[str, dict[str, UsdRate]] = TtlCache(ttl, clock=ticks)
        self._latest: dict[str, UsdRate] = {}

    async def usd_rate(self, currency: str) -> UsdRate:
        if currency not in LIVE_CURRENCIES:
            return await self._fixed.usd_rate(currency)
        rates = await self._cache.get(_KEY, self._refresh)
        try:
            return rates[currency]
        except KeyError:
            raise RateUnavailable(
                f"No USD rate for {currency} could be fetched yet from "
                f"{' or '.join(s.name for s in self._sources)}; try again later.",
                field="currency", retry_after=max(1, round(self._ttl))) from None

    async def _refresh(self) -> dict[str, UsdRate]:
        """The rates of the first source that answers; else the newest known (maybe none)."""
        failures = []
        for source in self._sources:
            try:
                fetched = await source.fetch(LIVE_CURRENCIES)
            except (ProviderError, BadQuote) as exc:
                failures.append(f"{source.name}: {exc}")
                log.warning("rates_source_failed", source=source.name, error=str(exc))
                continue
            self._latest = {c: dataclasses.replace(fetched[c], max_age=self._max_age)
                            for c in LIVE_CURRENCIES}
            return self._latest
        oldest = min((r.at for r in self._latest.values() if r.at), default=None)
        log.warning("rates_unavailable", serving_from=oldest.isoformat() if oldest else None,
                    failures="; ".join(failures))
        return self._latest
