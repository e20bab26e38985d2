"""The embedded default rate source: a fixed table from configuration.

It is labelled "static" everywhere it shows (API, CLI) because its prices never move:
fine for a demo or for a merchant pricing in the asset itself, wrong for real USD pricing.
"""

from __future__ import annotations

from collections.abc import Mapping

from krypton.domain import money
from krypton.domain.errors import DomainError
from krypton.domain.pricing import UsdRate

SOURCE = "static"


class StaticRates:
    name = "static (configured table, not live)"

    def __init__(self, table: Mapping[str, str]) -> None:
        for rate in table.values():
            money.parse_rate(rate)
        self.table = dict(table)
        # Built once: an invoice asks for one or two of them.
        self._rates = {c: UsdRate(c, rate, SOURCE) for c, rate in self.table.items()}

    async def usd_rate(self, currency: str) -> UsdRate:
        try:
            return self._rates[currency]
        except KeyError:
            raise DomainError(f"No USD rate is configured for {currency}.", field="currency",
                              code="rate_unavailable") from None
