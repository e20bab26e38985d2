"""The platform fee rule.

fee = floor(gross * bps / 10_000): the fee rounds DOWN to the asset's smallest unit, so a
merchant is never charged more than its stated rate. net = gross - fee, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from krypton.domain.errors import DomainError

MAX_FEE_BPS = 10_000
DEFAULT_FEE_BPS = 100


@dataclass(frozen=True, slots=True)
class FeeSplit:
    gross: int
    fee: int
    net: int


def validate_bps(bps: int, field: str = "fee_bps") -> int:
    if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps <= MAX_FEE_BPS:
        raise DomainError(f"{field} must be a whole number from 0 to {MAX_FEE_BPS}.", field=field)
    return bps


def split(gross: int, bps: int) -> FeeSplit:
    if gross < 0:
        raise DomainError("A settlement cannot be negative.")
    fee = gross * validate_bps(bps) // MAX_FEE_BPS
    return FeeSplit(gross=gross, fee=fee, net=gross - fee)


def percentage(bps: int) -> str:
    """Basis points as a percentage string: 100 -> "1", 125 -> "1.25"."""
    whole, frac = divmod(bps, 100)
    return f"{whole}" if frac == 0 else f"{whole}.{frac:02d}".rstrip("0")
