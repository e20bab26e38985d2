"""Money: integer smallest units, decimal strings at the edges, and every rounding rule.

Amounts are always an integer count of an asset's smallest unit. Text is the only way in
and out; a float is refused wherever it could appear. Every conversion here says which
way it rounds.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from krypton.domain.errors import InvalidAmount

# Largest amount in smallest units: fits a signed 64-bit column on every database.
MAX_UNITS = 2**63 - 1
MAX_TEXT = 64

_DECIMAL = re.compile(r"(?P<int>0|[1-9][0-9]*)(?:\.(?P<frac>[0-9]+))?")


def parse_units(text: object, decimals: int, *, field: str = "amount", positive: bool = True) -> int:
    """Parse a plain decimal string ("9.99") into smallest units. Never rounds."""
    if not isinstance(text, str):
        raise InvalidAmount(
            f"{field} must be a decimal string such as \"9.99\", not a JSON number.", field=field
        )
    # Longer than any representable amount: refuse before int() works on thousands of digits.
    match = _DECIMAL.fullmatch(text) if len(text) <= MAX_TEXT else None
    if match is None and len(text) > MAX_TEXT:
        raise InvalidAmount(f"{field} is too long; at most {MAX_TEXT} characters.", field=field)
    if match is None:
        raise InvalidAmount(
            f"{field} '{text[:40]}' is not a plain decimal number; write it like \"12.50\" "
            "(digits, one optional dot, no sign, exponent or spaces).",
            field=field,
        )
    frac = match["frac"] or ""
    if len(frac) > decimals:
        raise InvalidAmount(
            f"{field} '{text}' has {len(frac)} decimal places; at most {decimals} are allowed.",
            field=field,
        )
    units: int = int(match["int"]) * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    if units > MAX_UNITS:
        raise InvalidAmount(
            f"{field} '{text}' is larger than the maximum {format_units(MAX_UNITS, decimals)}.",
            field=field,
        )
    if positive and units == 0:
        raise InvalidAmount(f"{field} must be greater than zero.", field=field)
    return units


def format_units(units: int, decimals: int) -> str:
    """Smallest units to the shortest exact decimal string (trailing zeros dropped)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    if decimals == 0 or frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"


@lru_cache(maxsize=1024)  # a handful of configured rates, parsed on every invoice
def parse_rate(text: str) -> Fraction:
    """An exchange rate ("5.12" USD for one whole unit) as an exact fraction."""
    if not isinstance(text, str) or _DECIMAL.fullmatch(text) is None:
        raise InvalidAmount(f"Rate '{text}' must be a plain positive decimal string.", field="rate")
    rate = Fraction(text)
    if rate <= 0:
        raise InvalidAmount(f"Rate '{text}' must be greater than zero.", field="rate")
    return rate


def convert_price(
    price_units: int, price_decimals: int, rate: Fraction, asset_decimals: int
) -> int:
    """Price (in units of a currency) to asset units at `rate` (price currency per whole asset).

    Rounds UP to the asset's smallest unit, so the merchant never receives less than the price.
    """
    # price / 10**price_decimals / rate * 10**asset_decimals, rounded up, in integers.
    numerator = price_units * rate.denominator * 10**asset_decimals
    denominator = rate.numerator * 10**price_decimals
    units: int = -(-numerator // denominator)
    if units > MAX_UNITS:
        raise InvalidAmount("The converted amount is larger than the asset allows.", field="amount")
    return units


def value_in(units: int, decimals: int, rate: Fraction) -> Fraction:
    """Exact value of `units` in the rate's currency (whole units, not rounded)."""
    return Fraction(units, 10**decimals) * rate

