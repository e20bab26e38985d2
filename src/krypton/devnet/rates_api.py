"""The price sources Krypton's live rates ask, as local fakes speaking their documented
formats, plus a control API to move the price and break a source (mounted at /rates).

    GET    /rates/coingecko/api/v3/simple/price?ids=&vs_currencies=usd&include_last_updated_at=
           200 {"the-open-network": {"usd": 5.0, "last_updated_at": 1764950400}, ...}
    GET    /rates/binance/api/v3/ticker/price?symbol=TONUSDT
           200 {"symbol": "TONUSDT", "price": "5.00000000"}
    POST   /rates/control/price  {currency: TON|USDT, usd: "5.25"}
    POST   /rates/control/fail   {source: coingecko|binance, status?: 500..599 or 429}
    DELETE /rates/control/fail?source=      (no source: every source recovers)
    GET    /rates/control/state

Like the real services, CoinGecko sends prices as JSON numbers and leaves out coin ids it
does not know; Binance sends decimal strings, quotes TON in USDT (TON's USD price over
USDT's, to Binance's 8 decimals) and refuses an unknown symbol with 400 {"code": -1121}.
A failing source answers every request with its status until it recovers. The fakes'
clock is the devnet's, so `last_updated_at` moves with a test's manual clock.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from krypton.devnet.common import Clock, DevnetError, InvalidInput
from krypton.devnet.requests import read_object, refused, text
from krypton.domain import money
from krypton.domain.errors import InvalidAmount

SOURCES = ("coingecko", "binance")
COIN_IDS = {"the-open-network": "TON", "tether": "USDT"}
BINANCE_SYMBOLS = {"TONUSDT": ("TON", "USDT")}
DEFAULT_PRICES = {"TON": "5.00", "USDT": "1.00"}
_BINANCE_STEP = Decimal("0.00000001")


class FakeRates:
    """What the fake sources quote (USD per whole unit) and which of them fail."""

    def __init__(self, now: Clock, prices: Mapping[str, str] = DEFAULT_PRICES) -> None:
        self.now = now
        self.prices: dict[str, Decimal] = {}
        for currency, usd in prices.items():
            self.set_price(currency, usd)
        self.failing: dict[str, int] = {}
        self.requests: Counter[str] = Counter()  # answered or failed, per source

    def set_price(self, currency: str, usd: str) -> None:
        if currency not in DEFAULT_PRICES:
            raise InvalidInput(f"currency must be one of {', '.join(DEFAULT_PRICES)}, not "
                               f"{currency!r}.", field="currency")
        try:
            money.parse_rate(usd)
        except InvalidAmount:
            raise InvalidInput(f"usd must be a positive decimal string like \"5.25\", not {usd!r}.",
                               field="usd") from None
        self.prices[currency] = Decimal(usd)

    def fail(self, source: str, status: int = 503) -> None:
        if source not in SOURCES:
            raise InvalidInput(f"source must be one of {', '.join(SOURCES)}, not {source!r}.",
                               field="source")
        if status != 429 and not 500 <= status <= 599:
            raise InvalidInput("status must be 429 or a 5xx status.", field="status")
        self.failing[source] = status

    def recover(self, source: str | None = None) -> None:
        if source is None:
            self.failing.clear()
        elif source in SOURCES:
            self.failing.pop(source, None)
        else:
            raise InvalidInput(f"source must be one of {', '.join(SOURCES)}, not {source!r}.",
                               field="source")

    def state(self) -> dict[str, Any]:
        return {"prices": {c: str(p) for c, p in self.prices.items()},
                "failing": dict(self.failing), "requests": dict(self.requests)}


def create_rates_app(fake: FakeRates) -> Starlette:
    """The fake sources and their control API, as one ASGI app (mount it at /rates)."""

    def source(name: str, answer: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            fake.requests[name] += 1
            status = fake.failing.get(name)
            if status is not None:
                return JSONResponse({"error": f"devnet fault: {name} is failing"}, status_code=status)
            result: Response = answer(fake, request)
            return result
        return endpoint

    async def price(request: Request) -> JSONResponse:
        body = await read_object(request, {"currency", "usd"})
        fake.set_price(text(body, "currency", required=True) or "", text(body, "usd", required=True) or "")
        return JSONResponse(fake.state())

    async def fail(request: Request) -> JSONResponse:
        body = await read_object(request, {"source", "status"})
        status = body.get("status", 503)
        if isinstance(status, bool) or not isinstance(status, int):
            raise InvalidInput("status must be a whole number (429 or 5xx).", field="status")
        fake.fail(text(body, "source", required=True) or "", status)
        return JSONResponse(fake.state())

    async def recover(request: Request) -> JSONResponse:
        fake.recover(request.query_params.get("source"))
        return JSONResponse(fake.state())

    async def state(request: Request) -> JSONResponse:
        return JSONResponse(fake.state())

    return Starlette(
        routes=[
            Route("/coingecko/api/v3/simple/price", source("coingecko", _coingecko)),
            Route("/binance/api/v3/ticker/price", source("binance", _binance)),
            Route("/control/price", price, methods=["POST"]),
            Route("/control/fail", fail, methods=["POST"]),
            Route("/control/fail", recover, methods=["DELETE"]),
            Route("/control/state", state),
        ],
        exception_handlers={DevnetError: refused},
    )


def with_rates(devnet_app: ASGIApp, fake: FakeRates) -> Starlette:
    """`devnet_app` with the fake sources beside it at /rates."""
    return Starlette(routes=[Mount("/rates", app=create_rates_app(fake)), Mount("", app=devnet_app)])


def _coingecko(fake: FakeRates, request: Request) -> Response:
    ids = request.query_params.get("ids", "")
    vs = request.query_params.get("vs_currencies", "")
    if not ids or not vs:
        missing = "ids" if not ids else "vs_currencies"
        return JSONResponse({"error": f"Missing parameter {missing}"}, status_code=400)
    with_time = request.query_params.get("include_last_updated_at") == "true"
    updated = int(fake.now().timestamp())
    coins = []
    for coin in dict.fromkeys(ids.split(",")):
        currency = COIN_IDS.get(coin)
        if currency is None:
            continue  # CoinGecko leaves out ids it does not know
        fields = [f'"usd":{fake.prices[currency]}'] if "usd" in vs.split(",") else []
        if with_time:
            fields.append(f'"last_updated_at":{updated}')
        coins.append(f"{json.dumps(coin)}:{{{','.join(fields)}}}")
    # Written by hand: the prices go out as the exact JSON numbers, never through a float.
    return Response("{" + ",".join(coins) + "}", media_type="application/json")


def _binance(fake: FakeRates, request: Request) -> Response:
    symbol = request.query_params.get("symbol")
    if not symbol:
        return JSONResponse({"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent, "
                             "was empty/null, or malformed."}, status_code=400)
    pair = BINANCE_SYMBOLS.get(symbol)
    if pair is None:
        return JSONResponse({"code": -1121, "msg": "Invalid symbol."}, status_code=400)
    base, quote = pair
    price = (fake.prices[base] / fake.prices[quote]).quantize(_BINANCE_STEP)
    return JSONResponse({"symbol": symbol, "price": f"{price:f}"})


