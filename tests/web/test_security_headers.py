"""Security headers on every response (web/security.py) and /docs from Krypton's own files
under a Content-Security-Policy (web/docs.py)."""

from __future__ import annotations

import re

import httpx
import pytest

from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.web.app import create_app
from tests.conftest import auth
from tests.web.helpers import API
from tests.web.test_logs import crashing_app


def assert_hardened(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


@pytest.mark.parametrize(("method", "path", "keyed"), [
    ("GET", "/livez", False), ("GET", "/healthz", False), ("GET", "/metrics", False),
    ("GET", f"{API}/invoices", True), ("GET", f"{API}/invoices", False),  # 200 and 401
    ("GET", f"{API}/nope", True), ("DELETE", f"{API}/invoices", True),  # 404 and 405
    ("GET", f"{API}/openapi.json", False), ("GET", "/docs", False),
    ("POST", f"{API}/invoices", True),  # 422
], ids=lambda v: str(v))
async def test_every_response_has_the_headers(api: httpx.AsyncClient, merchant: IssuedKey,
                                              method: str, path: str, keyed: bool) -> None:
    response = await api.request(method, path, headers=auth(merchant) if keyed else {})
    assert_hardened(response)
    assert "strict-transport-security" not in response.headers  # plain http


async def test_a_crash_has_the_headers(container: Container, merchant: IssuedKey) -> None:
    transport = httpx.ASGITransport(app=crashing_app(container), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/crash", headers=auth(merchant))
    assert response.status_code == 500
    assert_hardened(response)


async def test_hsts_only_over_https(container: Container) -> None:
    app = create_app(container, run_workers=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://pay.example") as client:
        response = await client.get("/livez")
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert_hardened(response)


async def test_docs_use_only_local_files_under_a_policy(api: httpx.AsyncClient) -> None:
    page = await api.get("/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy and "script-src 'self' 'unsafe-inline'" not in policy
    html = page.text
    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert references, html
    for reference in references:
        assert reference.startswith("/"), f"{reference} is not served by Krypton"
        asset = await api.get(reference)
        assert asset.status_code == 200, reference
        assert len(asset.content) > 100, reference
    # No inline script: every <script> has a src and no body.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert all(body.strip() == "" for body in re.findall(r"<script[^>]*>(.*?)</script>", html, re.S))
    assert '"/api/v1/openapi.json"' in html
    bundle = await api.get("/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text


async def test_docs_serve_only_the_files_they_use(api: httpx.AsyncClient) -> None:
    for name in ("index.html", "..%2F__init__.py", "swagger-initializer.js"):
        response = await api.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name
