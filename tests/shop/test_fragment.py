"""The Fragment strategy (adapters/suppliers/fragment.py) against the devnet's fake Fragment
(devnet/fragment_api.py), through the provider layer: the calls and fields the open-source
clients use, the faults, the rate limit, the caches, and delivery on the chain's payment."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pytoniq_core.boc.builder import Builder

from krypton.adapters.chains.provider import Endpoint, ProviderClient
from krypton.adapters.chains.ton.address import parse
from krypton.adapters.suppliers.fragment import FragmentSupplier, nanoton
from krypton.app.ports import SupplierError
from krypton.devnet import Devnet
from krypton.devnet.fragment_api import FRAGMENT_WALLET, FakeFragment
from tests.support.clock import ManualClock

BASE = "http://devnet"


class Ticks:
    """The caches' clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(clock: ManualClock) -> FakeFragment:
    return FakeFragment(Devnet(clock.now, seed="fragment-tests"), rate_per_second=1_000)


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
async def fragment(fake: FakeFragment, ticks: Ticks) -> AsyncIterator[FragmentSupplier]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app()), base_url=BASE)
    provider = ProviderClient([Endpoint("fake-fragment", BASE, rate_per_second=1_000, burst=100)],
                              http=http, timeout=5, max_attempts=2, base_delay=0.001,
                              breaker_threshold=1_000)
    yield FragmentSupplier(provider, "session-hash", clock=ticks)
    await provider.aclose()
    await http.aclose()


def test_ton_amounts_as_fragment_writes_them() -> None:
    assert nanoton("0.75") == 750_000_000
    assert nanoton('<span class="tm-value">1,234.5</span> TON') == 1_234_500_000_000
    with pytest.raises(SupplierError, match="without a number"):
        nanoton("<div></div>")


async def test_the_price_is_cached_30_seconds(fragment: FragmentSupplier, fake: FakeFragment,
                                              ticks: Ticks) -> None:
    quote = await fragment.quote(50)
    assert (quote.supplier, quote.cost, quote.cost_ton, quote.asset) == ("fragment", 750_000_000,
                                                                         750_000_000, "TON")
    fake.nano_per_star = 20_000_000
    ticks.now = 29.0
    assert (await fragment.quote(50)).cost == 750_000_000 and fake.calls == 1
    ticks.now = 30.5
    assert (await fragment.quote(50)).cost == 1_000_000_000 and fake.calls == 2


async def test_lookup_and_an_unknown_username(fragment: FragmentSupplier) -> None:
    found = await fragment.lookup("durov")
    assert (found.username, found.name, found.photo_url) == (
        "durov", "Pavel Durov", "https://cdn.devnet.example/durov.jpg")
    assert found.ref
    with pytest.raises(SupplierError) as err:
        await fragment.lookup("nobody_at_all")
    assert (err.value.code, err.value.retryable) == ("recipient_not_found", False)


async def test_a_purchase_is_the_transfer_to_make_and_the_same_order_buys_once(
        fragment: FragmentSupplier, fake: FakeFragment) -> None:
    quote = await fragment.quote(50)
    bought = await fragment.purchase("ord_1", "durov", 50, quote)
    assert bought.status == "pending_payment" and bought.payment is not None
    assert parse(bought.payment.address, network="testnet") == FRAGMENT_WALLET
    assert bought.payment.amount == 750_000_000
    assert bought.payment.comment == "50 Telegram Stars for @durov\n\nRef#ord_1"
    again = await fragment.purchase("ord_1", "durov", 50, quote)
    assert again.ref == bought.ref and len(fake.purchases) == 1  # the order id is the key


async def test_a_payload_the_signer_cannot_send_is_never_paid(
        fragment: FragmentSupplier, fake: FakeFragment, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fragment finds its payment by the payload; one that is no text comment (an op code of
    its own) cannot go through the signer, and a payment Fragment cannot find is money lost."""
    link = fake._link

    def binary_payload(params: dict[str, str]) -> dict[str, Any]:
        answer = link(params)
        cell = Builder().store_uint(0x0F8A7EA5, 32).store_uint(7, 64).end_cell()
        answer["transaction"]["messages"][0]["payload"] = base64.b64encode(cell.to_boc()).decode()
        return answer
    monkeypatch.setattr(fake, "_link", binary_payload)
    with pytest.raises(SupplierError, match="not a text comment") as refused:
        await fragment.purchase("ord_7", "durov", 50, await fragment.quote(50))
    assert not refused.value.retryable


async def test_delivered_once_the_chain_shows_the_payment(fragment: FragmentSupplier,
                                                          fake: FakeFragment) -> None:
    assert (await fragment.status("ord_2")).status == "unknown"  # never started: nothing to pay
    bought = await fragment.purchase("ord_2", "durov", 100, await fragment.quote(100))
    assert bought.payment is not None
    assert (await fragment.status("ord_2")).status == "pending_payment"
    fake.devnet.ton.pay_ton("alice", FRAGMENT_WALLET, bought.payment.amount - 1,
                            comment=bought.payment.comment)  # a nanoton short: not enough
    assert (await fragment.status("ord_2")).status == "pending_payment"
    # The order id alone is not the Ref Fragment gave, nor is a longer Ref that starts with it.
    for other in ("supplier_payment ord_2", "Ref#ord_20"):
        fake.devnet.ton.pay_ton("alice", FRAGMENT_WALLET, bought.payment.amount, comment=other)
    assert (await fragment.status("ord_2")).status == "pending_payment"
    fake.devnet.ton.pay_ton("alice", FRAGMENT_WALLET, bought.payment.amount, comment=bought.payment.comment)
    assert (await fragment.status("ord_2", bought.ref)).status == "delivered"
    assert fake.delivered == [("durov", bought.ref, 100)]


async def test_faults_are_retryable_or_not(fragment: FragmentSupplier, fake: FakeFragment) -> None:
    fake.inject("5xx", 2)  # both attempts of one call
    with pytest.raises(SupplierError) as down:
        await fragment.quote(60)
    assert down.value.retryable and down.value.code == "unavailable"
    fake.inject("timeout", 2)
    with pytest.raises(SupplierError) as slow:
        await fragment.quote(61)
    assert slow.value.retryable
    fake.inject("not_found")
    with pytest.raises(SupplierError) as gone:
        await fragment.lookup("durov")
    assert gone.value.code == "recipient_not_found"
    fake.inject("price_change")
    bought = await fragment.purchase("ord_3", "durov", 50, await fragment.quote(50))
    assert bought.payment is not None and bought.payment.amount == 900_000_000  # 20 % dearer


async def test_the_rate_limit_answers_429(fake: FakeFragment) -> None:
    fake.rate_per_second = 2
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app()), base_url=BASE) as http:
        statuses = [(await http.post("/api", params={"hash": "h"}, data={
            "method": "updateStarsPrices", "quantity": "50"})).status_code for _ in range(3)]
        assert statuses == [200, 200, 429] and fake.throttled == 1
        limited = await http.post("/api", data={"method": "updateStarsPrices"})
        assert limited.status_code == 429  # still within the same second
        fault = await http.post("/control/fault", json={"kind": "meteor"})
        assert fault.status_code == 422 and "kind must be one of" in fault.json()["error"]["message"]
        injected = await http.post("/control/fault", json={"kind": "5xx", "count": 1})
        assert injected.json() == {"faults": {"5xx": 1}}
        state = (await http.get("/control/state")).json()
        assert state["wallet"] == FRAGMENT_WALLET.raw and state["throttled"] == 2
