"""Fixtures for the REST API tests (the shared ones live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from krypton.app import merchants
from krypton.bootstrap import Container
from tests.web.helpers import create_invoice, pay


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
