"""Turning a price into payment options: one amount per accepted asset, at locked rates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from krypton.domain import money
from krypton.domain.assets import USD, method_asset, pricing_decimals
from krypton.domain.errors import DomainError
from krypton.domain.invoice import PaymentOption


def options(price_currency: str, price_units: int, methods: Sequence[str],
            usd_rates: Mapping[str, str]) -> tuple[PaymentOption, ...]:
    """`usd_rates` maps a currency ("TON", "USDT", "XTR") to USD per whole unit."""
    price_decimals = pricing_decimals(price_currency)
    result = []
    for method in methods:
        asset = method_asset(method)
        usd_rate = usd_rates[asset.currency]
        if price_currency == asset.currency:
            rate, amount = "1", price_units * 10 ** (asset.decimals - price_decimals)
        elif price_currency == USD:
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


def currencies_needed(price_currency: str, methods: Sequence[str]) -> set[str]:
    return {method_asset(m).currency for m in methods} | ({price_currency} - {USD})
