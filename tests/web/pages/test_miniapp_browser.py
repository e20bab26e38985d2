"""The Telegram Mini App in Chromium, with a stub `Telegram.WebApp` injected before the page's
scripts (as a Telegram client provides one): initData signed with the devnet bot's token,
a dark themeParams, and openInvoice recording the link it was given and reporting 'paid'
once the test has paid through the devnet. The page takes Telegram's colours, pays with
Stars, turns paid without a reload, and lists the purchase in "My purchases"."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from krypton.bootstrap import DEVNET_BOT_TOKEN
from tests.web.init_data_signing import signed
from tests.web.pages.conftest import Served, screenshot

PAID = "Paid. Thank you!"
USER = 777_000_111
DARK = {"bg_color": "#17212b", "secondary_bg_color": "#0e1621", "text_color": "#f5f5f5",
        "hint_color": "#8b9aa9", "link_color": "#6ab3f3", "button_color": "#5288c1",
        "button_text_color": "#ffffff", "section_separator_color": "#2b3a4a"}

# The stub is made non-writable: Telegram's own telegram-web-app.js, which the page also
# loads, then keeps the host's object instead of replacing it (as inside a real client,
# where the page works with whichever object the host gives).
STUB = """
(() => {
  const seen = { ready: 0, expand: 0, invoices: [], events: {}, main: { text: null, visible: false } };
  const main = {
    setText(t) { seen.main.text = t; return main; }, show() { seen.main.visible = true; return main; },
    hide() { seen.main.visible = false; return main; }, onClick(f) { seen.main.click = f; return main; },
  };
  const webApp = {
    initData: %(init_data)s, initDataUnsafe: {}, version: "8.0", platform: "tdesktop",
    colorScheme: "dark", themeParams: %(theme)s, MainButton: main,
    HapticFeedback: { notificationOccurred() {} },
    ready() { seen.ready += 1; }, expand() { seen.expand += 1; },
    onEvent(name, f) { (seen.events[name] = seen.events[name] || []).push(f); },
    openInvoice(link, done) { seen.invoices.push(link); seen.done = done; },
  };
  const telegram = {};
  Object.defineProperty(telegram, "WebApp", { value: webApp, writable: false, enumerable: true });
  Object.defineProperty(window, "Telegram", { value: telegram, writable: false });
  window.__tg = seen;
})();
"""


def _context(browser: Any, language: str, **options: Any) -> tuple[Any, Any, list[str]]:
    init_data = signed(DEVNET_BOT_TOKEN, USER, datetime.now(UTC), language_code=language)
    ctx = browser.new_context(**options)
    ctx.add_init_script(STUB % {"init_data": json.dumps(init_data), "theme": json.dumps(DARK)})
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return ctx, page, problems


def _colour(page: Any, selector: str, prop: str) -> str:
    return str(page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}"))


def test_stars_paid_inside_telegram_in_telegrams_colours(served: Served, browser: Any) -> None:
    invoice = served.invoice(methods=["ton", "stars"], description="Two coffees")
    ctx, page, problems = _context(browser, "en", viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{served.url}/tg/app/{invoice['id']}")
        row = f"#purchase-list li[data-id={invoice['id']}]"
        page.wait_for_selector(row)  # initData verified by the server, the purchase bound
        assert "Two coffees" in page.text_content(row)
        assert page.evaluate("[window.__tg.ready, window.__tg.expand]") == [1, 1]
        assert page.evaluate("document.documentElement.dataset.scheme") == "dark"
        assert _colour(page, ".card", "backgroundColor") == "rgb(23, 33, 43)"  # bg_color
        assert _colour(page, "html", "backgroundColor") == "rgb(14, 22, 33)"  # secondary_bg_color
        assert _colour(page, ".price .amount", "color") == "rgb(245, 245, 245)"  # text_color

        page.click("#tab-stars")
        page.wait_for_function("() => window.__tg.main.visible")
        assert page.evaluate("window.__tg.main.text") == "Pay with Telegram Stars"
        assert _colour(page, "#panel-stars [data-field=stars_link]", "backgroundColor") == "rgb(82, 136, 193)"
        page.evaluate("window.sameDocument = true")  # gone if the page reloads
        page.click("#panel-stars [data-field=stars_link]")
        page.wait_for_function("() => window.__tg.invoices.length === 1")
        link = page.evaluate("window.__tg.invoices[0]")
        assert link.startswith("https://t.me/$")
        assert page.url.endswith(f"/tg/app/{invoice['id']}")  # openInvoice, no navigation

        # The payer pays in Telegram's form: the devnet's fake Telegram tells Krypton's bot.
        paid = httpx.post(f"{served.url}/devnet/control/stars/pay", json={"invoice": invoice["id"]},
                          timeout=30)
        assert paid.status_code < 300, paid.text
        page.evaluate("window.__tg.done('paid')")
        page.wait_for_selector(f"text={PAID}", timeout=30_000)
        page.wait_for_selector(f"{row} .state.paid", timeout=30_000)  # the list follows
        assert page.text_content(f"{row} .state") == "Paid"
        assert page.evaluate("window.sameDocument") is True
        assert page.evaluate("window.__tg.main.visible") is False
        page.wait_for_selector("#countdown", state="hidden")  # no clock once paid
        screenshot(page, "miniapp-desktop-paid.png")
        assert problems == []
    finally:
        ctx.close()


def test_a_russian_user_on_a_phone_gets_russian_and_their_purchases(served: Served, browser: Any) -> None:
    first = served.invoice(description="Круассан")
    second = served.invoice(amount="4.5", description="Какао")
    ctx, page, problems = _context(browser, "ru", viewport={"width": 390, "height": 844},
                                   device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page.goto(f"{served.url}/tg/app/{first['id']}")
        page.wait_for_selector(f"#purchase-list li[data-id={first['id']}]")
        page.goto(f"{served.url}/tg/app/{second['id']}")
        page.wait_for_url("**lang=ru**")  # the user's Telegram language
        page.wait_for_selector("text=Мои покупки")
        page.wait_for_selector(f"#purchase-list li[data-id={first['id']}]")
        ids = page.eval_on_selector_all("#purchase-list li", "items => items.map(i => i.dataset.id)")
        assert ids[:2] == [second["id"], first["id"]]  # newest first
        assert page.text_content(f"#purchase-list li[data-id={second['id']}] .state") == "Ожидает оплаты"
        assert page.is_visible("text=Ожидаем ваш платёж")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways ({width} px)"
        screenshot(page, "miniapp-phone-ru.png")
        assert problems == []
    finally:
        ctx.close()


def test_outside_telegram_the_checkout_still_works_and_says_where_purchases_are(
        served: Served, browser: Any) -> None:
    invoice = served.invoice()
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        page.goto(f"{served.url}/tg/app/{invoice['id']}")
        page.wait_for_selector("text=Open this page from the shop's Telegram bot")
        page.click("#panel-ton [data-devnet=exact]")
        page.wait_for_selector(f"text={PAID}", timeout=30_000)
    finally:
        ctx.close()


def test_forged_init_data_shows_no_purchases(served: Served, browser: Any) -> None:
    invoice = served.invoice()
    ctx = browser.new_context()
    forged = signed("7000000001:not-the-bots-token", USER, datetime.now(UTC))
    ctx.add_init_script(STUB % {"init_data": json.dumps(forged), "theme": "{}"})
    page = ctx.new_page()
    try:
        page.goto(f"{served.url}/tg/app/{invoice['id']}")
        page.wait_for_selector("text=Telegram could not confirm who you are")
        assert page.eval_on_selector_all("#purchase-list li", "items => items.length") == 0
        # No themeParams: the checkout's own colours.
        assert _colour(page, ".card", "backgroundColor") == "rgb(255, 255, 255)"
    finally:
        ctx.close()
