"""The API keys page and the operator's pages in Chromium, against a real `krypton serve`:
an owner signs in, creates a key (its secret shown once), revokes it, and the revoked key
gets 401 from the API; the operator signs in and sees the merchants. Screenshots at desktop
width and at 390 px go to artifacts/."""

from __future__ import annotations

import os
import subprocess
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.web.pages.conftest import KRYPTON, Served, screenshot

PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _user(served: Served, email: str, role: str, merchant: str | None = None) -> None:
    """A dashboard user in the served data directory (the CLI, as an operator would)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KRYPTON_")},
           "KRYPTON_DATA_DIR": str(served.data_dir)}
    args = [KRYPTON, "user", "create", "--email", email, "--role", role, "--password-stdin"]
    if merchant:
        args += ["--merchant", merchant]
    subprocess.run(args, env=env, input=PASSWORD + "\n", capture_output=True, text=True,
                   timeout=120, check=True)


def _merchant_id(served: Served) -> str:
    answer = httpx.get(f"{served.url}/api/v1/merchant", headers={"Authorization": f"Bearer {served.key}"},
                       timeout=10)
    if answer.status_code == 200:
        return str(answer.json()["id"])
    # Without the merchant endpoint: an invoice names its merchant's fee, not its id; ask the CLI.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KRYPTON_")},
           "KRYPTON_DATA_DIR": str(served.data_dir)}
    listed = subprocess.run([KRYPTON, "merchant", "list"], env=env, capture_output=True, text=True,
                            timeout=120, check=True)
    return next(word for word in listed.stdout.split() if word.startswith("mer_"))


def _sign_in(browser: Any, served: Served, email: str, next_page: str,
             viewport: dict[str, int]) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(viewport=viewport)
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{served.url}{next_page}")  # no session: sent to sign in, then back here
    page.wait_for_url("**/dashboard/sign-in**")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    # The path itself: the sign-in page's own URL ends with ?next=<the same path>.
    page.wait_for_url(lambda url: urlsplit(url).path == next_page)
    return ctx, page, problems


@pytest.fixture(scope="module")
def owner(served: Served) -> str:
    _user(served, "owner@cafe.example", "owner", _merchant_id(served))
    return "owner@cafe.example"


@pytest.fixture(scope="module")
def operator(served: Served) -> str:
    _user(served, "ops@krypton.example", "operator")
    return "ops@krypton.example"


def test_an_owner_creates_a_key_sees_it_once_and_revokes_it(served: Served, browser: Any,
                                                            owner: str) -> None:
    ctx, page, problems = _sign_in(browser, served, owner, "/dashboard/api-keys", DESKTOP)
    try:
        page.wait_for_selector("#keys tr[data-id]")
        page.check("input[name=scopes][value='invoices:read']")
        page.click("#create-key")
        page.wait_for_selector("#new-key:not([hidden])")
        secret = page.text_content("#new-secret") or ""
        assert secret.startswith("kr_")
        api = f"{served.url}/api/v1/invoices"
        assert httpx.get(api, headers={"Authorization": f"Bearer {secret}"}, timeout=10).status_code == 200
        row = f"#keys tr[data-id][data-status=active]:has-text('{secret[:11]}')"
        page.wait_for_selector(row)
        screenshot(page, "dashboard-keys-desktop.png")

        page.click("#hide-secret")  # shown once: gone from the page, and never listed
        assert page.is_hidden("#new-key") and page.text_content("#new-secret") == ""
        page.reload()
        page.wait_for_selector(row)
        assert secret not in page.content()

        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f"{row} button.danger")
        page.wait_for_selector(f"#keys tr[data-status=revoked]:has-text('{secret[:11]}')")
        refused = httpx.get(api, headers={"Authorization": f"Bearer {secret}"}, timeout=10)
        assert refused.status_code == 401, refused.text
        assert problems == []
    finally:
        ctx.close()


def test_the_keys_page_at_390_px(served: Served, browser: Any, owner: str) -> None:
    ctx, page, problems = _sign_in(browser, served, owner, "/dashboard/api-keys", PHONE)
    try:
        page.wait_for_selector("#keys tr[data-id]")
        # Nothing wider than the phone but the table, which scrolls in its own box.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "dashboard-keys-phone.png")
        assert problems == []
    finally:
        ctx.close()


def test_the_operator_sees_the_merchants_and_the_platform(served: Served, browser: Any,
                                                          operator: str) -> None:
    ctx, page, problems = _sign_in(browser, served, operator, "/dashboard/operator/merchants", DESKTOP)
    try:
        page.wait_for_selector("#merchants tr[data-id]:has-text('Cafe')")
        assert "1 %" in (page.text_content("#merchants tr[data-id]:has-text('Cafe')") or "")
        screenshot(page, "dashboard-operator-merchants-desktop.png")
        page.click("nav >> text=Platform")
        page.wait_for_selector("#consumers .stat")
        page.wait_for_selector("#chains tr")
        screenshot(page, "dashboard-operator-platform-desktop.png")
        page.click("nav >> text=Webhook failures")
        page.wait_for_selector("#failures tr")
        page.click("nav >> text=Unmatched transfers")
        page.wait_for_selector("#unmatched tr")
        assert problems == []
    finally:
        ctx.close()


def test_the_operator_pages_at_390_px(served: Served, browser: Any, operator: str) -> None:
    ctx, page, problems = _sign_in(browser, served, operator, "/dashboard/operator/merchants", PHONE)
    try:
        page.wait_for_selector("#merchants tr[data-id]")
        screenshot(page, "dashboard-operator-merchants-phone.png")
        page.goto(f"{served.url}/dashboard/operator")
        page.wait_for_selector("#consumers .stat")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "dashboard-operator-platform-phone.png")
        assert problems == []
    finally:
        ctx.close()


def test_a_merchants_user_gets_a_sentence_on_operator_pages(served: Served, browser: Any,
                                                            owner: str) -> None:
    ctx, page, _ = _sign_in(browser, served, owner, "/dashboard/api-keys", DESKTOP)
    try:
        response = page.goto(f"{served.url}/dashboard/operator/merchants")
        assert response is not None and response.status == 403
        assert "does not have the 'platform:read' permission" in (page.text_content("#refused") or "")
    finally:
        ctx.close()
