"""The asset catalogue: what Krypton can be paid in, as data."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from krypton.domain.errors import UnknownAsset


class Chain(StrEnum):
    TON = "ton"
    TRON = "tron"
    TELEGRAM = "telegram"


@dataclass(frozen=True, slots=True)
class Asset:
    code: str
    chain: Chain
    decimals: int
    display_name: str
    # Transfers below this many smallest units are recorded but change no state.
    dust_min: int
    # Token contract (TRC-20) or jetton master; None for a chain's native coin.
    contract: str | None
    # The payment method a payer picks for this asset.
    method: str
    # Blocks after which the chain itself considers a transfer final.
    finality_depth: int
    # Pricing currency the asset is worth one unit of (USDT on both chains is "USDT").
    currency: str


TON = Asset("TON", Chain.TON, 9, "Toncoin", 1_000_000, None, "ton", 1, "TON")
USDT_TON = Asset(
    "USDT_TON",
    Chain.TON,
    6,
    "Tether USD (TON jetton)",
    10_000,
    "0:b113a994b5024a16719f69139328eb759596c38a25f59028b146fecdc3621dfe",
    "usdt_ton",
    1,
    "USDT",
)
USDT_TRC20 = Asset(
    "USDT_TRC20",
    Chain.TRON,
    6,
    "Tether USD (Tron TRC-20)",
    10_000,
    "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
    "usdt_trc20",
    19,
    "USDT",
)
XTR = Asset("XTR", Chain.TELEGRAM, 0, "Telegram Stars", 1, None, "stars", 1, "XTR")

ASSETS: dict[str, Asset] = {a.code: a for a in (TON, USDT_TON, USDT_TRC20, XTR)}
METHODS: dict[str, Asset] = {a.method: a for a in ASSETS.values()}

# Currencies an invoice can be priced in, with their decimals. "USDT" means either USDT asset.
USD = "USD"
PRICING_DECIMALS: dict[str, int] = {USD: 2, "TON": 9, "USDT": 6, "XTR": 0}


def asset(code: str) -> Asset:
    try:
        return ASSETS[code]
    except KeyError:
        raise UnknownAsset(
            f"Unknown asset '{code}'; use one of {', '.join(sorted(ASSETS))}.", field="asset"
        ) from None


def method_asset(method: str) -> Asset:
    try:
        return METHODS[method]
    except KeyError:
        raise UnknownAsset(
            f"Unknown payment method '{method}'; use one of {', '.join(sorted(METHODS))}.",
            field="methods",
        ) from None


def pricing_decimals(currency: str) -> int:
    try:
        return PRICING_DECIMALS[currency]
    except KeyError:
        raise UnknownAsset(
            f"Unknown currency '{currency}'; use one of {', '.join(PRICING_DECIMALS)}.",
            field="currency",
        ) from None

