"""How far the server clock is from each chain's clock, and when that is worth a warning.

The skew of a chain is the server's time minus the time of the chain's newest block, taken
together (workers/watch.py samples the heads). A healthy chain's head is a block interval
or two behind (TON about 5 s, Tron 3 s) plus the provider's delay, so a few seconds of
positive skew is normal; the limit (KRYPTON_CLOCK_SKEW_LIMIT_SECONDS) is far above that.
Beyond it either the server clock is wrong (NTP down, a jump) or the chain's head is not
moving as far as the providers show (a halted chain, a provider serving an old head): both
are worth an operator's look, and in both the chain's own time is the one Krypton decides
by (app/chain_time.py).

An episode over the limit is reported once, when it begins, and once when it ends (back
within half the limit: a skew hovering at the limit would otherwise warn on every sample).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DEFAULT_LIMIT = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Skew:
    """One chain's sample: the skew in seconds (positive: the server clock is ahead of the
    chain's head) and whether an episode over the limit began or ended with it."""

    chain: str
    seconds: float
    began: bool = False
    ended: bool = False


@dataclass
class SkewWatch:
    limit: timedelta = DEFAULT_LIMIT
    over: set[str] = field(default_factory=set)  # chains in an episode now

    def observe(self, now: datetime, heads: Mapping[str, datetime]) -> list[Skew]:
        """Compare the server's `now` with each chain's head time."""
        return [self._one(chain, now - heads[chain]) for chain in sorted(heads)]

    def forget(self) -> None:
        """The samples stop here (the chain job moved to another process): an episode ends
        unreported, and a new one there starts afresh."""
        self.over.clear()

    def _one(self, chain: str, skew: timedelta) -> Skew:
        seconds = skew.total_seconds()
        size = abs(skew)
        if chain not in self.over and size > self.limit:
            self.over.add(chain)
            return Skew(chain, seconds, began=True)
        if chain in self.over and size <= self.limit / 2:
            self.over.discard(chain)
            return Skew(chain, seconds, ended=True)
        return Skew(chain, seconds)
