"""The merchant's dashboard in Chromium, against a real `krypton serve` on the devnet: sign
in, the overview, creating an invoice from the form, seeing it paid (list, detail, timeline)
after a devnet payment, and webhook endpoints (the secret shown once, deliveries, redeliver).
Screenshots at desktop size and 390 px go to artifacts/."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.receiver import Receiver
from tests.web.pages.conftest import KRYPTON, Served, _wait, screenshot, serving

PASSWORD = "a long dashboard password"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """As conftest's, with webhooks allowed to this machine (the receiver below, so that no
    test reaches the internet): a module of its own, so the checkout tests keep the
    production rule."""
    with serving(tmp_path_factory.mktemp("dashboard"), KRYPTON_WEBHOOKS_ALLOW_LOOPBACK="true") as instance:
        yield instance


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    """A merchant's webhook handler (200 to every POST): its URL, and the webhook ids it got."""
    with Receiver() as hooks:
        yield hooks.url, hooks.webhook_ids


def _krypton(served: Served, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([KRYPTON, *args], env=served.env,
                          input=stdin, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def owner(served: Served) -> str:
    """An owner of the served merchant, made with the CLI; its email."""
    merchant = httpx.get(f"{served.url}/api/v1/merchant", timeout=10,
                         headers={"Authorization": f"Bearer {served.key}"}).json()
    email = "owner@cafe.example"
    _krypton(served, "user", "create", "--email", email, "--role", "owner", "--merchant",
             merchant["id"], "--password-stdin", stdin=PASSWORD + "\n")
    return email


@pytest.fixture
def signed_in(served: Served, browser: Any, owner: str) -> Iterator[tuple[Any, list[str]]]:
    """A page signed in through the sign-in form, and the console errors it collects."""
    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{served.url}/dashboard/invoices")
    assert "/dashboard/sign-in?next=/dashboard/invoices" in page.url
    page.fill("#email", owner)
    page.fill("#password", PASSWORD)
    page.click("#sign-in button[type=submit]")
    page.wait_for_url(f"{served.url}/dashboard/invoices")
    try:
        yield page, problems
    finally:
        ctx.close()


def _both_sizes(page: Any, name: str) -> None:
    screenshot(page, f"dashboard-{name}-desktop.png")
    page.set_viewport_size(PHONE)
    # Nothing may stick out sideways at 390 px but a table's own scrolling box.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, f"dashboard-{name}-390.png")
    page.set_viewport_size(DESKTOP)


def test_create_an_invoice_pay_it_and_watch_it_turn_paid_with_its_timeline(
        served: Served, signed_in: tuple[Any, list[str]]) -> None:
    page, problems = signed_in
    page.click("#create-box summary")
    page.fill("#amount", "1.5")
    page.select_option("#currency", "TON")
    page.check("#methods input[value=ton]")
    page.fill("#order-id", "order-42")
    page.fill("#description", "Two coffees <b>to go</b>")
    page.click("#create button[type=submit]")
    page.wait_for_selector("#created:not([hidden])")
    invoice_id = page.text_content("#created-link")
    assert invoice_id and invoice_id.startswith("inv_")
    assert page.get_attribute("#checkout-link", "href") == f"/pay/{invoice_id}"
    assert page.text_content("#checkout-link") == f"{served.url}/pay/{invoice_id}"
    page.wait_for_selector(f"#rows tr[data-id={invoice_id}] .pill.pending")
    created = httpx.get(f"{served.url}/api/v1/invoices/{invoice_id}", timeout=10,
                        headers={"Authorization": f"Bearer {served.key}"}).json()
    assert (created["amount"], created["currency"], created["order_id"], created["description"]) == (
        "1.5", "TON", "order-42", "Two coffees <b>to go</b>")
    assert [o["method"] for o in created["payment_options"]] == ["ton"]
    _both_sizes(page, "invoices")

    page.click("#created-link")
    page.wait_for_selector("#summary .pill.pending")
    assert page.is_visible("text=Invoice created")
    _krypton(served, "devnet", "pay", invoice_id, "--method", "ton")
    # The page follows the invoice without a reload: paid, then settled.
    page.evaluate("window.sameDocument = true")
    page.wait_for_selector("#summary .pill.paid", timeout=30_000)
    page.wait_for_selector("#timeline li[data-type='settlement.created']", timeout=30_000)
    assert page.evaluate("window.sameDocument") is True
    types = page.eval_on_selector_all("#timeline li", "items => items.map(i => i.dataset.type)")
    assert types[0] == "invoice.created"
    assert types.index("payment.detected") < types.index("invoice.paid") < types.index("settlement.created")
    assert page.is_visible("#payments .pill.confirmed")
    assert page.text_content("#details") and "Two coffees <b>to go</b>" in page.text_content("#details")
    assert page.is_hidden("#cancel")  # only a pending invoice can be cancelled
    _both_sizes(page, "invoice")

    # The list's order-id search finds it, paid.
    page.goto(f"{served.url}/dashboard/invoices")
    page.fill("#order", "order-42")
    page.click("#filters button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#rows tr').length === 1")
    assert page.is_visible(f"#rows tr[data-id={invoice_id}] .pill.paid")
    page.select_option("#status", "pending")
    page.click("#filters button[type=submit]")
    page.wait_for_selector("#empty:not([hidden])")

    # The overview counts it and draws its volume.
    page.goto(f"{served.url}/dashboard")
    page.wait_for_selector("#counts .stat")
    page.wait_for_selector("#charts img")
    src = page.get_attribute("#charts img", "src")
    assert src == "/dashboard/charts/volume.svg?asset=TON&days=30"
    # The images loaded (an SVG that failed to load has no natural width).
    page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert page.is_visible(f"#recent a[href='/dashboard/invoices/{invoice_id}']")
    _both_sizes(page, "overview")
    for other in ("settlements", "settings"):
        page.goto(f"{served.url}/dashboard/{other}")
        page.wait_for_selector("#balances .stat, #settings th")
        _both_sizes(page, other)
    assert page.is_visible("text=set by the operator")
    assert problems == []


def test_a_webhook_endpoints_secret_is_shown_once_and_deliveries_can_be_sent_again(
        served: Served, signed_in: tuple[Any, list[str]], receiver: tuple[str, list[str]]) -> None:
    page, problems = signed_in
    url, received = receiver
    page.goto(f"{served.url}/dashboard/webhooks")
    page.wait_for_selector("#empty:not([hidden])")
    page.click("#create-box summary")
    page.fill("#url", url)
    page.fill("#hook-description", "Shop backend")
    page.click("#create button[type=submit]")
    page.wait_for_selector("#secret-box:not([hidden])")
    secret = page.text_content("#secret")
    assert secret and secret.startswith("whsec_")
    screenshot(page, "dashboard-webhooks-secret-desktop.png")
    page.click("#secret-done")
    assert page.is_hidden("#secret-box") and page.text_content("#secret") == ""
    page.reload()
    page.wait_for_selector("#endpoints tr")
    assert secret not in page.content()  # never shown again
    assert page.is_visible("#endpoints .pill.enabled") and page.is_visible("text=Shop backend")

    served.invoice()  # an event for the endpoint: invoice.created
    _wait(lambda: len(received) == 1, "the delivery of invoice.created")
    page.click("#endpoints button:has-text('Deliveries')")
    page.wait_for_selector("#deliveries .pill.succeeded")
    assert page.text_content("#deliveries tr td:nth-child(2)") == "invoice.created"
    assert page.text_content("#deliveries tr td:nth-child(5)") == "200"
    page.click("#deliveries button:has-text('Redeliver')")
    _wait(lambda: len(received) == 2, "the delivery sent again")
    assert received[1] == received[0]  # the same event, the same webhook-id
    page.click("#endpoints button:has-text('Deliveries')")
    page.wait_for_selector("#deliveries td.num:has-text('2')")  # two attempts now
    _both_sizes(page, "webhooks")

    page.click("#endpoints button:has-text('Disable')")
    page.wait_for_selector("#endpoints .pill.disabled")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#endpoints button:has-text('Rotate secret')")
    page.wait_for_selector("#secret-box:not([hidden])")
    rotated = page.text_content("#secret")
    assert rotated and rotated.startswith("whsec_") and rotated != secret
    page.click("#endpoints button:has-text('Delete')")
    page.wait_for_selector("#empty:not([hidden])")
    assert page.is_hidden("#deliveries-box")
    assert problems == []
