"""Fragment's Premium calls and its real request format (adapters/suppliers/fragment.py against
devnet/fragment_api.py): every call is a form POST to /api?hash=…, a GET or a JSON body is
refused; Premium is searched, priced, bought and followed with its own methods; the faults
(recipient not found, price change, 5xx) hit Premium as they hit Stars."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from krypton.adapters.chains.provider import Endpoint, ProviderClient
from krypton.adapters.chains.ton.address import parse
from krypton.adapters.suppliers.fragment import FragmentSupplier
from krypton.app.ports import SupplierError
from krypton.devnet.fragment_api import FRAGMENT_WALLET, FakeFragment
from tests.shop.test_fragment import BASE, Ticks
from tests.shop.test_fragment import fake as fake  # the fixtures, shared
from tests.shop.test_fragment import fragment as fragment
from tests.shop.test_fragment import ticks as ticks


class Recorder(httpx.AsyncBaseTransport):
    """Fragment's fake behind a transport that keeps every request as sent."""

    def __init__(self, fake: FakeFragment) -> None:
        self.inner = httpx.ASGITransport(app=fake.app())
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def recorded(fake: FakeFragment, ticks: Ticks
                   ) -> AsyncIterator[tuple[FragmentSupplier, Recorder, ProviderClient]]:
    transport = Recorder(fake)
    http = httpx.AsyncClient(transport=transport, base_url=BASE)
    provider = ProviderClient([Endpoint("fake-fragment", BASE, rate_per_second=1_000, burst=100)],
                              http=http, timeout=5, max_attempts=1, breaker_threshold=1_000)
    yield FragmentSupplier(provider, "session-hash", clock=ticks), transport, provider
    await provider.aclose()
    await http.aclose()


async def test_calls_are_form_posts_with_the_hash_in_the_query(
        recorded: tuple[FragmentSupplier, Recorder, ProviderClient], fake: FakeFragment) -> None:
    fragment, transport, provider = recorded
    await fragment.quote(3, "premium")
    [sent] = transport.requests
    assert sent.method == "POST" and sent.url.path == "/api"
    assert dict(sent.url.params) == {"hash": "session-hash"}
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.content == b"method=updatePremiumPrices&months=3"
    # The form goes the provider layer's way: counted per endpoint, failures feed the breaker.
    fake.inject("5xx")
    with pytest.raises(SupplierError):
        await fragment.quote(6, "premium")
    [stats] = provider.stats()
    assert (stats.successes, stats.failures) == (1, 1)


async def test_the_fake_refuses_a_get_and_a_json_body(fake: FakeFragment) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app()), base_url=BASE) as http:
        got = await http.get("/api", params={"hash": "h", "method": "updateStarsPrices", "quantity": "50"})
        assert got.status_code == 405 and got.headers["allow"] == "POST"
        as_json = await http.post("/api", params={"hash": "h"},
                                  json={"method": "updateStarsPrices", "quantity": "50"})
        assert as_json.status_code == 415
        no_hash = await http.post("/api", data={"method": "updateStarsPrices", "quantity": "50"})
        assert no_hash.status_code == 403
        # The hash belongs in the query string: one in the form does not count.
        in_form = await http.post("/api", data={"hash": "h", "method": "updateStarsPrices", "quantity": "50"})
        assert in_form.status_code == 403
        form = await http.post("/api", params={"hash": "h"}, data={"method": "updateStarsPrices",
                                                                   "quantity": "50"})
        assert form.json() == {"ok": True, "cur_price": "0.75"}


async def test_premium_is_quoted_bought_and_delivered_once_paid(fragment: FragmentSupplier,
                                                                 fake: FakeFragment) -> None:
    quote = await fragment.quote(6, "premium")
    assert (quote.product, quote.quantity, quote.cost_ton) == ("premium", 6, 3_198_000_000)
    assert (await fragment.quote(60)).cost_ton == 60 * fake.nano_per_star  # Stars: their own price
    bought = await fragment.purchase("ord_p1", "durov", 6, quote)
    assert bought.status == "pending_payment" and bought.ref == "premium:frg00000001"
    assert bought.payment is not None and bought.payment.amount == 3_198_000_000
    assert parse(bought.payment.address, network="testnet") == FRAGMENT_WALLET
    assert bought.payment.comment == "Telegram Premium for 6 months for @durov\n\nRef#ord_p1"
    again = await fragment.purchase("ord_p1", "durov", 6, quote)
    assert again.ref == bought.ref and len(fake.purchases) == 1  # the order id is the key
    assert fake.purchases["frg00000001"].product == "premium"
    assert (await fragment.status("ord_p1")).status == "pending_payment"
    fake.devnet.ton.pay_ton("alice", FRAGMENT_WALLET, bought.payment.amount, comment=bought.payment.comment)
    # A fresh supplier (a restarted worker) follows the purchase by its stored ref alone.
    assert (await fragment.status("ord_p1", bought.ref)).status == "delivered"
    assert fake.delivered == [("durov", "frg00000001", 6)]


async def test_premium_faults(fragment: FragmentSupplier, fake: FakeFragment, ticks: Ticks) -> None:
    quote = await fragment.quote(3, "premium")
    fake.inject("not_found")
    with pytest.raises(SupplierError) as gone:
        await fragment.purchase("ord_p2", "durov", 3, quote)  # Premium's own search says no one
    assert gone.value.code == "recipient_not_found" and not gone.value.retryable
    fake.inject("price_change")
    dearer = await fragment.purchase("ord_p3", "alice_tg", 3, quote)
    assert dearer.payment is not None and dearer.payment.amount == 2_398_000_000 * 6 // 5  # 20 % more
    assert (await fragment.quote(3, "premium")).cost_ton == quote.cost_ton  # the quote cached 30 s
    ticks.now += 31
    assert (await fragment.quote(3, "premium")).cost_ton == dearer.payment.amount
    fake.inject("5xx", 2)  # the provider's two attempts both fail
    with pytest.raises(SupplierError) as down:
        await fragment.quote(12, "premium")
    assert down.value.retryable and down.value.code == "unavailable"
    with pytest.raises(SupplierError) as months:
        await fragment.quote(4, "premium")
    assert months.value.code == "refused" and "Invalid months" in months.value.message
    with pytest.raises(SupplierError) as product:
        await fragment.quote(3, "nft")
    assert product.value.code == "unsupported_product"


async def test_the_premium_link_pays_the_right_message(fake: FakeFragment) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app()), base_url=BASE) as http:
        async def call(**form: str) -> dict[str, object]:
            answer = await http.post("/api", params={"hash": "h"}, data=form)
            assert answer.status_code == 200
            body: dict[str, object] = answer.json()
            return body
        found = await call(method="searchPremiumGiftRecipient", query="@Durov", months="12")
        recipient = found["found"]["recipient"]  # type: ignore[index]
        init = await call(method="initGiftPremiumRequest", recipient=str(recipient), months="12")
        assert init["amount"] == "5.798"
        link = await call(method="getGiftPremiumLink", id=str(init["req_id"]), transaction="1",
                          show_sender="0")
        [message] = link["transaction"]["messages"]  # type: ignore[index]
        assert message["amount"] == "5798000000" and base64.b64decode(message["payload"])
        state = await call(method="updatePremiumState", id=str(init["req_id"]))
        assert state == {"ok": True, "mode": "new"}
        assert await call(method="updatePremiumPrices", months="5") == {"error": "Invalid months"}
        price = await http.post("/control/price", json={"premium": {"3": 1}})
        assert price.json()["premium"]["3"] == 1
        bad = await http.post("/control/price", json={"premium": {"4": 1}})
        assert bad.status_code == 422
