"""Turning a price into payment options: one amount per accepted asset, at locked rates.

A USD rate comes with where and when it was quoted. A price in USD is converted only at a
rate younger than its `max_age`: past that the invoice is refused (RateUnavailable) rather
than priced on an old rate. A price in the asset itself needs the USD rate only for the
confirmation policy, so an older rate still serves there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from krypton.domain import money
from krypton.domain.assets import USD, method_asset, pricing_decimals
from krypton.domain.errors import DomainError, RateUnavailable
from krypton.domain.invoice import PaymentOption


@dataclass(frozen=True, slots=True)
class UsdRate:
    """USD for one whole unit of `currency`, as an exact decimal string."""

    currency: str
    rate: str
    # Who quoted it ("static" for the configured table) and when (None: a fixed table).
    source: str
    at: datetime | None = None
    # How old it may be and still price in USD (None: any age, the static table).
    max_age: timedelta | None = None

    def usable(self, now: datetime) -> bool:
        return self.at is None or self.max_age is None or now - self.at <= self.max_age


def options(price_currency: str, price_units: int, methods: Sequence[str],
            usd_rates: Mapping[str, UsdRate], now: datetime) -> tuple[PaymentOption, ...]:
    """`usd_rates` maps a currency ("TON", "USDT", "XTR") to USD per whole unit."""
    price_decimals = pricing_decimals(price_currency)
    result = []
    for method in methods:
        asset = method_asset(method)
        quote = usd_rates[asset.currency]
        usd_rate = quote.rate
        if price_currency == asset.currency:
            rate, amount = "1", price_units * 10 ** (asset.decimals - price_decimals)
        elif price_currency == USD:
            _check_fresh(quote, now)
            rate = usd_rate
            amount = money.convert_price(price_units, price_decimals, money.parse_rate(rate),
                                         asset.decimals)
        else:
            continue
        if amount < asset.dust_min:
            raise DomainError(
                f"The price is below the smallest accepted {asset.code} payment "
                f"({money.format_units(asset.dust_min, asset.decimals)}).", field="amount")
        result.append(PaymentOption(method, asset.code, amount, rate, usd_rate))
    if not result:
        raise DomainError(
            f"No enabled payment method accepts a price in {price_currency}; price it in USD "
            "or enable a method paid in that currency.", field="methods")
    return tuple(result)


def provenance(rates: Iterable[UsdRate]) -> tuple[str, datetime | None]:
    """Where the rates an invoice was priced at came from ("coingecko", "static", or both
    joined by "+"), and when the oldest dated one was quoted."""
    sources: set[str] = set()
    oldest: datetime | None = None
    for rate in rates:  # one pass, no intermediate lists: it runs on every invoice
        sources.add(rate.source)
        if rate.at is not None and (oldest is None or rate.at < oldest):
            oldest = rate.at
    return next(iter(sources)) if len(sources) == 1 else "+".join(sorted(sources)), oldest


def _check_fresh(quote: UsdRate, now: datetime) -> None:
    if quote.usable(now):
        return
    assert quote.at is not None and quote.max_age is not None
    raise RateUnavailable(
        f"No USD rate for {quote.currency} newer than {_utc(now - quote.max_age)} (the last "
        f"one, from {quote.source}, is from {_utc(quote.at)}); try again later.",
        field="currency")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def currencies_needed(price_currency: str, methods: Sequence[str]) -> set[str]:
    return {method_asset(m).currency for m in methods} | ({price_currency} - {USD})
