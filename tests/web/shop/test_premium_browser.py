"""Telegram Premium on /stars in Chromium against a real `krypton serve` on the devnet (its
fake Fragment): the product switch, each period with its price, the total for the chosen
period, Pay → a Premium order → the hosted checkout; the same on a 390 px phone without
sideways scrolling. Screenshots (desktop and 390 px) go to artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.pages.conftest import Served, screenshot, serving
from tests.web.pages.conftest import browser as browser  # the fixture, shared
from tests.web.shop.test_stars_browser import _open, _pay

TOTAL = re.compile(r"^\d+(\.\d+)? TON$")
ROUNDED = re.compile(r"^≈ \d+\.\d\d TON$")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("premium")) as instance:
        yield instance


def _premium(page: Any, username: str, months: int) -> None:
    page.check("input[name=product][value=premium]")
    page.wait_for_selector("#premium-choice:not([hidden])")
    assert page.is_hidden("#stars-choice")
    for m in (3, 6, 12):  # every period shows its price, to compare
        expect(page.locator(f"[data-premium-price='{m}']")).to_have_text(ROUNDED)
    page.check(f"input[name=months][value='{months}']")
    page.fill("#recipient", username)
    page.click("#check")
    page.wait_for_selector("#recipient-card:not([hidden])")
    page.wait_for_selector("#pay:not([disabled])")


def test_buying_premium_for_6_months_from_the_page(served: Served, browser: Any) -> None:
    ctx, page, problems = _open(browser, viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{served.url}/stars")
        _premium(page, "alice_tg", 6)
        expect(page.locator("[data-total=TON]")).to_have_text(TOTAL)
        total = page.text_content("[data-total=TON]") or ""
        six = page.text_content("[data-premium-price='6']") or ""
        assert six == f"≈ {float(total.split()[0]):.2f} TON"  # the period's price is the total's
        assert page.text_content("#pay") == f"Pay {total}"
        three = page.text_content("[data-premium-price='3']") or ""
        assert float(three.split()[1]) < float(six.split()[1])
        screenshot(page, "stars-shop-premium-desktop.png")
        order = _pay(page)
        assert (order["product"], order["quantity"], order["recipient"]) == ("premium", 6, "alice_tg")
        page.goto(f"{served.url}/stars/orders/{order['id']}")
        assert page.text_content("h1") == "Premium for 6 months for @alice_tg"
        assert problems == []
    finally:
        ctx.close()


def test_premium_on_a_phone_in_russian(served: Served, browser: Any) -> None:
    ctx, page, problems = _open(browser, viewport={"width": 390, "height": 844})
    try:
        page.goto(f"{served.url}/stars?lang=ru")
        _premium(page, "durov", 12)
        assert page.text_content("label.period:has(input[value='12']) span") == "12 мес."
        assert (page.text_content("#pay") or "").startswith("Оплатить")
        screenshot(page, "stars-shop-premium-phone.png")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways ({width} px)"
        page.check("input[name=product][value=stars]")  # back to Stars: their presets again
        page.wait_for_selector("#stars-choice:not([hidden])")
        assert page.is_hidden("#premium-choice")
        assert problems == []
    finally:
        ctx.close()
