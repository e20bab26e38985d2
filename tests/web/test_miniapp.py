"""The Telegram Mini App's endpoints (both databases): the page and its framing policy, initData
checked on the server (HMAC with the bot token, Ed25519 for a third-party bot) with a short
auth_date window, the first verified user owning the invoice, the history token, the user's
own purchases newest first and paginated, and the Stars link as JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from krypton.adapters.db import tables
from krypton.app import merchants
from krypton.bootstrap import DEVNET_BOT_TOKEN, Container
from krypton.web.pages import miniapp as miniapp_page
from tests.support.clock import ManualClock
from tests.web.helpers import create_invoice, error_of, pay
from tests.web.init_data_signing import ed25519_signed, signed

ANN, BOB = 111_222_333, 5_000_000_001  # Telegram ids past 32 bits are real


@pytest.fixture
async def app_client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    from krypton.web.app import create_app

    app = create_app(container, run_workers=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        yield client


async def _session(client: httpx.AsyncClient, invoice_id: str, init_data: str) -> httpx.Response:
    return await client.post(f"/tg/app/{invoice_id}/session", json={"init_data": init_data})


async def _token(client: httpx.AsyncClient, invoice_id: str, user: int, now: datetime,
                 **more: str) -> str:
    answer = await _session(client, invoice_id, signed(DEVNET_BOT_TOKEN, user, now, **more))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


async def _history(client: httpx.AsyncClient, token: str, **query: str) -> httpx.Response:
    return await client.get("/tg/app/history", params=query, headers={"Authorization": f"Bearer {token}"})


async def _owners(container: Container) -> list[tuple[str, int]]:
    async with container.db.reader.connect() as conn:
        rows = (await conn.execute(sa.select(tables.miniapp_bindings.c.invoice_id,
                                             tables.miniapp_bindings.c.telegram_user_id))).all()
    return [(r.invoice_id, r.telegram_user_id) for r in rows]


async def test_the_page_renders_the_invoice_and_only_telegram_may_frame_it(
        app_client: httpx.AsyncClient, merchant: merchants.IssuedKey) -> None:
    invoice = await create_invoice(app_client, merchant, amount="12.5", currency="TON",
                                   description="Two coffees")
    page = await app_client.get(f"/tg/app/{invoice['id']}", headers={"Accept-Language": "ru"})
    assert page.status_code == 200
    assert "Two coffees" in page.text and "12.5" in page.text
    assert "Мои покупки" in page.text  # the language the request asked for
    assert '/tg/app-assets/telegram-web-app.js' in page.text and "telegram.org/js" not in page.text
    policy = page.headers["content-security-policy"]
    assert f"frame-ancestors {miniapp_page.FRAMERS};" in policy
    assert "'none'" not in policy.split("frame-ancestors")[1].split(";")[0]
    assert "script-src 'self' 'nonce-" in policy and "unsafe-inline" not in policy
    assert "x-frame-options" not in page.headers
    # Everything else still refuses every frame, the hosted checkout included.
    for other in (f"/pay/{invoice['id']}", "/api/v1/public/invoice/" + invoice["id"]):
        answer = await app_client.get(other)
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    missing = await app_client.get("/tg/app/inv_nope")
    assert missing.status_code == 404 and "x-frame-options" not in missing.headers


async def test_telegram_script_and_page_assets_are_served_by_krypton(app_client: httpx.AsyncClient) -> None:
    script = await app_client.get("/tg/app-assets/telegram-web-app.js")
    assert script.status_code == 200, "run `make assets` (web-assets: @twa-dev/sdk)"
    assert "window.Telegram.WebApp = WebApp" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert (await app_client.get("/tg/app-assets/miniapp.js")).status_code == 200
    assert (await app_client.get("/tg/app-assets/miniapp.css")).headers["content-type"].startswith("text/css")
    error_of(await app_client.get("/tg/app-assets/secret.key"), 404, "not_found")


async def test_valid_init_data_binds_the_user_and_lists_their_purchase(
        app_client: httpx.AsyncClient, container: Container, clock: ManualClock,
        merchant: merchants.IssuedKey) -> None:
    invoice = await create_invoice(app_client, merchant, description="Tea")
    answer = await _session(app_client, invoice["id"],
                            signed(DEVNET_BOT_TOKEN, ANN, clock.now() - timedelta(minutes=5),
                                   language_code="ru"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["owner"] is True and body["lang"] == "ru" and body["user"] == {"first_name": "Ann"}
    assert body["expires_in"] == miniapp_page.TOKEN_SECONDS
    assert answer.headers["cache-control"] == "no-store"
    assert await _owners(container) == [(invoice["id"], ANN)]

    listed = await _history(app_client, body["token"])
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["data"]
    assert item["id"] == invoice["id"] and item["amount"] == "10" and item["currency"] == "TON"
    assert item["status"] == "pending" and item["status_text"] == "Ожидает оплаты"
    assert item["description"] == "Tea" and item["url"] == f"/tg/app/{invoice['id']}"
    assert listed.json()["has_more"] is False

    await pay(container, invoice["id"], 10_000_000_000)
    (paid,) = (await _history(app_client, body["token"], lang="en")).json()["data"]
    assert paid["status"] == "paid" and paid["status_text"] == "Paid"
    assert paid["asset"] == "TON" and paid["amount_paid"] == "10" and paid["paid_at"]


@pytest.mark.parametrize("spoil", ["changed_field", "stale", "future", "wrong_token", "no_hash",
                                   "not_a_query_string", "no_user"])
async def test_initdata_that_proves_nothing_is_refused_and_binds_no_one(
        app_client: httpx.AsyncClient, container: Container, clock: ManualClock,
        merchant: merchants.IssuedKey, spoil: str) -> None:
    invoice = await create_invoice(app_client, merchant)
    now = clock.now()
    good = signed(DEVNET_BOT_TOKEN, ANN, now)
    pairs = dict(parse_qsl(good))
    window = timedelta(seconds=container.settings.miniapp_auth_max_age_seconds)
    spoiled = {
        "changed_field": urlencode({**pairs, "user": pairs["user"].replace(str(ANN), str(BOB))}),
        "stale": signed(DEVNET_BOT_TOKEN, ANN, now - window - timedelta(seconds=1)),
        "future": signed(DEVNET_BOT_TOKEN, ANN, now + timedelta(minutes=5)),
        "wrong_token": signed("7000000001:another-bots-token", ANN, now),
        "no_hash": urlencode({k: v for k, v in pairs.items() if k != "hash"}),
        "not_a_query_string": "hello",
        "no_user": _without_user(now),
    }[spoil]
    error = error_of(await _session(app_client, invoice["id"], spoiled), 401, "invalid_init_data")
    assert error["field"] == "init_data"
    assert {"stale": "more than", "future": "after", "wrong_token": "does not match",
            "changed_field": "does not match", "no_user": "names no Telegram user"}.get(
        spoil, "") in error["message"]
    assert await _owners(container) == []


def _without_user(now: datetime) -> str:
    import hashlib
    import hmac

    from krypton.adapters.telegram.init_data import webapp_secret
    pairs = {"auth_date": str(int(now.timestamp())), "query_id": "AAH"}
    check = "\n".join(f"{k}={pairs[k]}" for k in sorted(pairs))
    digest = hmac.new(webapp_secret(DEVNET_BOT_TOKEN), check.encode(), hashlib.sha256).hexdigest()
    return urlencode({**pairs, "hash": digest})


async def test_the_window_is_a_setting(app_client: httpx.AsyncClient, container: Container,
                                       clock: ManualClock, merchant: merchants.IssuedKey) -> None:
    invoice = await create_invoice(app_client, merchant)
    ten_minutes_old = signed(DEVNET_BOT_TOKEN, ANN, clock.now() - timedelta(minutes=10))
    container.settings.miniapp_auth_max_age_seconds = 300
    error_of(await _session(app_client, invoice["id"], ten_minutes_old), 401, "invalid_init_data")
    container.settings.miniapp_auth_max_age_seconds = 900
    assert (await _session(app_client, invoice["id"], ten_minutes_old)).status_code == 200


async def test_a_second_user_may_pay_but_not_list_from_someone_elses_invoice(
        app_client: httpx.AsyncClient, container: Container, clock: ManualClock,
        merchant: merchants.IssuedKey) -> None:
    invoice = await create_invoice(app_client, merchant)
    await _token(app_client, invoice["id"], ANN, clock.now())
    second = await _session(app_client, invoice["id"], signed(DEVNET_BOT_TOKEN, BOB, clock.now()))
    assert second.status_code == 200 and second.json()["owner"] is False
    error = error_of(await _history(app_client, second.json()["token"]), 403, "not_owner")
    assert "You can still pay it" in error["message"]
    assert await _owners(container) == [(invoice["id"], ANN)]  # the first stays the owner
    # Paying is not theirs to be refused: the checkout's endpoints answer as for anyone.
    assert (await app_client.get(f"/pay/{invoice['id']}/status")).status_code == 200
    again = await _session(app_client, invoice["id"], signed(DEVNET_BOT_TOKEN, ANN, clock.now()))
    assert again.json()["owner"] is True  # the owner coming back is still the owner


async def test_history_is_the_users_own_newest_first_and_paginated(
        app_client: httpx.AsyncClient, container: Container, clock: ManualClock,
        merchant: merchants.IssuedKey) -> None:
    mine: list[str] = []
    for n in range(5):
        clock.advance(minutes=1)
        invoice = await create_invoice(app_client, merchant, description=f"Order {n}")
        await _token(app_client, invoice["id"], ANN, clock.now())
        mine.append(invoice["id"])
    theirs = await create_invoice(app_client, merchant, description="Bob's")
    bob = await _token(app_client, theirs["id"], BOB, clock.now())
    token = await _token(app_client, mine[-1], ANN, clock.now())

    first = (await _history(app_client, token, limit="2")).json()
    assert [i["id"] for i in first["data"]] == mine[::-1][:2] and first["has_more"] is True
    second = (await _history(app_client, token, limit="2",
                             starting_after=first["data"][-1]["id"])).json()
    assert [i["id"] for i in second["data"]] == mine[::-1][2:4] and second["has_more"] is True
    last = (await _history(app_client, token, limit="2", starting_after=mine[1])).json()
    assert [i["id"] for i in last["data"]] == [mine[0]] and last["has_more"] is False
    assert [i["id"] for i in (await _history(app_client, bob)).json()["data"]] == [theirs["id"]]
    # Someone else's id is no anchor for this list; a page size out of range is refused.
    error_of(await _history(app_client, token, starting_after=theirs["id"]), 422, "invalid_request")
    error_of(await _history(app_client, token, limit="51"), 422, "invalid_request")


async def test_the_history_token_is_required_valid_and_short_lived(
        app_client: httpx.AsyncClient, clock: ManualClock, merchant: merchants.IssuedKey) -> None:
    invoice = await create_invoice(app_client, merchant)
    token = await _token(app_client, invoice["id"], ANN, clock.now())
    error_of(await app_client.get("/tg/app/history"), 401, "unauthenticated")
    error_of(await _history(app_client, token[:-3] + "abc"), 401, "unauthenticated")
    error_of(await _history(app_client, invoice["id"]), 401, "unauthenticated")
    clock.advance(seconds=miniapp_page.TOKEN_SECONDS - 1)
    assert (await _history(app_client, token)).status_code == 200
    clock.advance(seconds=1)
    error = error_of(await _history(app_client, token), 401, "unauthenticated")
    assert "expired" in error["message"]


async def test_a_session_for_no_invoice_is_404_and_binds_nothing(
        app_client: httpx.AsyncClient, container: Container, clock: ManualClock) -> None:
    answer = await _session(app_client, "inv_missing", signed(DEVNET_BOT_TOKEN, ANN, clock.now()))
    error_of(answer, 404, "not_found")
    assert await _owners(container) == []


async def test_a_third_party_bots_initdata_is_checked_with_the_ed25519_signature(
        app_client: httpx.AsyncClient, container: Container, clock: ManualClock,
        merchant: merchants.IssuedKey, monkeypatch: pytest.MonkeyPatch) -> None:
    # A key of our own stands in for Telegram's (whose private half only Telegram has).
    telegram = Ed25519PrivateKey.generate()
    public = telegram.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw).hex()
    monkeypatch.setattr(miniapp_page, "TELEGRAM_PUBLIC_KEY", public)
    invoice = await create_invoice(app_client, merchant)
    third_party = ed25519_signed(telegram, 424242, ANN, clock.now())
    error_of(await _session(app_client, invoice["id"], third_party), 401, "invalid_init_data")
    container.settings.telegram_bot_id = 424242
    answer = await _session(app_client, invoice["id"], third_party)
    assert answer.status_code == 200, answer.text
    assert answer.json()["owner"] is True
    # Signed for another bot id, or stale: refused all the same.
    error_of(await _session(app_client, invoice["id"], ed25519_signed(telegram, 7, ANN, clock.now())),
             401, "invalid_init_data")
    stale = ed25519_signed(telegram, 424242, ANN, clock.now() - timedelta(hours=2))
    assert "more than" in error_of(await _session(app_client, invoice["id"], stale),
                                   401, "invalid_init_data")["message"]


async def test_the_stars_link_comes_as_json_for_open_invoice(
        app_client: httpx.AsyncClient, merchant: merchants.IssuedKey, container: Container) -> None:
    from krypton.adapters.telegram.bot_api import BotApi
    from tests.web.live_server import LiveServer

    fake = container.telegram_fake
    assert fake is not None
    with LiveServer(fake.app()) as bot_server:
        bot = BotApi(DEVNET_BOT_TOKEN, bot_server.url)
        container._stars_bot = bot
        try:
            invoice = await create_invoice(app_client, merchant, amount="250", currency="XTR",
                                           methods=["stars"])
            first = await app_client.post(f"/tg/app/{invoice['id']}/stars-link")
            assert first.status_code == 200, first.text
            assert first.json()["link"].startswith("https://t.me/")
            again = await app_client.post(f"/tg/app/{invoice['id']}/stars-link")
            assert again.json() == first.json()  # made once, kept
            ton_only = await create_invoice(app_client, merchant)
            error_of(await app_client.post(f"/tg/app/{ton_only['id']}/stars-link"), 409, "conflict")
        finally:
            await bot.close()
