"""The OpenAPI document: authentication per operation, the real error shape, enums, names."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from krypton.app.merchants import IssuedKey
from krypton.domain.assets import Chain
from krypton.domain.invoice import InvoiceStatus
from krypton.domain.payment import PaymentStatus
from krypton.web.openapi import ErrorOut
from tests.conftest import auth
from tests.web.helpers import API


@pytest.fixture
async def doc(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get(f"{API}/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


async def test_every_merchant_operation_asks_for_an_api_key_and_names_its_scope(doc: dict[str, Any]) -> None:
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        **doc["components"]["securitySchemes"]["ApiKey"], "type": "http", "scheme": "bearer"}
    for path, method, op in _operations(doc):
        if path.startswith(f"{API}/public/"):
            assert op["security"] == [], path  # payers need nothing
        elif path.startswith(f"{API}/operator/"):  # the token, or an operator session
            assert op["security"] == [{"OperatorToken": []}, {"Session": []}], path
            assert "whose role has the permission `" in op["description"], (method, path)
        elif path.startswith(f"{API}/api-keys"):  # a session only: an API key never mints keys
            assert op["security"] == [{"Session": []}], path
            assert "`apikeys:manage`" in op["description"], (method, path)
        elif path.startswith(f"{API}/users"):  # an owner, signed in: never an API key
            assert op["security"] == [{"Session": []}], path
            assert "`users:manage`" in op["description"], (method, path)
        elif (method, path) in {("patch", f"{API}/merchant"),  # its owner, signed in
                                ("post", f"{API}/merchant/telegram/link-code")}:
            assert op["security"] == [{"Session": []}], path
            assert "`settings:manage`" in op["description"], (method, path)
        elif path.startswith(f"{API}/session"):
            assert op["security"] == [], path  # a password, then the session's own cookie
        elif path.startswith(f"{API}/shop/"):
            assert op["security"] == [], path  # buyers: no key; their own orders, a buyer session
        else:
            assert op["security"] == [{"ApiKey": []}], (method, path)
            assert "Requires an API key with the scope `" in op["description"], (method, path)
    create = doc["paths"][f"{API}/invoices"]["post"]
    assert create["description"].endswith("`invoices:write`.")


async def test_errors_are_documented_as_the_house_shape(doc: dict[str, Any], api: httpx.AsyncClient,
                                                        merchant: IssuedKey) -> None:
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    for path, method, op in _operations(doc):
        responses = op["responses"]
        assert responses["422"]["content"]["application/json"]["schema"] == error_ref, (method, path)
        if op["security"] == [{"ApiKey": []}]:
            assert {"401", "403", "429"} <= set(responses), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
    # ... and what the server really answers fits it.
    invalid = await api.post(f"{API}/invoices", json={"amount": 5}, headers=auth(merchant))
    missing = await api.get(f"{API}/invoices/inv_nope", headers=auth(merchant))
    anonymous = await api.get(f"{API}/invoices")
    for response, status in ((invalid, 422), (missing, 404), (anonymous, 401)):
        assert response.status_code == status
        ErrorOut.model_validate(response.json())


async def test_statuses_are_enums_and_names_are_plain(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert not [name for name in schemas if not name.isidentifier() or "__" in name]
    assert {"InvoiceList", "PaymentList", "SettlementList", "EventList", "UnmatchedList"} <= set(schemas)

    def enum_of(model: str, field: str) -> set[str]:
        prop = schemas[model]["properties"][field]
        ref = prop.get("$ref") or next(p["$ref"] for p in prop.get("anyOf", []) if "$ref" in p)
        return set(schemas[ref.rsplit("/", 1)[1]]["enum"])

    assert enum_of("InvoiceOut", "status") == {s.value for s in InvoiceStatus}
    assert enum_of("PublicInvoiceOut", "status") == {s.value for s in InvoiceStatus}
    assert enum_of("PaymentOut", "status") == {s.value for s in PaymentStatus}
    assert enum_of("PaymentOut", "chain") == {c.value for c in Chain}


async def test_every_field_is_described(doc: dict[str, Any]) -> None:
    undescribed = [f"{name}.{field}" for name, schema in doc["components"]["schemas"].items()
                   for field, spec in schema.get("properties", {}).items() if not spec.get("description")]
    assert undescribed == []
