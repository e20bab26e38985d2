"""/api/v1/shop's products against the real shop core on the devnet (its fake Fragment), on
both databases: Premium quoted and ordered with `product`, a wrong product or period refused
with a clear 4xx naming the field, Stars callers unchanged, and a Mini-App sign-in remembered
for Premium gifts (the username with its Telegram user id)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest

from krypton.adapters.suppliers.premium_gift import StoredTelegramUsers
from krypton.adapters.telegram.init_data import webapp_secret
from krypton.bootstrap import DEVNET_BOT_TOKEN, Container
from tests.support.clock import ManualClock
from tests.web.helpers import error_of
from tests.web.init_data_signing import pairs_for, user_json

API = "/api/v1/shop"


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    from krypton.web.app import create_app

    kit = container.shop()
    assert kit is not None and container.fragment_fake is not None
    # Fragment alone: the gift strategy has no platform Stars on a fresh devnet anyway.
    kit.suppliers = [s for s in kit.suppliers if s.name == "fragment"]
    app = create_app(container, run_workers=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def test_limits_name_premiums_periods_and_a_premium_quote(client: httpx.AsyncClient,
                                                                container: Container) -> None:
    limits = (await client.get(f"{API}/limits")).json()
    assert limits["premium_months"] == [3, 6, 12]
    quote = await client.get(f"{API}/quote", params={"product": "premium", "quantity": 6})
    assert quote.status_code == 200, quote.text
    body = quote.json()
    assert (body["product"], body["quantity"], body["asset"], body["cost"]) == ("premium", 6, "TON", "3.198")
    assert body["total"] == "3.23030303" and body["equivalents"] == {"USDT": "16.15"}
    stars = (await client.get(f"{API}/quote", params={"quantity": 50})).json()
    assert (stars["product"], stars["cost"]) == ("stars", "0.75")  # Stars callers unchanged


async def test_a_premium_order_and_its_page(client: httpx.AsyncClient) -> None:
    made = await client.post(f"{API}/orders", json={"recipient": "@alice_tg", "product": "premium",
                                                    "quantity": 12})
    assert made.status_code == 201, made.text
    order = made.json()
    assert (order["product"], order["quantity"], order["recipient"], order["status"]) == (
        "premium", 12, "alice_tg", "awaiting_payment")
    assert (await client.get(f"{API}/orders/{order['id']}")).json()["product"] == "premium"
    page = await client.get(f"/stars/orders/{order['id']}")
    assert page.status_code == 200 and "Premium for 12 months for @alice_tg" in page.text
    stars = await client.post(f"{API}/orders", json={"recipient": "alice_tg", "quantity": 50})
    assert stars.status_code == 201 and stars.json()["product"] == "stars"


async def test_a_wrong_product_or_period_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    error = error_of(await client.post(f"{API}/orders", json={"recipient": "alice_tg", "product": "nft",
                                                              "quantity": 3}), 422, "invalid_request")
    assert error["field"] == "product" and "stars" in error["message"] and "premium" in error["message"]
    months = await client.post(f"{API}/orders", json={"recipient": "alice_tg", "product": "premium",
                                                      "quantity": 4})
    error = error_of(months, 422, "invalid_request")
    assert error["field"] == "quantity" and "3, 6 or 12 months" in error["message"]
    quoted = await client.get(f"{API}/quote", params={"product": "premium", "quantity": 50})
    assert error_of(quoted, 422, "invalid_request")["field"] == "quantity"
    unknown = await client.get(f"{API}/quote", params={"product": "gold", "quantity": 3})
    assert error_of(unknown, 422, "invalid_request")["field"] == "product"


async def test_a_mini_app_sign_in_is_remembered_for_premium_gifts(client: httpx.AsyncClient,
                                                                  container: Container,
                                                                  clock: ManualClock) -> None:
    pairs = pairs_for(5_000_000_007, clock.now())
    pairs["user"] = user_json(5_000_000_007, username="Ann_Gifted")
    digest = hmac.new(webapp_secret(DEVNET_BOT_TOKEN), "\n".join(
        f"{k}={pairs[k]}" for k in sorted(pairs)).encode(), hashlib.sha256).hexdigest()
    init_data = urlencode({**pairs, "hash": digest})
    signed_in = await client.post(f"{API}/auth/telegram", json={"init_data": init_data})
    assert signed_in.status_code == 200, signed_in.text
    users = StoredTelegramUsers(container.deps.uow)
    assert await users.user_id("ann_gifted") == 5_000_000_007
    await users.remember("ann_gifted", 5_000_000_008, clock.now())  # the username moved: newest wins
    assert await users.user_id("Ann_Gifted") == 5_000_000_008
    assert await users.user_id("nobody_here") is None
