"""Every error is JSON {"error": {"code", "message", "field"}} with a sentence for people."""

from __future__ import annotations

import httpx
import pytest

from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.web.app import create_app
from tests.conftest import auth
from tests.web.helpers import API, error_of


async def test_unknown_endpoint_is_json_404(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    error = error_of(await api.get(f"{API}/nope", headers=auth(merchant)), 404, "not_found")
    assert "/docs" in error["message"]


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/invoices"), ("PUT", "/invoices/inv_x"),
                                              ("GET", "/invoices/inv_x/cancel")])
async def test_wrong_method_is_json_405(api: httpx.AsyncClient, merchant: IssuedKey, method: str,
                                        path: str) -> None:
    response = await api.request(method, API + path, headers=auth(merchant))
    error = error_of(response, 405, "method_not_allowed")
    assert method in error["message"]
    assert "allow" in response.headers


async def test_errors_are_served_as_json(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{API}/invoices")
    assert response.headers["content-type"] == "application/json"


async def test_openapi_is_served_at_api_v1(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{API}/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    create = schema["paths"][f"{API}/invoices"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}
    assert schema["components"]["schemas"]["InvoiceCreate"]["properties"]["amount"]["type"] == "string"


async def test_app_shutdown_closes_the_rate_limiter(container: Container) -> None:
    app = create_app(container, run_workers=False)
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    app.state.limiter.close = close
    async with app.router.lifespan_context(app):
        assert closed == []
    assert closed == [True]
