"""Invoices priced in USD at live rates, end to end over the API: the devnet's fake CoinGecko
and Binance behind the real client code, the rate's source and time on the invoice, the
fallback, the last rate kept while every source fails, then a clear 503 rather than a price
from an old rate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.config import Settings
from krypton.devnet.rates_api import FakeRates
from tests.conftest import auth
from tests.support.clock import ManualClock
from tests.web.helpers import API, create_invoice, error_of, written

USD_TEN = {"amount": "10", "currency": "USD", "methods": ["ton", "usdt_ton"]}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rates": "live"})


@pytest.fixture
def fake(container: Container) -> FakeRates:
    assert container.rates_fake is not None
    container.rates_fake.set_price("TON", "4.00")
    container.rates_fake.set_price("USDT", "1.002")
    return container.rates_fake


def priced(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(o["asset"], o["amount"], o["rate"]) for o in body["payment_options"]]


async def test_a_usd_price_converts_at_the_live_rate_and_says_where_it_came_from(
        api: httpx.AsyncClient, merchant: IssuedKey, fake: FakeRates, clock: ManualClock) -> None:
    body = await create_invoice(api, merchant, **USD_TEN)
    # 10 / 1.002 = 9.98003992…, rounded up to USDT's 6 decimals.
    assert priced(body) == [("TON", "2.5", "4"), ("USDT_TON", "9.98004", "1.002")]
    assert body["rate_source"] == "coingecko"
    assert datetime.fromisoformat(body["rate_at"]) == clock.now()
    stored = (await api.get(f"{API}/invoices/{body['id']}", headers=auth(merchant))).json()
    assert (stored["rate_source"], stored["rate_at"]) == (body["rate_source"], body["rate_at"])


async def test_binance_prices_the_invoice_when_coingecko_fails(
        api: httpx.AsyncClient, merchant: IssuedKey, fake: FakeRates, clock: ManualClock) -> None:
    fake.fail("coingecko")
    body = await create_invoice(api, merchant, **USD_TEN)
    # Binance: TON at 4.00 / 1.002 USDT, USDT at its 1 USD peg.
    assert priced(body) == [("TON", "2.504999999", "3.99201597"), ("USDT_TON", "10", "1")]
    assert body["rate_source"] == "binance+usdt-peg"


async def test_the_last_rate_prices_for_ten_minutes_then_usd_invoices_get_503(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey, fake: FakeRates,
        clock: ManualClock) -> None:
    fetched_at = clock.now()
    await create_invoice(api, merchant, **USD_TEN)
    fake.fail("coingecko")
    fake.fail("binance")
    clock.advance(minutes=10)
    stale = await create_invoice(api, merchant, **USD_TEN)
    assert priced(stale) == [("TON", "2.5", "4"), ("USDT_TON", "9.98004", "1.002")]
    assert datetime.fromisoformat(stale["rate_at"]) == fetched_at

    clock.advance(seconds=1)
    before = await written(container)
    response = await api.post(f"{API}/invoices", json=USD_TEN, headers=auth(merchant))
    error = error_of(response, 503, "rate_unavailable")
    assert response.headers["retry-after"] == "30"
    assert error["message"] == (
        "No USD rate for TON newer than 2026-11-24 12:00:01 UTC (the last one, from coingecko, "
        "is from 2026-11-24 12:00:00 UTC); try again later.")
    assert await written(container) == before

    # A price in TON needs the USD rate only for its confirmation policy: still accepted.
    in_ton = await create_invoice(api, merchant, amount="3", currency="TON", methods=["ton"])
    assert (in_ton["rate_source"], datetime.fromisoformat(in_ton["rate_at"])) == ("coingecko", fetched_at)

    fake.recover()
    fake.set_price("TON", "5")
    clock.advance(seconds=30)
    fresh = await create_invoice(api, merchant, **USD_TEN)
    assert priced(fresh)[0] == ("TON", "2", "5")
    assert datetime.fromisoformat(fresh["rate_at"]) == clock.now()


async def test_no_rate_ever_fetched_is_a_503_for_any_invoice_needing_it(
        api: httpx.AsyncClient, merchant: IssuedKey, fake: FakeRates) -> None:
    fake.fail("coingecko")
    fake.fail("binance", 429)
    response = await api.post(f"{API}/invoices", json=USD_TEN, headers=auth(merchant))
    error = error_of(response, 503, "rate_unavailable")
    assert error["message"] == ("No USD rate for TON could be fetched yet from coingecko or "
                                "binance; try again later.")
    assert response.headers["retry-after"] == "30"


async def test_stars_and_live_rates_on_one_invoice_name_both_sources(
        api: httpx.AsyncClient, merchant: IssuedKey, fake: FakeRates, clock: ManualClock) -> None:
    body = await create_invoice(api, merchant, amount="1.30", currency="USD", methods=["ton", "stars"])
    assert priced(body) == [("TON", "0.325", "4"), ("XTR", "100", "0.013")]
    assert body["rate_source"] == "coingecko+static"
    assert datetime.fromisoformat(body["rate_at"]) == clock.now()


async def test_the_devnet_serves_its_fake_sources_and_their_controls(
        api: httpx.AsyncClient, merchant: IssuedKey, fake: FakeRates, clock: ManualClock) -> None:
    controls = "/devnet/rates/control"
    assert (await api.post(f"{controls}/price", json={"currency": "TON", "usd": "8"})).status_code == 200
    assert (await api.post(f"{controls}/fail", json={"source": "coingecko"})).status_code == 200
    ticker = await api.get("/devnet/rates/binance/api/v3/ticker/price", params={"symbol": "TONUSDT"})
    assert ticker.json() == {"symbol": "TONUSDT", "price": "7.98403194"}
    body = await create_invoice(api, merchant, **USD_TEN)
    assert body["rate_source"] == "binance+usdt-peg" and priced(body)[0][2] == "7.98403194"
    clock.advance(seconds=30)
    assert (await api.delete(f"{controls}/fail")).json()["failing"] == {}
    assert (await create_invoice(api, merchant, **USD_TEN))["rate_source"] == "coingecko"
