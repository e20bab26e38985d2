"""The fake price sources: CoinGecko's and Binance's documented answers, the control API that
moves prices and breaks a source, and its clear refusals."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from krypton.devnet.rates_api import FakeRates, create_rates_app
from tests.support.clock import ManualClock

GECKO = "/coingecko/api/v3/simple/price"
BINANCE = "/binance/api/v3/ticker/price"


@pytest.fixture
def fake(clock: ManualClock) -> FakeRates:
    return FakeRates(clock.now)


@pytest.fixture
async def rates(fake: FakeRates) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_rates_app(fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://devnet") as http:
        yield http


async def test_coingecko_answers_exact_json_numbers_with_the_update_time(
        rates: httpx.AsyncClient, clock: ManualClock) -> None:
    await rates.post("/control/price", json={"currency": "TON", "usd": "5.123456789012345678"})
    response = await rates.get(GECKO, params={
        "ids": "the-open-network,tether,not-a-coin", "vs_currencies": "usd",
        "include_last_updated_at": "true", "precision": "full"})
    assert response.status_code == 200
    # Decoded as Decimal: the number is sent with every digit (a float would keep 17).
    body = json.loads(response.text, parse_float=Decimal)
    when = int(clock.now().timestamp())
    assert body == {"the-open-network": {"usd": Decimal("5.123456789012345678"), "last_updated_at": when},
                    "tether": {"usd": Decimal("1.00"), "last_updated_at": when}}


async def test_coingecko_without_times_or_parameters(rates: httpx.AsyncClient) -> None:
    plain = await rates.get(GECKO, params={"ids": "tether", "vs_currencies": "usd"})
    assert plain.json() == {"tether": {"usd": 1.0}}
    missing = await rates.get(GECKO, params={"ids": "tether"})
    assert missing.status_code == 400
    assert missing.json() == {"error": "Missing parameter vs_currencies"}


async def test_binance_quotes_ton_in_usdt_as_a_string(rates: httpx.AsyncClient) -> None:
    await rates.post("/control/price", json={"currency": "TON", "usd": "5.5"})
    await rates.post("/control/price", json={"currency": "USDT", "usd": "1.1"})
    response = await rates.get(BINANCE, params={"symbol": "TONUSDT"})
    assert response.json() == {"symbol": "TONUSDT", "price": "5.00000000"}
    unknown = await rates.get(BINANCE, params={"symbol": "TONBTC"})
    assert unknown.status_code == 400 and unknown.json() == {"code": -1121, "msg": "Invalid symbol."}
    assert (await rates.get(BINANCE)).json()["code"] == -1102


async def test_a_failing_source_answers_its_status_until_it_recovers(
        rates: httpx.AsyncClient, fake: FakeRates) -> None:
    failed = await rates.post("/control/fail", json={"source": "coingecko", "status": 502})
    assert failed.json()["failing"] == {"coingecko": 502}
    params = {"ids": "tether", "vs_currencies": "usd"}
    assert (await rates.get(GECKO, params=params)).status_code == 502
    assert (await rates.get(BINANCE, params={"symbol": "TONUSDT"})).status_code == 200
    await rates.delete("/control/fail", params={"source": "coingecko"})
    assert (await rates.get(GECKO, params=params)).status_code == 200
    state = (await rates.get("/control/state")).json()
    assert state == {"prices": {"TON": "5.00", "USDT": "1.00"}, "failing": {},
                     "requests": {"coingecko": 2, "binance": 1}}
    assert fake.requests["coingecko"] == 2


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/control/price", {"currency": "BTC", "usd": "1"}, "currency"),
    ("/control/price", {"currency": "TON", "usd": "-1"}, "usd"),
    ("/control/price", {"currency": "TON", "usd": 5}, "usd"),
    ("/control/price", {"currency": "TON", "usd": "5", "eur": "4"}, "eur"),
    ("/control/fail", {"source": "kraken"}, "source"),
    ("/control/fail", {"source": "binance", "status": 404}, "status"),
    ("/control/fail", {"source": "binance", "status": "500"}, "status"),
])
async def test_bad_control_requests_are_refused_and_change_nothing(
        rates: httpx.AsyncClient, path: str, body: dict[str, object], field: str) -> None:
    before = (await rates.get("/control/state")).json()
    response = await rates.post(path, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field and error["message"].endswith(".")
    assert (await rates.get("/control/state")).json() == before


async def test_a_body_that_is_not_an_object_is_refused(rates: httpx.AsyncClient) -> None:
    response = await rates.post("/control/price", content=b"[1]")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
