"""Where an invoice's rates came from is stored with it, on every database; the static table
stays the devnet's default and is labelled as such."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from krypton.app import invoices
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.config import Settings
from krypton.domain.pricing import UsdRate


async def test_the_devnet_prices_from_the_static_table_by_default(
        container: Container, merchant: IssuedKey) -> None:
    assert Settings().rates_mode == "static"
    assert Settings(network="mainnet").rates_mode == "live"
    assert Settings(network="mainnet", rates="static").rates_mode == "static"
    created = await invoices.create_invoice(container.deps, merchant.merchant_id, invoices.InvoiceRequest(
        amount="10", currency="USD", methods=["ton"]))
    assert created.invoice is not None
    stored = await invoices.get_invoice(container.deps, merchant.merchant_id, created.invoice.id)
    assert (stored.rate_source, stored.rate_at) == ("static", None)
    assert stored.options[0].rate == "5.00"


class QuotedRates:
    """A rate source whose quotes carry a time, as live ones do."""

    name = "quoted"

    def __init__(self, at: datetime) -> None:
        self.at = at

    async def usd_rate(self, currency: str) -> UsdRate:
        return UsdRate(currency, "2.5", "coingecko", self.at)


async def test_the_rate_source_and_time_survive_the_database(
        container: Container, merchant: IssuedKey) -> None:
    quoted_at = datetime(2026, 11, 24, 11, 59, 31, 250_000, tzinfo=UTC)
    deps = dataclasses.replace(container.deps, rates=QuotedRates(quoted_at))
    created = await invoices.create_invoice(deps, merchant.merchant_id, invoices.InvoiceRequest(
        amount="10", currency="USD", methods=["ton", "usdt_trc20"]))
    assert created.invoice is not None
    stored = await invoices.get_invoice(container.deps, merchant.merchant_id, created.invoice.id)
    assert (stored.rate_source, stored.rate_at) == ("coingecko", quoted_at)
    assert [o.amount for o in stored.options] == [4_000_000_000, 4_000_000]
