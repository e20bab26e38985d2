"""Merchants: who gets paid, at which fee, with which methods."""

from __future__ import annotations

from dataclasses import dataclass, field

from krypton.domain.assets import METHODS, method_asset
from krypton.domain.confirmations import MAX_OVERRIDE
from krypton.domain.errors import DomainError
from krypton.domain.fees import DEFAULT_FEE_BPS, validate_bps

MAX_TOLERANCE_BPS = 5_000


@dataclass(slots=True)
class Merchant:
    id: str
    name: str
    fee_bps: int = DEFAULT_FEE_BPS
    confirmations_override: int | None = None
    # Accepted shortfall, in basis points of the amount due (0 = the full amount is needed).
    underpayment_tolerance_bps: int = 0
    methods: tuple[str, ...] = field(default_factory=lambda: tuple(METHODS))
    # Where this merchant's TON payments go (raw form); None: the platform's address.
    ton_address: str | None = None
    # Its active fee-collector contract (raw form): TON itself is paid there.
    ton_collector: str | None = None

    def __post_init__(self) -> None:
        name = self.name.strip() if isinstance(self.name, str) else ""
        if not 1 <= len(name) <= 200:
            raise DomainError("A merchant name must be 1 to 200 characters.", field="name")
        self.name = name
        validate_bps(self.fee_bps)
        if not 0 <= self.underpayment_tolerance_bps <= MAX_TOLERANCE_BPS:
            raise DomainError(f"underpayment_tolerance_bps must be a whole number from 0 to "
                              f"{MAX_TOLERANCE_BPS} (50 %).", field="underpayment_tolerance_bps")
        validate_confirmations(self.confirmations_override, "confirmations_override")
        self.methods = validate_methods(self.methods)


def validate_confirmations(value: int | None, field: str = "confirmations") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_OVERRIDE:
        raise DomainError(f"{field} must be a whole number from 1 to {MAX_OVERRIDE}.", field=field)
    return value


def validate_methods(methods: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if not methods:
        raise DomainError("At least one payment method is needed.", field="methods")
    for m in methods:
        method_asset(m)
    return tuple(dict.fromkeys(methods))
