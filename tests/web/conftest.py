"""Fixtures for the REST API tests (the shared ones live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from krypton.adapters.auth.passwords import Argon2Hasher
from krypton.app import merchants, users
from krypton.bootstrap import Container
from krypton.domain.roles import Role
from krypton.web.sessions import CSRF_COOKIE
from tests.web.helpers import API, create_invoice, pay


@pytest.fixture
async def other(container: Container) -> merchants.IssuedKey:
    """A second merchant's all-scopes key."""
    _, key = await merchants.create_merchant(container.deps, name="Other shop")
    return key


KeyFactory = Callable[..., Awaitable[merchants.IssuedKey]]


@pytest.fixture
def key_with(container: Container, merchant: merchants.IssuedKey) -> KeyFactory:
    """key_with("invoices:read") -> a key of the `merchant` fixture's merchant with only that scope."""
    async def make(*scopes: str) -> merchants.IssuedKey:
        return await merchants.create_api_key(container.deps, merchant.merchant_id, list(scopes))
    return make


@dataclass(frozen=True)
class Paid:
    invoice_id: str
    payment_id: str
    settlement_id: str


@pytest.fixture
async def paid(container: Container, merchant: merchants.IssuedKey, api: httpx.AsyncClient) -> Paid:
    """An invoice of the `merchant` fixture priced 10 TON, paid in full and settled."""
    invoice = await create_invoice(api, merchant, amount="10", currency="TON")
    payment_id = await pay(container, invoice["id"], 10_000_000_000)
    async with container.deps.uow(write=False) as uow:
        (settlement,) = await uow.settlements.for_invoice(invoice["id"])
    return Paid(invoice["id"], payment_id, settlement.id)


PASSWORD = "correct horse battery"
SignIn = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
def fast_container(container: Container) -> Container:
    """The container with a cheap password hash: sign-ins cost milliseconds, not a second."""
    container.password_hasher = Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1)
    return container


@pytest.fixture
async def signed_in(fast_container: Container) -> AsyncIterator[SignIn]:
    """signed_in(role, merchant_id) -> a client of the whole app holding that new user's
    session cookies (each client its own jar)."""
    from krypton.web.app import create_app

    app = create_app(fast_container, run_workers=False)
    clients: list[httpx.AsyncClient] = []
    made = 0

    async def sign_in(role: Role, merchant_id: str | None) -> httpx.AsyncClient:
        nonlocal made
        made += 1
        email = f"{role.value}{made}@example.com"
        await users.create_user(fast_container.deps, fast_container.password_hasher, email, PASSWORD,
                                role, merchant_id)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        clients.append(client)
        response = await client.post(f"{API}/session", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return client

    yield sign_in
    for client in clients:
        await client.aclose()
    await app.state.limiter.close()


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies[CSRF_COOKIE]}


