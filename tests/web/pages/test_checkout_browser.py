"""The hosted checkout in Chromium: paid from the devnet wallet and turning paid without a
reload, a partial payment showing what remains, copy buttons, the expired and Russian
pages, the Content-Security-Policy, and merchant text that stays text."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.web.pages.conftest import Served, screenshot

PAID = "Paid. Thank you!"


def _open(browser: Any, url: str, **context: Any) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    return ctx, page, problems


def test_paying_from_the_devnet_wallet_turns_the_page_paid_without_a_reload(
        served: Served, browser: Any) -> None:
    invoice = served.invoice(redirect_url="https://shop.example/thanks")
    ctx, page, problems = _open(browser, f"{served.url}/pay/{invoice['id']}",
                                viewport={"width": 1280, "height": 900})
    try:
        page.wait_for_selector("text=Waiting for your payment")
        screenshot(page, "checkout-desktop.png")
        page.evaluate("window.sameDocument = true")  # gone if the page reloads
        page.route("https://shop.example/**", lambda route: route.fulfill(body="thanks"))
        page.click("#panel-ton [data-devnet=exact]")
        page.wait_for_selector(f"text={PAID}", timeout=30_000)
        assert page.evaluate("window.sameDocument") is True
        assert page.is_visible("text=Back to the shop")
        assert page.get_attribute("#redirect-link", "href") == "https://shop.example/thanks"
        assert not page.is_visible("#pay")
        page.wait_for_url("https://shop.example/thanks", timeout=10_000)  # then back to the shop
        assert problems == []
    finally:
        ctx.close()


def test_a_partial_payment_shows_what_remains_in_the_asset_used(served: Served, browser: Any) -> None:
    invoice = served.invoice(amount="10")  # 2 TON at the devnet's static 5 USD
    ctx, page, problems = _open(browser, f"{served.url}/pay/{invoice['id']}",
                                viewport={"width": 390, "height": 844})
    try:
        page.click("#tab-usdt_ton")
        page.click("#tab-ton")
        page.click("#panel-ton [data-devnet=under]")
        page.wait_for_selector("text=Partly paid: 1 TON still due", timeout=30_000)
        assert page.text_content("#panel-ton [data-field=amount]") == "1"
        assert page.is_hidden("#tab-usdt_ton")  # only the asset already used remains
        assert "amount=1000000000" in (page.get_attribute("#panel-ton [data-field=deep_link]", "href") or "")
        screenshot(page, "checkout-phone-underpaid.png")
        page.click("#panel-ton [data-devnet=exact]")
        page.wait_for_selector(f"text={PAID}", timeout=30_000)
        assert problems == []
    finally:
        ctx.close()


def test_copy_buttons_put_the_value_on_the_clipboard(served: Served, browser: Any) -> None:
    invoice = served.invoice()
    ctx, page, _ = _open(browser, f"{served.url}/pay/{invoice['id']}",
                         permissions=["clipboard-read", "clipboard-write"])
    try:
        memo = page.text_content("#panel-ton [data-field=memo]")
        page.click("#panel-ton [data-copy-field=memo]")
        assert page.evaluate("navigator.clipboard.readText()") == memo
        assert page.text_content("#panel-ton [data-copy-field=memo]") == "Copied"
        page.click("#panel-ton [data-copy-field=amount]")
        assert page.evaluate("navigator.clipboard.readText()") == page.text_content(
            "#panel-ton [data-field=amount]")
    finally:
        ctx.close()


def test_an_expired_invoice_says_so_plainly_and_hides_the_instructions(served: Served, browser: Any) -> None:
    invoice = served.invoice()
    past = (datetime.now(UTC) - timedelta(minutes=1)).replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(served.data_dir / "krypton.sqlite3", timeout=30) as db:  # the deadline passes
        db.execute("UPDATE invoices SET expires_at = ? WHERE id = ?", (past, invoice["id"]))
    status = f"{served.url}/api/v1/public/invoice/{invoice['id']}"
    for _ in range(300):  # the server's expiry job runs every few seconds
        if httpx.get(status).json()["status"] == "expired":
            break
        __import__("time").sleep(0.1)
    ctx, page, problems = _open(browser, f"{served.url}/pay/{invoice['id']}")
    try:
        assert "has expired" in (page.text_content("#state-detail") or "")
        assert page.is_hidden("#pay") and page.is_hidden("#countdown")
        screenshot(page, "checkout-expired.png")
        assert problems == []
    finally:
        ctx.close()


def test_the_russian_page_by_switch_and_by_browser_language(served: Served, browser: Any) -> None:
    invoice = served.invoice()
    ctx, page, _ = _open(browser, f"{served.url}/pay/{invoice['id']}", locale="ru-RU",
                         viewport={"width": 390, "height": 844})
    try:
        assert page.text_content("#state-title") == "Ожидаем ваш платёж"
        assert page.get_attribute("html", "lang") == "ru"
        screenshot(page, "checkout-phone-ru.png")
        page.click("text=English")
        assert page.text_content("#state-title") == "Waiting for your payment"
        page.goto(f"{served.url}/pay/{invoice['id']}")  # the choice is remembered
        assert page.get_attribute("html", "lang") == "en"
    finally:
        ctx.close()


def test_scripts_run_only_with_the_nonce_and_merchant_text_stays_text(served: Served, browser: Any) -> None:
    nasty = '<script>window.pwned=1</script>"><img src=x onerror="window.pwned=2">'
    invoice = served.invoice(description=nasty, order_id="<b>o-1</b>")
    answer = httpx.get(f"{served.url}/pay/{invoice['id']}")
    policy = answer.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    scripts = re.findall(r"<script\b[^>]*>", answer.text)
    assert scripts and all(f'nonce="{nonce.group(1)}"' in s or 'type="application/json"' in s
                           for s in scripts)
    assert "<script>window.pwned" not in answer.text and "<img src=x" not in answer.text
    ctx, page, _ = _open(browser, f"{served.url}/pay/{invoice['id']}")
    try:
        assert page.text_content(".desc") == nasty  # shown as the text it is
        assert page.evaluate("window.pwned") is None
        # An inline script without the nonce is refused by the policy.
        page.evaluate("""() => { const s = document.createElement('script');
                                 s.textContent = 'window.pwned = 3'; document.body.appendChild(s); }""")
        assert page.evaluate("window.pwned") is None
    finally:
        ctx.close()


def test_an_unknown_invoice_is_a_page_not_a_json_error(served: Served, browser: Any) -> None:
    ctx, page, _ = _open(browser, f"{served.url}/pay/inv_nope")
    try:
        assert "no invoice with this number" in (page.text_content("main") or "")
    finally:
        ctx.close()


def test_a_stars_invoice_is_paid_through_the_devnets_telegram_without_a_reload(
        served: Served, browser: Any) -> None:
    invoice = served.invoice(amount="100", currency="XTR", methods=["stars"])
    ctx, page, problems = _open(browser, f"{served.url}/pay/{invoice['id']}",
                                viewport={"width": 390, "height": 844})
    try:
        assert page.is_visible("text=Pay with Telegram Stars")
        screenshot(page, "checkout-phone-stars.png")
        page.evaluate("window.sameDocument = true")
        page.click("#panel-stars [data-devnet=exact]")
        page.wait_for_selector(f"text={PAID}", timeout=30_000)
        assert page.evaluate("window.sameDocument") is True
        assert problems == []
    finally:
        ctx.close()
