"""Scopes: every endpoint answers 403 insufficient_scope without its scope and works with it."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from tests.conftest import auth
from tests.web.conftest import KeyFactory, Paid
from tests.web.helpers import API, SCOPES, create_invoice, error_of, written


@dataclass(frozen=True)
class Endpoint:
    scope: str
    method: str
    path: str  # formatted with the ids of a `Paid` invoice and a pending one
    ok: int = 200


ENDPOINTS = [
    Endpoint("invoices:write", "POST", "/invoices", 201),
    Endpoint("invoices:read", "GET", "/invoices"),
    Endpoint("invoices:read", "GET", "/invoices/{invoice_id}"),
    Endpoint("invoices:write", "POST", "/invoices/{pending_id}/cancel"),
    Endpoint("payments:read", "GET", "/invoices/{invoice_id}/payments"),
    Endpoint("payments:read", "GET", "/payments/{payment_id}"),
    Endpoint("settlements:read", "GET", "/settlements"),
    Endpoint("settlements:read", "GET", "/settlements/{settlement_id}"),
    Endpoint("balances:read", "GET", "/balances"),
    Endpoint("events:read", "GET", "/events"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_endpoint_needs_exactly_its_scope(api: httpx.AsyncClient, container: Container,
                                                merchant: IssuedKey, key_with: KeyFactory,
                                                paid: Paid, endpoint: Endpoint) -> None:
    pending = await create_invoice(api, merchant)
    url = API + endpoint.path.format(invoice_id=paid.invoice_id, pending_id=pending["id"],
                                     payment_id=paid.payment_id, settlement_id=paid.settlement_id)
    body = {"amount": "1", "currency": "TON"} if endpoint.method == "POST" else None

    for scope in SCOPES:
        if scope == endpoint.scope:
            continue
        key = await key_with(scope)
        before = await written(container)
        error = error_of(await api.request(endpoint.method, url, json=body, headers=auth(key)),
                         403, "insufficient_scope")
        assert f"'{endpoint.scope}'" in error["message"]
        assert await written(container) == before, f"{scope} key wrote something"

    key = await key_with(endpoint.scope)
    response = await api.request(endpoint.method, url, json=body, headers=auth(key))
    assert response.status_code == endpoint.ok, response.text


async def test_every_scope_is_used_by_some_endpoint() -> None:
    assert {e.scope for e in ENDPOINTS} == set(SCOPES)


async def test_a_key_with_several_scopes_gets_each(api: httpx.AsyncClient, key_with: KeyFactory) -> None:
    key = await key_with("invoices:write", "invoices:read")
    created = await create_invoice(api, key)
    got = await api.get(f"{API}/invoices/{created['id']}", headers=auth(key))
    assert got.status_code == 200
    error_of(await api.get(f"{API}/balances", headers=auth(key)), 403, "insufficient_scope")


async def test_public_invoice_needs_no_scope(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    created = await create_invoice(api, merchant)
    assert (await api.get(f"{API}/public/invoice/{created['id']}")).status_code == 200
