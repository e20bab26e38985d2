"""The payer's refund page in Chromium against a real `krypton serve` and `krypton signer
run` on the devnet: a TON payment from the devnet wallet, a refund with a claim link, the
payer entering an address (a wrong one first), submitting, and the page following the
refund until the signer's transfer is final, without a reload; then the spent, forged and
Russian pages."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from krypton.devnet.ton import payer_address
from tests.web.pages.conftest import KRYPTON, Served, screenshot, serving

PASSPHRASE = "a devnet passphrase, long enough"
BOB = payer_address("bob")


def _wait(done: Any, what: str, seconds: float = 30) -> Any:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = done()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture(scope="module")
def with_signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("refunds")
    base = {k: v for k, v in os.environ.items() if not k.startswith("KRYPTON_")}
    env = {**base, "KRYPTON_DATA_DIR": str(data_dir), "KRYPTON_SIGNER_PASSPHRASE": PASSPHRASE}
    made = subprocess.run([KRYPTON, "signer", "init"], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    address = made.stdout.strip().splitlines()[-1]
    with serving(data_dir, KRYPTON_SIGNER_ADDRESS=address) as served:
        log = (data_dir / "signer.log").open("wb")
        signer = subprocess.Popen(
            [KRYPTON, "signer", "run"], stdout=log, stderr=log,
            env={**served.env, "KRYPTON_SIGNER_ADDRESS": address, "KRYPTON_DEVNET_URL": served.url,
                 "KRYPTON_SIGNER_PASSPHRASE": PASSPHRASE})
        try:
            try:  # the keystore's Argon2id and the container take a while on a busy machine
                _wait(lambda: (data_dir / "signer.sock").exists() or signer.poll() is not None,
                      "the signer's socket", seconds=120)
            except AssertionError:
                raise AssertionError((data_dir / "signer.log").read_text()) from None
            assert signer.poll() is None, (data_dir / "signer.log").read_text()
            yield served
        finally:
            signer.terminate()
            signer.wait(timeout=30)
            log.close()


def _api(served: Served, method: str, path: str, **options: Any) -> httpx.Response:
    return httpx.request(method, f"{served.url}/api/v1{path}", timeout=10,
                         headers={"Authorization": f"Bearer {served.key}"}, **options)


def _paid_ton_invoice(served: Served) -> str:
    invoice = served.invoice(amount="10", currency="TON", methods=["ton"])
    sent = httpx.post(f"{served.url}/pay/{invoice['id']}/devnet", json={"method": "ton"}, timeout=10)
    assert sent.status_code == 201, sent.text
    _wait(lambda: _api(served, "GET", f"/invoices/{invoice['id']}").json()["status"] == "paid",
          "the invoice to be paid")
    return str(invoice["id"])


def test_the_payer_claims_a_refund_and_watches_it_arrive(with_signer: Served, browser: Any) -> None:
    served = with_signer
    invoice_id = _paid_ton_invoice(served)
    created = _api(served, "POST", f"/invoices/{invoice_id}/refund", json={"amount": "3"})
    assert created.status_code == 201, created.text
    path = httpx.URL(created.json()["claim_url"]).path

    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    page = ctx.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "422" not in m.text
            else None)
    try:
        page.goto(served.url + path)
        page.wait_for_selector("text=Your refund")
        assert page.text_content("#refund-net") == "2.99"
        assert "0.01 TON" in (page.text_content("#refund-fee") or "")
        screenshot(page, "refund-claim-mobile.png")
        page.evaluate("window.sameDocument = true")

        page.fill("#refund-address", "not-an-address")
        page.click("#refund-submit")
        page.wait_for_selector("#refund-error:not([hidden])")
        assert page.get_attribute("#refund-address", "aria-invalid") == "true"

        friendly = BOB.friendly(bounceable=False, testnet=True)
        page.fill("#refund-address", friendly)
        page.click("#refund-submit")
        # The answer waits until the signer has broadcast the transfer (seconds on the devnet).
        page.wait_for_selector(f"text=Your refund is on its way to {BOB.raw}", timeout=30_000)
        assert page.query_selector("#refund-form") is None
        page.wait_for_selector(f"text=Your refund was sent to {BOB.raw}", timeout=60_000)
        assert page.evaluate("window.sameDocument") is True
        screenshot(page, "refund-claim-sent.png")
        assert problems == []

        refund = _api(served, "GET", f"/invoices/{invoice_id}/refunds").json()["data"][0]
        assert (refund["status"], refund["destination"], refund["net_amount"]) == (
            "succeeded", BOB.raw, "2.99")

        page.goto(served.url + path + "?lang=ru")  # spent: the status, no form, in Russian
        page.wait_for_selector(f"text=Возврат отправлен на {BOB.raw}")
        assert page.query_selector("#refund-form") is None
    finally:
        ctx.close()


def test_a_forged_link_shows_a_clear_page(with_signer: Served, browser: Any) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        answer = page.goto(with_signer.url + "/refund/ref_forged.abc.4102444800.AAAA")
        assert answer is not None and answer.status == 404
        assert "This refund link is not valid" in (page.text_content("#refund-message") or "")
    finally:
        ctx.close()


def test_the_page_has_a_strict_policy(with_signer: Served) -> None:
    invoice_id = _paid_ton_invoice(with_signer)
    created = _api(with_signer, "POST", f"/invoices/{invoice_id}/refund", json={"amount": "1"})
    path = httpx.URL(created.json()["claim_url"]).path
    page = httpx.get(with_signer.url + path, timeout=10)
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "unsafe" not in policy
    assert "form-action 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    assert json.loads(page.text.split('<script type="application/json" id="config">')[1]
                      .split("</script>")[0])["state"] == "claim"
