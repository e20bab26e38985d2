"""Bad input: 422 with a machine code, the field at fault and a sentence that says what to fix,
and nothing written (no invoice, no event)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from krypton.app import merchants
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from tests.conftest import auth
from tests.web.helpers import API, error_of, written

GOOD = {"amount": "9.99", "currency": "USD"}
NOT_PLAIN = "plain decimal"
EXPIRY = ("expires_in", "between 60 and 2,592,000 seconds")


def nested(levels: int) -> dict[str, Any]:
    """Metadata whose objects nest `levels` deep (the metadata object itself is level 1)."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def case(fields: dict[str, Any], code: str, field: str | None, *keywords: str) -> Any:
    return pytest.param(fields, code, field, keywords,
                        id=",".join(f"{k}={v!r}"[:40] for k, v in fields.items()))


BAD_BODIES = [
    case({"amount": 9.99}, "invalid_request", "amount", "decimal string"),
    case({"amount": 10}, "invalid_request", "amount", "decimal string"),
    case({"amount": None}, "invalid_request", "amount", "decimal string"),
    case({"amount": "9.999"}, "invalid_amount", "amount", "decimal places", "2"),
    case({"amount": "1.0000000001", "currency": "TON"}, "invalid_amount", "amount", "at most 9"),
    case({"amount": "1.5", "currency": "XTR"}, "invalid_amount", "amount", "at most 0"),
    case({"amount": "-1"}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": "0"}, "invalid_amount", "amount", "greater than zero"),
    case({"amount": "0.00"}, "invalid_amount", "amount", "greater than zero"),
    case({"amount": "1e3"}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": "NaN"}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": "Infinity"}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": " 1"}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": "1 "}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": "1,5"}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": "+1"}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": "01"}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": ".5"}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": "1."}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": "0x10"}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": "١"}, "invalid_amount", "amount", NOT_PLAIN),  # Arabic-Indic digit one
    case({"amount": ""}, "invalid_amount", "amount", NOT_PLAIN),
    case({"amount": str(2**63), "currency": "XTR"}, "invalid_amount", "amount", "maximum"),
    case({"amount": "9223372036854775.808", "currency": "TON"}, "invalid_amount", "amount", "maximum"),
    case({"amount": "92233720368547758.08"}, "invalid_amount", "amount", "maximum"),
    case({"amount": "9" * 5000}, "invalid_request", "amount", "at most 64 characters"),
    case({"amount": "0.0001", "currency": "TON"}, "invalid_request", "amount", "smallest", "TON"),
    case({"currency": "EUR"}, "unknown_currency", "currency", "EUR", "USD"),
    case({"currency": "usd"}, "unknown_currency", "currency", "USD"),
    case({"currency": 1}, "invalid_request", "currency", "string"),
    case({"methods": ["paypal"]}, "unknown_currency", "methods", "paypal", "ton"),
    case({"methods": []}, "invalid_request", "methods", "At least one"),
    case({"methods": "ton"}, "invalid_request", "methods", "list"),
    case({"methods": ["ton"] * 5}, "invalid_request", "methods", "at most 4"),
    case({"amount": "9.99", "currency": "USDT", "methods": ["ton"]}, "invalid_request", "methods",
         "USDT", "price it in USD"),
    case({"colour": "red"}, "invalid_request", "colour", "not a known field", "remove"),
    case({"expires_in": 0}, "invalid_request", "expires_in", *EXPIRY),
    case({"expires_in": 59}, "invalid_request", "expires_in", *EXPIRY),
    case({"expires_in": 2_592_001}, "invalid_request", "expires_in", *EXPIRY),
    case({"expires_in": -(10**20)}, "invalid_request", "expires_in", *EXPIRY),
    case({"expires_in": 10**20}, "invalid_request", "expires_in", *EXPIRY),
    case({"expires_in": "abc"}, "invalid_request", "expires_in", "expires_in", "whole number"),
    case({"expires_in": 600.5}, "invalid_request", "expires_in", "expires_in", "whole number"),
    case({"expires_in": True}, "invalid_request", "expires_in", "expires_in", "whole number"),
    case({"confirmations": 0}, "invalid_request", "confirmations", "1 to 100"),
    case({"confirmations": 101}, "invalid_request", "confirmations", "1 to 100"),
    case({"confirmations": 10**30}, "invalid_request", "confirmations", "1 to 100"),
    case({"confirmations": True}, "invalid_request", "confirmations", "whole number"),
    case({"metadata": {"blob": "x" * 4100}}, "invalid_request", "metadata", "4 KB"),
    case({"metadata": [1]}, "invalid_request", "metadata", "JSON object"),
    case({"redirect_url": "javascript:alert(1)"}, "invalid_request", "redirect_url", "https://"),
    case({"redirect_url": "ftp://example.com"}, "invalid_request", "redirect_url", "https://"),
    case({"order_id": "x" * 201}, "invalid_request", "order_id", "at most 200"),
    case({"description": "x" * 1001}, "invalid_request", "description", "at most 1000 characters"),
    case({"order_id": "x" * 201}, "invalid_request", "order_id", "at most 200 characters"),
    case({"currency": "USDT_TRC20"}, "invalid_request", "currency", "asset", "USDT", "usdt_trc20"),
    case({"currency": "USDT_TON"}, "invalid_request", "currency", "asset", "USDT", "usdt_ton"),
    case({"metadata": {"n": 2**64}}, "invalid_request", "metadata", "metadata.n", "2^63"),
    case({"metadata": {"n": [2**63]}}, "invalid_request", "metadata", "metadata.n[0]", "2^63"),
    case({"metadata": {"n": -(2**63) - 1}}, "invalid_request", "metadata", "2^63"),
    case({"metadata": nested(17)}, "invalid_request", "metadata", "at most 16 levels"),
    case({"metadata": nested(252)}, "invalid_request", "metadata", "at most 16 levels"),
    case({"metadata": {"a": [[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]}}, "invalid_request", "metadata",
         "at most 16 levels"),
]


@pytest.mark.parametrize(("fields", "code", "field", "keywords"), BAD_BODIES)
async def test_bad_invoice_is_rejected_and_nothing_is_written(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey, fields: dict[str, Any],
        code: str, field: str | None, keywords: tuple[str, ...]) -> None:
    before = await written(container)
    response = await api.post(f"{API}/invoices", json={**GOOD, **fields}, headers=auth(merchant))
    error = error_of(response, 422, code)
    assert error["field"] == field
    for keyword in keywords:
        assert keyword in error["message"], error
    assert await written(container) == before


@pytest.mark.parametrize("missing", ["amount", "currency"])
async def test_missing_required_field(api: httpx.AsyncClient, container: Container, merchant: IssuedKey,
                                      missing: str) -> None:
    before = await written(container)
    body = {k: v for k, v in GOOD.items() if k != missing}
    error = error_of(await api.post(f"{API}/invoices", json=body, headers=auth(merchant)),
                     422, "invalid_request")
    assert (error["field"], error["message"]) == (missing, f"{missing} is required.")
    assert await written(container) == before


RAW_BODIES = [
    pytest.param(b'{"amount": "1",', "not valid JSON", id="truncated"),
    pytest.param(b"{'amount': '1'}", "not valid JSON", id="single-quotes"),
    pytest.param(b"\xff\xfe{}", "not valid JSON", id="not-utf8"),
    pytest.param(b"[]", "JSON object", id="array"),
    pytest.param(b'"9.99"', "JSON object", id="string"),
    pytest.param(b"", "required", id="empty"),
    pytest.param(b'{"amount": "1", "currency": "USD", "metadata": {"x": NaN}}', "NaN", id="nan"),
    pytest.param(b'{"amount": "1", "currency": "USD", "metadata": {"x": -Infinity}}', "NaN", id="inf"),
]


@pytest.mark.parametrize(("raw", "keyword"), RAW_BODIES)
async def test_unparseable_body_is_422_and_nothing_is_written(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey, raw: bytes,
        keyword: str) -> None:
    before = await written(container)
    response = await api.post(f"{API}/invoices", content=raw,
                              headers={**auth(merchant), "Content-Type": "application/json"})
    error = error_of(response, 422, "invalid_request")
    assert keyword in error["message"], error
    assert error["field"] in (None, "metadata"), error
    assert await written(container) == before


async def test_method_not_enabled_for_the_merchant(api: httpx.AsyncClient,
                                                   container: Container) -> None:
    _, key = await merchants.create_merchant(container.deps, name="TON only", methods=["ton"])
    before = await written(container)
    response = await api.post(f"{API}/invoices", headers=auth(key),
                              json={**GOOD, "methods": ["ton", "stars"]})
    error = error_of(response, 422, "invalid_request")
    assert (error["field"], "not enabled" in error["message"], "stars" in error["message"]) == \
        ("methods", True, True)
    assert await written(container) == before


async def test_price_currency_no_enabled_method_accepts(api: httpx.AsyncClient,
                                                        container: Container) -> None:
    _, key = await merchants.create_merchant(container.deps, name="TON only", methods=["ton"])
    before = await written(container)
    response = await api.post(f"{API}/invoices", headers=auth(key), json={"amount": "5", "currency": "XTR"})
    error = error_of(response, 422, "invalid_request")
    assert error["field"] == "methods"
    assert "XTR" in error["message"] and "price it in USD" in error["message"]
    assert await written(container) == before


BAD_QUERIES = [
    ("/invoices", {"status": "bogus"}, "status", "pending"),
    ("/invoices", {"starting_after": "inv_nope"}, "starting_after", "not an id from this list"),
    ("/invoices", {"starting_after": "x" * 65}, "starting_after", "at most 64"),
    ("/invoices", {"limit": 0}, "limit", "at least 1"),
    ("/invoices", {"limit": 101}, "limit", "at most 100"),
    ("/invoices", {"limit": "ten"}, "limit", "whole number"),
    ("/invoices", {"order_id": "x" * 201}, "order_id", "at most 200"),
    ("/settlements", {"limit": 0}, "limit", "at least 1"),
    ("/settlements", {"limit": 101}, "limit", "at most 100"),
    ("/settlements", {"starting_after": "set_nope"}, "starting_after", "not an id from this list"),
    ("/events", {"limit": 0}, "limit", "at least 1"),
    ("/events", {"limit": 101}, "limit", "at most 100"),
    ("/events", {"after": "evt_nope"}, "after", "not an event id"),
]


@pytest.mark.parametrize(("path", "params", "field", "keyword"), BAD_QUERIES,
                         ids=[f"{p}?{q}"[:50] for p, q, _, _ in BAD_QUERIES])
async def test_bad_list_parameters_are_422(api: httpx.AsyncClient, merchant: IssuedKey, path: str,
                                           params: dict[str, Any], field: str, keyword: str) -> None:
    response = await api.get(API + path, params=params, headers=auth(merchant))
    error = error_of(response, 422, "invalid_request")
    assert error["field"] == field
    assert keyword in error["message"], error


@pytest.mark.parametrize("limit", [1, 100])
async def test_limit_bounds_are_accepted(api: httpx.AsyncClient, merchant: IssuedKey, limit: int) -> None:
    for path in ("/invoices", "/settlements", "/events"):
        response = await api.get(API + path, params={"limit": limit}, headers=auth(merchant))
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("key", ["", "k" * 256], ids=["empty", "256 characters"])
async def test_an_empty_or_overlong_idempotency_key_is_422(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey, key: str) -> None:
    before = await written(container)
    response = await api.post(f"{API}/invoices", json=GOOD,
                              headers={**auth(merchant), "Idempotency-Key": key})
    error = error_of(response, 422, "invalid_request")
    assert error["field"] == "Idempotency-Key"
    assert "1 to 255 characters" in error["message"]
    assert await written(container) == before


async def test_an_idempotency_key_of_255_characters_is_accepted(
        api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    response = await api.post(f"{API}/invoices", json=GOOD,
                              headers={**auth(merchant), "Idempotency-Key": "k" * 255})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("fields", [{"expires_in": 60}, {"expires_in": 2_592_000},
                                    {"confirmations": 1}, {"confirmations": 100}], ids=str)
async def test_bounds_are_inclusive(api: httpx.AsyncClient, merchant: IssuedKey,
                                    fields: dict[str, int]) -> None:
    response = await api.post(f"{API}/invoices", json={**GOOD, **fields}, headers=auth(merchant))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("fields", [{"order_id": "a\x00b"}, {"description": "\x00"},
                                    {"redirect_url": "https://shop.example/\x00"}], ids=list)
async def test_nul_character_in_stored_text_is_422_not_500(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey,
        fields: dict[str, str]) -> None:
    before = await written(container)
    response = await api.post(f"{API}/invoices", json={**GOOD, **fields}, headers=auth(merchant))
    error = error_of(response, 422, "invalid_request")
    assert error["field"] == next(iter(fields))
    assert "NUL" in error["message"]
    assert await written(container) == before


async def test_nul_character_inside_metadata_round_trips(api: httpx.AsyncClient,
                                                         merchant: IssuedKey) -> None:
    created = await api.post(f"{API}/invoices", json={**GOOD, "metadata": {"k\x00": "v\x00"}},
                             headers=auth(merchant))
    assert created.status_code == 201, created.text
    got = await api.get(f"{API}/invoices/{created.json()['id']}", headers=auth(merchant))
    assert got.json()["metadata"] == {"k\x00": "v\x00"}


@pytest.mark.parametrize("url", ["/invoices/inv_a%00b", "/invoices?order_id=a%00b",
                                 "/invoices?starting_after=a%00b", "/payments/a%00b",
                                 "/settlements/a%00b", "/events?after=a%00b",
                                 "/public/invoice/a%00b"])
async def test_nul_character_in_url_is_422_not_500(api: httpx.AsyncClient, merchant: IssuedKey,
                                                   url: str) -> None:
    error = error_of(await api.get(API + url, headers=auth(merchant)), 422, "invalid_request")
    assert "NUL" in error["message"]


# Lone surrogates are written as JSON escapes: valid JSON, but no character, so no client
# library sends them from a `json=` argument; these bodies are raw.
SURROGATE = "\\udfff"
SURROGATE_BODIES = [
    pytest.param(f'"description": "a{SURROGATE}"', "description", id="description"),
    pytest.param(f'"order_id": "{SURROGATE}"', "order_id", id="order_id"),
    pytest.param(f'"redirect_url": "https://shop.example/{SURROGATE}"', "redirect_url", id="redirect_url"),
    pytest.param(f'"methods": ["{SURROGATE}"]', "methods", id="methods"),
    pytest.param(f'"metadata": {{"{SURROGATE}": 1}}', "metadata", id="metadata key"),
    pytest.param(f'"metadata": {{"k": "{SURROGATE}"}}', "metadata", id="metadata value"),
    pytest.param(f'"metadata": {{"k": [{{"{SURROGATE}": 1}}]}}', "metadata", id="nested metadata key"),
]


@pytest.mark.parametrize(("member", "field"), SURROGATE_BODIES)
async def test_a_lone_surrogate_is_422_naming_the_field(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey, member: str,
        field: str) -> None:
    before = await written(container)
    raw = '{"amount": "9.99", "currency": "USD", ' + member + "}"
    response = await api.post(f"{API}/invoices", content=raw.encode(),
                              headers={**auth(merchant), "Content-Type": "application/json"})
    error = error_of(response, 422, "invalid_request")
    assert error["field"] == field
    assert "surrogate" in error["message"], error
    assert await written(container) == before


@pytest.mark.parametrize(("raw", "field"), [
    pytest.param(f'{{"amount": "{SURROGATE}", "currency": "USD"}}', "amount", id="amount"),
    pytest.param(f'{{"amount": "1", "currency": "{SURROGATE}"}}', "currency", id="currency"),
    pytest.param(f'{{"amount": "1", "currency": "USD", "{SURROGATE}": 1}}', None, id="unknown field"),
])
async def test_a_lone_surrogate_anywhere_in_the_body_is_422(
        api: httpx.AsyncClient, merchant: IssuedKey, raw: str, field: str | None) -> None:
    response = await api.post(f"{API}/invoices", content=raw.encode(),
                              headers={**auth(merchant), "Content-Type": "application/json"})
    error = error_of(response, 422, "invalid_request")
    assert error["field"] == field
    assert "surrogate" in error["message"], error


async def test_metadata_at_the_depth_limit_is_stored_and_listed(
        api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    """16 levels are accepted and every read of the merchant's invoices still works (252
    levels were accepted before and then broke the invoice list)."""
    deep = nested(16)
    extremes = {"low": -(2**63), "high": 2**63 - 1}
    created = await api.post(f"{API}/invoices", json={**GOOD, "metadata": {**deep, **extremes}},
                             headers=auth(merchant))
    assert created.status_code == 201, created.text
    listed = await api.get(f"{API}/invoices", headers=auth(merchant))
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"][0]["metadata"] == {**deep, **extremes}


async def test_a_404_does_not_echo_a_long_id(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    long_id = "inv_" + "x" * 8192
    for url in (f"{API}/invoices/{long_id}", f"{API}/public/invoice/{long_id}",
                f"{API}/invoices/{long_id}/payments"):
        response = await api.get(url, headers=auth(merchant))
        error = error_of(response, 404, "not_found")
        assert len(response.content) < 400, url
        assert "inv_xxxx" in error["message"]
