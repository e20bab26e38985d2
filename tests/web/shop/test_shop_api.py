"""/api/v1/shop: prices, recipients, orders and buyer sign-in (TON Connect ton_proof, Telegram
initData), on both databases, with the shop's core faked in process (tests/web/shop/fake_shop.py)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from nacl.signing import SigningKey

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import cell_to_boc
from krypton.adapters.signer import wallet
from krypton.adapters.tonconnect import proof as p
from krypton.bootstrap import DEVNET_BOT_TOKEN, Container
from krypton.domain.errors import DomainError
from krypton.web.api import shop as shop_api
from tests.support.clock import ManualClock
from tests.web.helpers import error_of
from tests.web.init_data_signing import signed
from tests.web.shop.fake_shop import FakeShop

API = "/api/v1/shop"
ANN = 5_000_000_001


@pytest.fixture
def fake(container: Container, monkeypatch: pytest.MonkeyPatch) -> FakeShop:
    made = FakeShop()
    made.install(monkeypatch, container)
    return made


@pytest.fixture
async def client(container: Container, fake: FakeShop) -> AsyncIterator[httpx.AsyncClient]:
    from krypton.web.app import create_app

    app = create_app(container, run_workers=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


class Wallet:
    """A TON wallet (v4r2 or v5r1) with a generated key, answering ton_proof like a real one."""

    def __init__(self, version: wallet.WalletVersion = wallet.WalletVersion.V4R2) -> None:
        self.key = SigningKey.generate()
        public = bytes(self.key.verify_key)
        wallet_id = wallet.default_wallet_id(version, "testnet")
        self.init = cell_to_boc(wallet.state_init(version, public, wallet_id))
        self.address: TonAddress = wallet.wallet_address(version, public, wallet_id)

    def reply(self, payload: str, domain: str, timestamp: int, **override: Any) -> dict[str, Any]:
        signature = self.key.sign(p.digest(self.address, p.Proof(timestamp, domain, payload, b""))).signature
        body = {"address": self.address.raw, "network": "-3", "state_init": self.init,
                "proof": {"timestamp": timestamp, "payload": payload,
                          "domain": {"lengthBytes": len(domain.encode()), "value": domain},
                          "signature": base64.b64encode(signature).decode()}}
        body.update(override)
        return body


def _domain(container: Container) -> str:
    return urlsplit(container.settings.public_url).netloc


def _now(clock: ManualClock) -> int:
    return int(clock.now().timestamp())


async def _telegram(client: httpx.AsyncClient, clock: ManualClock) -> httpx.Response:
    return await client.post(f"{API}/auth/telegram",
                             json={"init_data": signed(DEVNET_BOT_TOKEN, ANN, clock.now())})


async def _payload(client: httpx.AsyncClient) -> str:
    answer = await client.get(f"{API}/auth/ton-proof/payload")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    return str(answer.json()["payload"])


# --- the shop not set up ---------------------------------------------------------------------


async def test_every_shop_route_says_so_when_the_shop_is_not_set_up(container: Container,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from krypton.web.app import create_app

    monkeypatch.setattr(container, "shop", lambda: None)  # KRYPTON_SHOP_ENABLED=false
    app = create_app(container, run_workers=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for path in ("/limits", "/quote?quantity=50", "/recipients/durov", "/orders/ord_x"):
            error = error_of(await c.get(API + path), 404, "not_found")
            assert error["message"] == "The Stars shop is not set up on this server."
        error_of(await c.post(f"{API}/orders", json={"recipient": "durov", "quantity": 50}), 404, "not_found")
        page = await c.get("/stars")
        assert page.status_code == 404 and "not open on this server" in page.text


# --- prices and recipients -------------------------------------------------------------------


async def test_limits_and_a_quote_with_the_fee_in_one_total(client: httpx.AsyncClient) -> None:
    limits = (await client.get(f"{API}/limits")).json()
    assert limits == {"minimum": 50, "maximum": 10_000, "presets": [50, 100, 250, 500, 1000],
                      "assets": ["TON", "USDT_TON"], "premium_months": [3, 6, 12]}
    ton = (await client.get(f"{API}/quote", params={"quantity": 50})).json()
    assert (ton["cost"], ton["fee"], ton["total"], ton["asset"]) == ("5", "0.05", "5.05", "TON")
    assert ton["equivalents"] == {"USDT": "25.25"}  # the devnet's static 5 USD a TON
    usdt = (await client.get(f"{API}/quote", params={"quantity": 100, "asset": "USDT_TON"})).json()
    assert (usdt["total"], usdt["fee"]) == ("1.515", "0.015")


async def test_an_asset_the_core_refuses_is_not_offered(client: httpx.AsyncClient, fake: FakeShop,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    priced = fake.quote

    async def ton_only(deps: Any, kit: Any, quantity: int, asset: str = "TON") -> Any:
        if asset != "TON":
            raise DomainError(f"The Stars shop is paid in TON for now, not {asset}.", field="asset")
        return await priced(deps, kit, quantity, asset)
    monkeypatch.setattr(shop_api.shop, "quote", ton_only)
    assert (await client.get(f"{API}/limits")).json()["assets"] == ["TON"]
    page = await client.get("/stars")
    assert 'value="TON"' in page.text and 'value="USDT_TON"' not in page.text


@pytest.mark.parametrize("quantity", [49, 10_001, 0, -5])
async def test_a_quantity_out_of_range_names_the_range(client: httpx.AsyncClient, quantity: int) -> None:
    error = error_of(await client.get(f"{API}/quote", params={"quantity": quantity}), 422, "invalid_request")
    assert error["message"] == f"quantity must be between 50 and 10000 Stars; got {quantity}."
    assert error["field"] == "quantity"


async def test_an_unknown_asset_lists_the_choices(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{API}/quote", params={"quantity": 50, "asset": "BTC"})
    error = error_of(answer, 422, "invalid_request")
    assert error["message"] == "asset must be one of TON, USDT_TON."


async def test_a_recipient_is_shown_with_name_and_initials(client: httpx.AsyncClient, fake: FakeShop) -> None:
    found = (await client.get(f"{API}/recipients/@Durov")).json()
    assert found == {"username": "durov", "name": "Pavel Durov", "photo_url": "https://cdn.example/durov.jpg",
                     "initials": "PD"}
    assert fake.calls == ["lookup Durov"]


async def test_an_unknown_username_says_so(client: httpx.AsyncClient) -> None:
    error = error_of(await client.get(f"{API}/recipients/nobody_here"), 404, "not_found")
    assert error["message"] == "No Telegram account '@nobody_here' can receive Stars: check the username."


@pytest.mark.parametrize("name", ["abc", "1durov", "du-rov", "x" * 33])
async def test_a_malformed_username_is_refused_before_any_lookup(client: httpx.AsyncClient, fake: FakeShop,
                                                                 name: str) -> None:
    error = error_of(await client.get(f"{API}/recipients/{name}"), 422, "invalid_request")
    assert "5 to 32 letters" in error["message"]
    assert fake.calls == []


# --- orders ---------------------------------------------------------------------------------


async def test_an_anonymous_order_gets_its_checkout_and_is_public_by_id_without_its_buyer(
        client: httpx.AsyncClient, container: Container, fake: FakeShop) -> None:
    answer = await client.post(f"{API}/orders", json={"recipient": "@durov", "quantity": 50})
    assert answer.status_code == 201, answer.text
    order = answer.json()
    base = container.settings.public_url.rstrip("/")
    assert order["checkout_url"] == f"{base}/pay/{fake.orders[order['id']].invoice_id}"
    assert order["order_url"] == f"{base}/stars/orders/{order['id']}"
    assert (order["status"], order["total"], order["fee"], order["recipient"]) == (
        "awaiting_payment", "5.05", "0.05", "durov")
    assert fake.orders[order["id"]].buyer is None
    public = (await client.get(f"{API}/orders/{order['id']}")).json()
    assert "buyer" not in public and public["status"] == "awaiting_payment"
    error_of(await client.get(f"{API}/orders/ord_unknown"), 404, "not_found")


async def test_the_same_idempotency_key_gives_the_same_order(client: httpx.AsyncClient,
                                                             fake: FakeShop) -> None:
    body = {"recipient": "durov", "quantity": 100, "asset": "USDT_TON"}
    first = await client.post(f"{API}/orders", json=body, headers={"Idempotency-Key": "k-1"})
    again = await client.post(f"{API}/orders", json=body, headers={"Idempotency-Key": "k-1"})
    other = await client.post(f"{API}/orders", json=body, headers={"Idempotency-Key": "k-2"})
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert len(fake.orders) == 2


async def test_an_order_out_of_range_or_for_nobody_is_refused(client: httpx.AsyncClient,
                                                              fake: FakeShop) -> None:
    error = error_of(await client.post(f"{API}/orders", json={"recipient": "durov", "quantity": 20_000}),
                     422, "invalid_request")
    assert "between 50 and 10000" in error["message"]
    error = error_of(await client.post(f"{API}/orders", json={"recipient": "ghost_user", "quantity": 50}),
                     404, "not_found")
    assert "ghost_user" in error["message"]
    error_of(await client.post(f"{API}/orders", json={"recipient": "durov", "quantity": 50, "asset": "XTR"}),
             422, "invalid_request")
    assert fake.orders == {}


# --- Telegram sign-in ------------------------------------------------------------------------


async def test_telegram_buyer_sees_only_their_orders_and_spending(client: httpx.AsyncClient,
                                                                  clock: ManualClock, fake: FakeShop) -> None:
    error_of(await client.get(f"{API}/me/orders"), 401, "unauthenticated")
    answer = await _telegram(client, clock)
    assert answer.status_code == 200, answer.text
    session = answer.json()
    assert (session["buyer"], session["kind"], session["name"]) == (f"tg:{ANN}", "telegram", "Ann")
    bearer = {"Authorization": f"Bearer {session['token']}"}
    client.cookies.clear()  # the Mini App uses the token
    for quantity in (50, 100, 250):
        made = await client.post(f"{API}/orders", json={"recipient": "durov", "quantity": quantity},
                                 headers=bearer)
        assert made.status_code == 201
    await client.post(f"{API}/orders", json={"recipient": "durov", "quantity": 500})  # anonymous
    fake.orders[next(iter(fake.orders))].status = shop_api.shop.OrderStatus.DELIVERED  # the 50 Stars
    page = (await client.get(f"{API}/me/orders", params={"limit": 2}, headers=bearer)).json()
    assert [o["quantity"] for o in page["data"]] == [250, 100] and page["has_more"]
    assert page["spent"] == {"TON": "5.05"} and page["buyer"] == f"tg:{ANN}"
    rest = (await client.get(f"{API}/me/orders", params={"starting_after": page["data"][-1]["id"]},
                             headers=bearer)).json()
    assert [o["quantity"] for o in rest["data"]] == [50] and not rest["has_more"]


async def test_telegram_sign_in_refuses_forged_or_stale_init_data(client: httpx.AsyncClient,
                                                                 clock: ManualClock) -> None:
    forged = signed("123:not-the-bot-token", ANN, clock.now())
    error_of(await client.post(f"{API}/auth/telegram", json={"init_data": forged}), 401, "invalid_init_data")
    stale = signed(DEVNET_BOT_TOKEN, ANN, clock.now() - timedelta(days=2))
    error_of(await client.post(f"{API}/auth/telegram", json={"init_data": stale}), 401, "invalid_init_data")


async def test_a_session_token_ends_and_a_bad_bearer_is_refused(client: httpx.AsyncClient,
                                                                clock: ManualClock) -> None:
    answer = await _telegram(client, clock)
    bearer = {"Authorization": f"Bearer {answer.json()['token']}"}
    client.cookies.clear()
    assert (await client.get(f"{API}/me", headers=bearer)).status_code == 200
    clock.advance(seconds=shop_api.TELEGRAM_SESSION_SECONDS)
    error_of(await client.get(f"{API}/me/orders", headers=bearer), 401, "unauthenticated")
    nonsense = {"Authorization": "Bearer nonsense"}
    error_of(await client.get(f"{API}/me", headers=nonsense), 401, "unauthenticated")


# --- TON Connect sign-in -----------------------------------------------------------------------


@pytest.mark.parametrize("version", list(wallet.WalletVersion))
async def test_ton_proof_signs_in_with_an_httponly_cookie_and_orders_carry_the_buyer(
        client: httpx.AsyncClient, container: Container, clock: ManualClock, fake: FakeShop,
        version: wallet.WalletVersion) -> None:
    w = Wallet(version)
    payload = await _payload(client)
    body = w.reply(payload, _domain(container), _now(clock))
    answer = await client.post(f"{API}/auth/ton-proof", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["buyer"] == f"ton:{w.address.raw}" and answer.json()["token"] is None
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/api/v1/shop" in cookie
    assert "secure" not in cookie  # the devnet: plain http
    made = (await client.post(f"{API}/orders", json={"recipient": "ann_smith", "quantity": 50})).json()
    assert fake.orders[made["id"]].buyer == f"ton:{w.address.raw}"
    mine = (await client.get(f"{API}/me/orders")).json()
    assert [o["id"] for o in mine["data"]] == [made["id"]]
    assert (await client.post(f"{API}/auth/logout")).status_code == 204
    client.cookies.clear()
    error_of(await client.get(f"{API}/me/orders"), 401, "unauthenticated")


async def test_a_ton_proof_payload_signs_in_once(client: httpx.AsyncClient, container: Container,
                                                clock: ManualClock) -> None:
    w = Wallet()
    body = w.reply(await _payload(client), _domain(container), _now(clock))
    assert (await client.post(f"{API}/auth/ton-proof", json=body)).status_code == 200
    error = error_of(await client.post(f"{API}/auth/ton-proof", json=body), 401, "invalid_proof")
    assert "already used" in error["message"]


async def test_ton_proof_refusals_say_why(client: httpx.AsyncClient, container: Container,
                                         clock: ManualClock) -> None:
    w, domain, now = Wallet(), _domain(container), _now(clock)
    cases = {
        "for 'evil.example'": w.reply(await _payload(client), "evil.example", now),
        "older than": w.reply(await _payload(client), domain, now - shop_api.PROOF_MAX_AGE - 1),
        "not issued by this server": w.reply("1999999999.bm9uY2U.forged-mac-value", domain, now),
        "not this address's": w.reply(await _payload(client), domain, now, address=Wallet().address.raw),
    }
    other = Wallet()
    signed_by_other = other.reply(await _payload(client), domain, now)
    cases["does not match the wallet's key"] = {**signed_by_other, "address": w.address.raw,
                                                "state_init": w.init}
    for words, body in cases.items():
        error = error_of(await client.post(f"{API}/auth/ton-proof", json=body), 401, "invalid_proof")
        assert words in error["message"], (words, error["message"])


async def test_a_refused_proof_does_not_burn_its_payload(client: httpx.AsyncClient, container: Container,
                                                        clock: ManualClock) -> None:
    w, payload = Wallet(), await _payload(client)
    bad = w.reply(payload, "evil.example", _now(clock))
    error_of(await client.post(f"{API}/auth/ton-proof", json=bad), 401, "invalid_proof")
    good = w.reply(payload, _domain(container), _now(clock))
    assert (await client.post(f"{API}/auth/ton-proof", json=good)).status_code == 200


async def test_an_expired_payload_is_refused(client: httpx.AsyncClient, container: Container,
                                            clock: ManualClock) -> None:
    w, payload = Wallet(), await _payload(client)
    clock.advance(seconds=shop_api.PAYLOAD_SECONDS + 1)
    body = w.reply(payload, _domain(container), _now(clock))
    error = error_of(await client.post(f"{API}/auth/ton-proof", json=body), 401, "invalid_proof")
    assert "expired" in error["message"]


# --- pages ---------------------------------------------------------------------------------


async def test_pages_render_under_the_strict_policy(client: httpx.AsyncClient, fake: FakeShop) -> None:
    page = await client.get("/stars?lang=ru")
    assert page.status_code == 200 and "Купить Telegram Stars" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in policy and "frame-ancestors 'none'" in policy
    assert "img-src 'self' data:;" in policy  # no remote image: initials avatars
    inside = await client.get("/tg/stars")
    assert "frame-ancestors https://web.telegram.org" in inside.headers["content-security-policy"]
    assert "/tg/app-assets/telegram-web-app.js" in inside.text
    made = (await client.post(f"{API}/orders", json={"recipient": "durov", "quantity": 50})).json()
    order = await client.get(f"/stars/orders/{made['id']}")
    assert order.status_code == 200 and "50 Stars for @durov" in order.text
    assert f'href="/pay/{made["checkout_url"].rsplit("/pay/", 1)[1]}"' in order.text
    assert (await client.get("/stars/orders/ord_nope")).status_code == 404
    assert (await client.get("/stars-assets/stars-shop.js")).status_code == 200
    assert (await client.get("/stars-assets/../app.py")).status_code == 404


async def test_an_unknown_wallet_contract_is_checked_against_the_chains_key(
        client: httpx.AsyncClient, container: Container, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A state_init of code Krypton does not know: the key comes from get_public_key, asked
    only after the cheap checks, and a wrong key still proves nothing."""
    from pytoniq_core import Builder

    key = SigningKey.generate()
    code = Builder().store_uint(0xC0DE, 16).end_cell()
    data = Builder().store_bytes(bytes(key.verify_key)).end_cell()
    init = Builder().store_uint(0b00110, 5).store_ref(code).store_ref(data).end_cell()
    address = TonAddress(0, init.hash)
    asked: list[TonAddress] = []
    chain_key: list[bytes | None] = [bytes(key.verify_key)]

    async def on_chain(wallet: TonAddress) -> bytes | None:
        asked.append(wallet)
        return chain_key[0]
    monkeypatch.setattr(container, "wallet_public_key", on_chain)

    def reply(payload: str, domain: str) -> dict[str, Any]:
        now = _now(clock)
        signature = key.sign(p.digest(address, p.Proof(now, domain, payload, b""))).signature
        return {"address": address.raw, "state_init": cell_to_boc(init),
                "proof": {"timestamp": now, "payload": payload,
                          "signature": base64.b64encode(signature).decode(),
                          "domain": {"lengthBytes": len(domain), "value": domain}}}
    error_of(await client.post(f"{API}/auth/ton-proof", json=reply(await _payload(client), "evil.example")),
             401, "invalid_proof")
    assert asked == []  # refused before any chain lookup
    good = reply(await _payload(client), _domain(container))
    answer = await client.post(f"{API}/auth/ton-proof", json=good)
    assert answer.status_code == 200, answer.text
    assert asked == [address]
    chain_key[0] = None  # not deployed, or no such get-method
    error = error_of(await client.post(f"{API}/auth/ton-proof", json=reply(await _payload(client),
                                                                           _domain(container))),
                     401, "invalid_proof")
    assert "could not be read" in error["message"]
