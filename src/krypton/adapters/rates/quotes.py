"""What every live price source shares: the interface LiveRates calls, the error for an
answer it cannot use, and the one way a price in a provider's JSON becomes a rate string."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Protocol

from krypton.domain import money
from krypton.domain.errors import InvalidAmount
from krypton.domain.pricing import UsdRate

# No real price needs more: a longer string is a broken or hostile answer.
_MAX_PRICE_TEXT = 40


class BadQuote(Exception):
    """A source answered, but not with a usable price (wrong shape, missing coin, zero)."""


class PriceSource(Protocol):
    name: str

    async def fetch(self, currencies: Sequence[str]) -> dict[str, UsdRate]:
        """USD rates for every one of `currencies`, or an error (ProviderError, BadQuote)."""


def rate_text(value: Any, what: str) -> str:
    """A price from a JSON body (a string, or a number decoded as Decimal or int, never a
    float) as the plain decimal string Krypton stores ("5.123", not "5.12300000" or "5E+0")."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise BadQuote(f"{what}: expected a decimal price, got {type(value).__name__} {value!r:.60}")
    if len(str(value)) > _MAX_PRICE_TEXT:
        raise BadQuote(f"{what}: {str(value)[:60]}… is too long for a price")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise BadQuote(f"{what}: {value!r:.60} is not a number") from None
    # normalize() rounds to its context's precision: give it room for every digit.
    exact = number.normalize(Context(prec=_MAX_PRICE_TEXT)) if number.is_finite() else number
    text = format(exact, "f")
    try:
        if len(text) > _MAX_PRICE_TEXT:  # 1E+99 is short until written out
            raise InvalidAmount(text)
        money.parse_rate(text)
    except InvalidAmount:
        raise BadQuote(f"{what}: {value!r:.60} is not a plausible positive price") from None
    return text


def from_epoch(value: Any, what: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadQuote(f"{what}: expected a Unix time in seconds, got {value!r:.60}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise BadQuote(f"{what}: {value} is not a plausible Unix time") from None
