"""The embedded default rate source: a fixed table from configuration.

It is labelled "static" everywhere it shows (API, CLI) because its prices never move:
fine for a demo or for a merchant pricing in the asset itself, wrong for real USD pricing.
"""

from __future__ import annotations

from collections.abc import Mapping

from krypton.domain import money
from krypton.domain.errors import DomainError


class StaticRates:
    name = "static (configured table, not live)"

    def __init__(self, table: Mapping[str, str]) -> None:
        for rate in table.values():
            money.parse_rate(rate)
        self.table = dict(table)

    async def usd_rate(self, currency: str) -> str:
        try:
            return self.table[currency]
        except KeyError:
            raise DomainError(f"No USD rate is configured for {currency}.", field="currency",
                              code="rate_unavailable") from None
