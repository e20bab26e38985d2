"""The users page in Chromium, against a real `krypton serve`: an owner adds a viewer with an
initial password; the viewer signs in in a second browser context and has no Users nor API
keys in its menu (and a sentence on the users page); the owner disables the viewer, who can
no longer sign in. Screenshots at desktop width and at 390 px go to artifacts/."""

from __future__ import annotations

import os
import subprocess
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.web.pages.conftest import KRYPTON, Served, screenshot

OWNER = "owner@users.example"
VIEWER = "viewer@users.example"
PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "a viewer's first password"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _merchant_id(served: Served) -> str:
    answer = httpx.get(f"{served.url}/api/v1/merchant",
                       headers={"Authorization": f"Bearer {served.key}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


@pytest.fixture(scope="module")
def owner(served: Served) -> str:
    """The merchant's first owner, made with the CLI in the served data directory."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KRYPTON_")},
           "KRYPTON_DATA_DIR": str(served.data_dir)}
    subprocess.run([KRYPTON, "user", "create", "--email", OWNER, "--role", "owner", "--merchant",
                    _merchant_id(served), "--password-stdin"], env=env, input=PASSWORD + "\n",
                   capture_output=True, text=True, timeout=120, check=True)
    return OWNER


def _context(browser: Any, viewport: dict[str, int]) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(viewport=viewport)
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return ctx, page, problems


def _sign_in(page: Any, served: Served, email: str, password: str, next_page: str) -> None:
    page.goto(f"{served.url}{next_page}")  # no session: sent to sign in, then back here
    page.wait_for_url("**/dashboard/sign-in**")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: urlsplit(url).path == next_page)


def _menu(page: Any) -> list[str]:
    return [text.strip() for text in page.locator("nav.nav a").all_text_contents()]


def test_an_owner_adds_a_viewer_who_sees_no_users_nor_keys(served: Served, browser: Any,
                                                           owner: str) -> None:
    ctx, page, problems = _context(browser, DESKTOP)
    viewer_ctx, viewer_page, viewer_problems = _context(browser, DESKTOP)
    try:
        _sign_in(page, served, owner, PASSWORD, "/dashboard/users")
        assert "Users" in _menu(page) and "API keys" in _menu(page)
        page.wait_for_selector(f"#users tr[data-email='{owner}']:has-text('(you)')")
        page.fill("#new-email", VIEWER)
        page.select_option("#new-role", "viewer")
        page.fill("#new-password", VIEWER_PASSWORD)
        page.click("#add-user")
        row = f"#users tr[data-email='{VIEWER}']"
        page.wait_for_selector(f"{row}[data-role=viewer][data-status=active]")
        assert page.text_content("#added") == f"Added {VIEWER}."
        assert page.input_value("#new-email") == "" and page.input_value("#new-password") == ""
        # Its own row offers neither a role change nor a disable button.
        assert page.is_disabled(f"#users tr[data-email='{owner}'] select")
        assert page.locator(f"#users tr[data-email='{owner}'] button").count() == 0
        screenshot(page, "dashboard-users-desktop.png")

        # The viewer, in a browser of its own, reads invoices but manages nothing.
        _sign_in(viewer_page, served, VIEWER, VIEWER_PASSWORD, "/dashboard/invoices")
        menu = _menu(viewer_page)
        assert "Invoices" in menu and "Users" not in menu and "API keys" not in menu, menu
        refused = viewer_page.goto(f"{served.url}/dashboard/users")
        assert refused is not None and refused.status == 403
        assert "does not have the 'users:manage' permission" in (viewer_page.text_content("#refused") or "")

        # The owner disables the viewer: it cannot sign in again.
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f"{row} button.danger")
        page.wait_for_selector(f"{row}[data-status=disabled]")
        screenshot(page, "dashboard-users-disabled-desktop.png")
        viewer_page.context.clear_cookies()
        viewer_page.goto(f"{served.url}/dashboard/sign-in")
        viewer_page.fill("#email", VIEWER)
        viewer_page.fill("#password", VIEWER_PASSWORD)
        viewer_page.click("button[type=submit]")
        viewer_page.wait_for_selector("#error:not([hidden])")
        assert "This account is disabled" in (viewer_page.text_content("#error") or "")

        # Enabled again, and made a developer from the role select.
        page.click(f"{row} button:has-text('Enable')")
        page.wait_for_selector(f"{row}[data-status=active]")
        page.select_option(f"{row} select", "developer")
        page.wait_for_selector(f"{row}[data-role=developer]")
        assert problems == []
        # The sign-in page logs the refused POST as a console error; nothing else may fail.
        assert [p for p in viewer_problems if "403" not in p] == []
    finally:
        viewer_ctx.close()
        ctx.close()


def test_the_users_page_at_390_px(served: Served, browser: Any, owner: str) -> None:
    ctx, page, problems = _context(browser, PHONE)
    try:
        _sign_in(page, served, owner, PASSWORD, "/dashboard/users")
        page.wait_for_selector("#users tr[data-id]")
        # Nothing wider than the phone but the table, which scrolls in its own box.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "dashboard-users-phone.png")
        assert problems == []
    finally:
        ctx.close()
