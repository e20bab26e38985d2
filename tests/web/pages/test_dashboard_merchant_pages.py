"""The merchant dashboard's pages and charts over the ASGI app (no browser): who gets a page,
a sign-in redirect or a refusal; the charts are the signed-in merchant's own numbers, as SVG;
on both databases."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from krypton.app import relay, users
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.domain.roles import Role
from tests.web.conftest import Paid
from tests.web.helpers import API

PASSWORD = "a long dashboard password"
PAGES = ["/dashboard", "/dashboard/invoices", "/dashboard/invoices/inv_x", "/dashboard/settlements",
         "/dashboard/webhooks", "/dashboard/settings"]
NS = "{http://www.w3.org/2000/svg}"


async def _sign_in(api: httpx.AsyncClient, container: Container, role: Role,
                   merchant_id: str | None, email: str) -> None:
    """Make the user and sign `api` in as it (the cookies stay on the client)."""
    await users.create_user(container.deps, container.password_hasher, email, PASSWORD, role, merchant_id)
    answer = await api.post(f"{API}/session", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("path", PAGES)
async def test_without_a_session_each_page_sends_to_sign_in(api: httpx.AsyncClient, path: str) -> None:
    answer = await api.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/dashboard/sign-in?next={path}"


async def test_an_owner_gets_every_page_with_its_script_and_a_strict_policy(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey) -> None:
    await _sign_in(api, container, Role.OWNER, merchant.merchant_id, "owner@shop.example")
    for path, script in zip(PAGES, ["overview", "invoices", "invoice", "settlements", "webhooks",
                                    "settings"], strict=True):
        answer = await api.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert f'src="/dashboard-assets/dash-{script}.js"' in answer.text
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self' 'nonce-" in policy and "unsafe-inline" not in policy
        assert "style=" not in answer.text  # the policy would block it
        asset = await api.get(f"/dashboard-assets/dash-{script}.js")
        assert asset.status_code == 200 and "innerHTML" not in asset.text
    # The create form is there for an owner.
    assert 'id="create"' in (await api.get("/dashboard/invoices")).text


async def test_the_invoice_id_in_the_page_is_escaped(api: httpx.AsyncClient, container: Container,
                                                     merchant: IssuedKey) -> None:
    await _sign_in(api, container, Role.OWNER, merchant.merchant_id, "owner@shop.example")
    answer = await api.get('/dashboard/invoices/inv_"><img src=x onerror=alert(1)>')
    assert answer.status_code == 200
    assert "<img src=x" not in answer.text
    assert 'data-invoice="inv_&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"' in answer.text


async def test_a_viewer_sees_no_create_form_and_is_refused_the_webhooks_page(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey) -> None:
    await _sign_in(api, container, Role.VIEWER, merchant.merchant_id, "viewer@shop.example")
    invoices = await api.get("/dashboard/invoices")
    assert invoices.status_code == 200 and 'id="create"' not in invoices.text
    refused = await api.get("/dashboard/webhooks")
    assert refused.status_code == 403
    assert "You cannot see this page" in refused.text and "dash-webhooks.js" not in refused.text


async def test_the_operator_is_sent_to_the_platform_pages(api: httpx.AsyncClient,
                                                          container: Container) -> None:
    await _sign_in(api, container, Role.OPERATOR, None, "operator@platform.example")
    answer = await api.get("/dashboard")
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/operator"
    assert (await api.get("/dashboard/charts/volume.svg")).status_code == 401


async def test_charts_need_a_session_and_show_the_merchants_own_numbers(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey, other: IssuedKey,
        paid: Paid) -> None:
    assert (await api.get("/dashboard/charts/volume.svg")).status_code == 401
    assert (await api.get("/dashboard/charts/confirmations.svg")).status_code == 401
    await relay.catch_up(container.deps)
    await _sign_in(api, container, Role.OWNER, merchant.merchant_id, "owner@shop.example")
    answer = await api.get("/dashboard/charts/volume.svg", params={"asset": "TON", "days": 7})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.headers["cache-control"] == "private, max-age=30"
    tips = [t.text for t in ET.fromstring(answer.text).iter(f"{NS}title")]
    assert tips[0] == "Daily volume, TON"
    assert tips[1:] == [f"2026-11-{d}: 0 TON" for d in range(18, 24)] + ["2026-11-24: 10 TON"]
    confirmations = ET.fromstring((await api.get("/dashboard/charts/confirmations.svg")).text)
    assert [t.text for t in confirmations.iter(f"{NS}title")][1:] == [f"{paid.payment_id} (TON): 0 s"]
    unknown = await api.get("/dashboard/charts/volume.svg", params={"asset": "DOGE"})
    assert unknown.status_code == 404 and "Unknown asset" in unknown.text

    api.cookies.clear()
    await _sign_in(api, container, Role.OWNER, other.merchant_id, "owner@other.example")
    theirs = await api.get("/dashboard/charts/volume.svg", params={"asset": "TON"})
    assert "No TON settled in these 30 days." in theirs.text
    theirs = await api.get("/dashboard/charts/confirmations.svg")
    assert "No confirmed payments yet." in theirs.text
