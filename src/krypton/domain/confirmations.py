"""How many confirmations a payment needs before it counts.

By USD value: below $100 one, below $10,000 twelve, otherwise nineteen. A merchant (or an
invoice) may override the count. A chain whose finality comes sooner caps it: on TON one
masterchain block is final, so more confirmations would mean nothing.
"""

from __future__ import annotations

from fractions import Fraction

from krypton.domain.assets import Asset, Chain

TIERS: tuple[tuple[Fraction, int], ...] = ((Fraction(100), 1), (Fraction(10_000), 12))
TOP_TIER = 19
MAX_OVERRIDE = 100


def required(asset: Asset, usd_value: Fraction, override: int | None = None) -> int:
    if override is not None:
        count = override
    else:
        count = next((n for limit, n in TIERS if usd_value < limit), TOP_TIER)
    return max(1, min(count, asset.finality_depth))


def waits_for(asset: Asset, usd_value: Fraction, override: int | None = None) -> int:
    """The confirmations a payment really waits for, which it shows as required.

    A payment is confirmed only once its chain calls it final (`finality.py`) and the policy's
    count is reached. Tron calls a transfer final when its block is solidified, `finality_depth`
    (19) blocks on, whatever the amount: showing the policy's 1 for a small payment would
    promise a wait 18 blocks shorter than the real one. On TON final comes with one
    masterchain block, which is also every policy count there.
    """
    count = required(asset, usd_value, override)
    return asset.finality_depth if asset.chain is Chain.TRON else count
