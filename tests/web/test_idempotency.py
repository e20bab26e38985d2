"""Idempotency-Key: a retried create replays the first response and writes nothing new."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from krypton.adapters.db import tables
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from tests.conftest import auth
from tests.web.helpers import API, count_rows, error_of, events_of_type, written

BODY = {"amount": "9.99", "currency": "USD", "order_id": "o-1"}


async def _create(api: httpx.AsyncClient, key: IssuedKey, idem: str, body: dict[str, Any] = BODY
                  ) -> httpx.Response:
    return await api.post(f"{API}/invoices", json=body, headers={**auth(key), "Idempotency-Key": idem})


async def test_same_key_and_body_replays_the_stored_response(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey) -> None:
    first = await _create(api, merchant, "order-o-1")
    second = await _create(api, merchant, "order-o-1")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert await count_rows(container, tables.invoices) == 1
    assert await events_of_type(container, "invoice.created") == [first.json()["id"]]


async def test_replay_is_the_stored_response_even_after_the_invoice_changed(
        api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    first = (await _create(api, merchant, "k")).json()
    await api.post(f"{API}/invoices/{first['id']}/cancel", headers=auth(merchant))
    again = await _create(api, merchant, "k")
    assert again.status_code == 201
    assert again.json() == first  # the stored first response, status "pending"


async def test_same_key_with_a_different_body_is_422(api: httpx.AsyncClient, container: Container,
                                                     merchant: IssuedKey) -> None:
    assert (await _create(api, merchant, "k")).status_code == 201
    before = await written(container)
    error = error_of(await _create(api, merchant, "k", {**BODY, "amount": "10.00"}),
                     422, "idempotency_key_reused")
    assert error["field"] == "Idempotency-Key"
    assert "new key" in error["message"]
    assert await written(container) == before


async def test_a_rejected_request_does_not_use_up_its_key(api: httpx.AsyncClient, container: Container,
                                                          merchant: IssuedKey) -> None:
    error_of(await _create(api, merchant, "k", {**BODY, "amount": "-1"}), 422, "invalid_amount")
    fixed = await _create(api, merchant, "k")
    assert fixed.status_code == 201, fixed.text
    assert await count_rows(container, tables.invoices) == 1


async def test_without_a_key_each_request_creates_an_invoice(api: httpx.AsyncClient, container: Container,
                                                             merchant: IssuedKey) -> None:
    for _ in range(2):
        assert (await api.post(f"{API}/invoices", json=BODY, headers=auth(merchant))).status_code == 201
    assert await count_rows(container, tables.invoices) == 2


async def test_different_keys_create_different_invoices(api: httpx.AsyncClient, container: Container,
                                                        merchant: IssuedKey) -> None:
    a, b = await _create(api, merchant, "k1"), await _create(api, merchant, "k2")
    assert a.json()["id"] != b.json()["id"]
    assert await count_rows(container, tables.invoices) == 2


async def test_merchants_using_the_same_key_string_are_independent(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey, other: IssuedKey) -> None:
    mine = await _create(api, merchant, "shared")
    theirs = await _create(api, other, "shared", {**BODY, "amount": "5"})  # a different body is fine
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["amount"] == "5"
    assert await count_rows(container, tables.invoices) == 2
    # Each merchant's replay returns its own invoice.
    assert (await _create(api, other, "shared", {**BODY, "amount": "5"})).json()["id"] == theirs.json()["id"]


async def test_concurrent_requests_with_one_key_create_one_invoice(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey) -> None:
    responses = await asyncio.gather(*(_create(api, merchant, "burst") for _ in range(20)))
    assert [r.status_code for r in responses] == [201] * 20, \
        [r.text for r in responses if r.status_code != 201]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert all(r.json() == responses[0].json() for r in responses)
    assert await count_rows(container, tables.invoices) == 1
    assert await events_of_type(container, "invoice.created") == list(ids)


async def test_concurrent_requests_with_distinct_keys_each_create_one(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey) -> None:
    responses = await asyncio.gather(*(_create(api, merchant, f"k{n % 5}") for n in range(20)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 5
    assert await count_rows(container, tables.invoices) == 5
    assert len(await events_of_type(container, "invoice.created")) == 5


async def test_the_same_body_written_differently_still_replays(api: httpx.AsyncClient, container: Container,
                                                               merchant: IssuedKey) -> None:
    first = await _create(api, merchant, "k")
    reordered = {"order_id": "o-1", "metadata": {}, "currency": "USD", "amount": "9.99", "methods": None}
    again = await _create(api, merchant, "k", reordered)
    assert (again.status_code, again.json()) == (201, first.json())
    assert await count_rows(container, tables.invoices) == 1
