"""The Stars shop in Chromium against a real `krypton serve` on the devnet (its fake Fragment):
a username looked up and shown before paying, a preset, the live price with the fee in one
total, Pay → a real order → the hosted checkout, paid from the devnet wallet, and the
order's page following it to paid; inside Telegram the same page signs in from initData and lists
the buyer's orders. Screenshots (desktop and 390 px) go to artifacts/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from krypton.bootstrap import DEVNET_BOT_TOKEN
from tests.web.init_data_signing import signed
from tests.web.pages.conftest import Served, screenshot, serving
from tests.web.pages.conftest import browser as browser  # the fixture, shared

BUYER = 777_000_222
EXPECTED = re.compile(r"^Failed to load resource: .* status of (401|404) ")
STUB = """
(() => {
  const webApp = { initData: %(init_data)s, initDataUnsafe: {}, version: "8.0", platform: "tdesktop",
                   colorScheme: "light", themeParams: {}, ready() {}, expand() {}, onEvent() {} };
  const telegram = {};
  Object.defineProperty(telegram, "WebApp", { value: webApp, writable: false, enumerable: true });
  Object.defineProperty(window, "Telegram", { value: telegram, writable: false });
})();
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("stars")) as instance:
        yield instance


def _open(browser: Any, **context: Any) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    problems: list[str] = []
    # The page asks who is signed in (401: no one) and looks up usernames (404: unknown):
    # Chromium logs those answers, which the page expects, as failed loads.
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and not EXPECTED.search(
        m.text) else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return ctx, page, problems


def _pay(page: Any) -> dict[str, Any]:
    """Click Pay and return the order the page created (read on its way to the page, which
    navigates away at once)."""
    made: list[dict[str, Any]] = []

    def keep(route: Any) -> None:
        answer = route.fetch()
        made.append({**answer.json(), "http_status": answer.status})
        route.fulfill(response=answer)
    page.route("**/api/v1/shop/orders", keep)
    page.click("#pay")
    page.wait_for_url(re.compile(r"/pay/inv_"))
    page.unroute("**/api/v1/shop/orders")
    assert len(made) == 1 and made[0]["http_status"] == 201, made
    return made[0]


def _choose(page: Any, username: str, quantity: int) -> None:
    page.fill("#recipient", username)
    page.click("#check")
    page.wait_for_selector("#recipient-card:not([hidden])")
    page.click(f".preset[data-quantity='{quantity}']")
    page.wait_for_selector("#pay:not([disabled])")


def test_buying_stars_from_the_page_to_the_checkout_and_the_order_delivered(
        served: Served, browser: Any) -> None:
    ctx, page, problems = _open(browser, viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{served.url}/stars")
        assert page.is_disabled("#pay")  # nothing to pay before the username is checked
        _choose(page, "@durov", 100)
        assert page.text_content("#recipient-name") == "Pavel Durov"
        assert page.text_content("#avatar") == "PD"
        total = page.text_content("[data-total=TON]") or ""
        assert re.fullmatch(r"\d+(\.\d+)? TON", total), total
        assert page.text_content("#pay") == f"Pay {total}"
        assert "Fee included" in (page.text_content("#price-note") or "")
        screenshot(page, "stars-shop-desktop.png")
        order = _pay(page)
        assert "/pay/" + order["checkout_url"].rsplit("/pay/", 1)[1] in page.url
        page.wait_for_selector("text=Waiting for your payment")
        page.click("#panel-ton [data-devnet=exact]")
        page.wait_for_selector("text=Paid. Thank you!", timeout=30_000)
        page.goto(f"{served.url}/stars/orders/{order['id']}")
        assert page.text_content("h1") == "100 Stars for @durov"
        # The page follows the order without a reload: paid, then on to the supplier (delivery
        # itself needs the signer beside the server, which this server does not run).
        page.wait_for_selector("#order-status:not([data-status=awaiting_payment])", timeout=30_000)
        status = page.get_attribute("#order-status", "data-status")
        assert status in ("paid", "fulfilling", "delivered"), status
        assert page.text_content("#order-state") in ("Paid", "Sending the Stars", "Delivered")
        assert page.is_hidden("#order-pay")
        screenshot(page, "stars-order-desktop.png")
        assert problems == []
    finally:
        ctx.close()


def test_on_a_phone_an_unknown_username_says_so_and_pay_stays_off(served: Served, browser: Any) -> None:
    ctx, page, problems = _open(browser, viewport={"width": 390, "height": 844})
    try:
        page.goto(f"{served.url}/stars?lang=ru")
        page.fill("#recipient", "nobody_at_all")
        page.click("#check")
        page.wait_for_selector("#recipient-note.bad")
        assert page.is_disabled("#pay")
        page.fill("#quantity", "10")
        page.wait_for_selector("#quantity[aria-invalid=true]")
        _choose(page, "durov", 50)
        assert page.text_content("#pay", timeout=5_000).startswith("Оплатить")  # type: ignore[union-attr]
        screenshot(page, "stars-shop-phone.png")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways ({width} px)"
        assert problems == []
    finally:
        ctx.close()


def test_inside_telegram_the_buyer_signs_in_from_init_data_and_sees_their_orders(
        served: Served, browser: Any) -> None:
    ctx, page, problems = _open(browser, viewport={"width": 390, "height": 844})
    init_data = signed(DEVNET_BOT_TOKEN, BUYER, datetime.now(UTC))
    ctx.add_init_script(STUB % {"init_data": json.dumps(init_data)})
    try:
        page.goto(f"{served.url}/tg/stars")
        page.wait_for_selector("#signed-in:not([hidden])")
        assert page.text_content("#buyer-name") == "Signed in as Ann"
        assert page.text_content("#orders") == "No orders yet."
        _choose(page, "durov", 50)
        _pay(page)
        page.goto(f"{served.url}/tg/stars")
        page.wait_for_selector("#orders li a")
        assert page.text_content("#orders li a") == "50 Stars for @durov"
        screenshot(page, "stars-shop-telegram.png")
        assert problems == []
    finally:
        ctx.close()
