"""Authentication: `Authorization: Bearer <api key>`; keys stored only as a hash."""

from __future__ import annotations

import hashlib

import httpx
import pytest
import sqlalchemy as sa

from krypton.adapters.db import tables
from krypton.app import merchants
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.web.auth import KeyCache
from krypton.web.principal import Principal
from tests.conftest import auth
from tests.web.helpers import API, error_of, written

PROTECTED = [
    ("POST", "/invoices"),
    ("GET", "/invoices"),
    ("GET", "/invoices/inv_x"),
    ("POST", "/invoices/inv_x/cancel"),
    ("GET", "/invoices/inv_x/payments"),
    ("GET", "/payments/pay_x"),
    ("GET", "/settlements"),
    ("GET", "/settlements/set_x"),
    ("GET", "/balances"),
    ("GET", "/events"),
]


def assert_unauthorized(response: httpx.Response) -> dict[str, str]:
    error = error_of(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    return error


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_private_endpoint_needs_a_key(api: httpx.AsyncClient, method: str,
                                                  path: str) -> None:
    response = await api.request(method, API + path, json={"amount": "1", "currency": "TON"})
    error = assert_unauthorized(response)
    assert "Authorization: Bearer" in error["message"]


@pytest.mark.parametrize("header", [
    "Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token {secret}", "{secret}", "Bearer: {secret}",
])
async def test_malformed_authorization_header_is_401(api: httpx.AsyncClient, merchant: IssuedKey,
                                                     header: str) -> None:
    response = await api.get(f"{API}/invoices",
                             headers={"Authorization": header.format(secret=merchant.secret)})
    error = assert_unauthorized(response)
    assert "Bearer" in error["message"]


async def test_unknown_key_is_401(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    response = await api.get(f"{API}/invoices", headers=auth(merchant.secret + "x"))
    error = assert_unauthorized(response)
    assert "not valid" in error["message"]


async def test_scheme_is_case_insensitive(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    response = await api.get(f"{API}/invoices", headers={"Authorization": f"bearer {merchant.secret}"})
    assert response.status_code == 200, response.text


async def test_revoked_key_is_401_at_once(api: httpx.AsyncClient, container: Container,
                                          merchant: IssuedKey) -> None:
    assert (await api.get(f"{API}/invoices", headers=auth(merchant))).status_code == 200
    await merchants.revoke_api_key(container.deps, merchant.id)
    error = assert_unauthorized(await api.get(f"{API}/invoices", headers=auth(merchant)))
    assert "revoked" in error["message"]


async def test_revoked_key_cannot_write(api: httpx.AsyncClient, container: Container,
                                        merchant: IssuedKey) -> None:
    await merchants.revoke_api_key(container.deps, merchant.id)
    before = await written(container)
    response = await api.post(f"{API}/invoices", json={"amount": "1", "currency": "TON"},
                              headers=auth(merchant))
    assert_unauthorized(response)
    assert await written(container) == before


async def test_other_keys_of_the_merchant_survive_a_revocation(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey) -> None:
    second = await merchants.create_api_key(container.deps, merchant.merchant_id)
    await merchants.revoke_api_key(container.deps, merchant.id)
    assert (await api.get(f"{API}/invoices", headers=auth(second))).status_code == 200


async def test_key_is_stored_only_as_sha256_hash_and_visible_prefix(
        container: Container, merchant: IssuedKey) -> None:
    async with container.db.reader.connect() as conn:
        row = (await conn.execute(sa.select(tables.api_keys).where(
            tables.api_keys.c.id == merchant.id))).one()
    assert row.key_hash == hashlib.sha256(merchant.secret.encode()).hexdigest()
    assert merchant.secret.startswith(row.prefix)
    assert len(row.prefix) < len(merchant.secret) // 2


async def test_secret_appears_nowhere_in_the_database(api: httpx.AsyncClient, container: Container,
                                                      merchant: IssuedKey) -> None:
    # Use the key for a write too, so every table the API touches has rows.
    assert (await api.post(f"{API}/invoices", json={"amount": "1", "currency": "TON"},
                           headers={**auth(merchant), "Idempotency-Key": "k1"})).status_code == 201
    secret_tail = merchant.secret[len(merchant.prefix):]
    seen = 0
    async with container.db.reader.connect() as conn:
        for table in tables.metadata.sorted_tables:
            for row in await conn.execute(sa.select(table)):
                text = repr(tuple(row))
                seen += 1
                assert merchant.secret not in text, table.name
                assert secret_tail not in text, table.name
    assert seen > 0


# The key cache (cachetools' TTLCache): a verified key is reused for `ttl` seconds, no longer.


class FakeTimer:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


PRINCIPAL = Principal("mer_1", "key_1", frozenset({"invoices:read"}))


def test_key_cache_keeps_a_key_for_its_ttl_only() -> None:
    timer = FakeTimer()
    cache = KeyCache(2.0, timer=timer)
    assert cache.get("h") is None
    cache.put("h", PRINCIPAL)
    timer.now += 1.9
    assert cache.get("h") is PRINCIPAL
    timer.now += 0.2
    assert cache.get("h") is None


def test_key_cache_with_ttl_0_caches_nothing() -> None:
    cache = KeyCache(0, timer=FakeTimer())
    cache.put("h", PRINCIPAL)
    assert cache.get("h") is None


def test_key_cache_clear_forgets_every_key() -> None:
    cache = KeyCache(60, timer=FakeTimer())
    cache.put("a", PRINCIPAL)
    cache.put("b", PRINCIPAL)
    cache.clear()
    assert cache.get("a") is None and cache.get("b") is None


def test_key_cache_is_bounded() -> None:
    cache = KeyCache(60, timer=FakeTimer())
    for n in range(KeyCache.MAX_ENTRIES + 5):
        cache.put(f"h{n}", PRINCIPAL)
    kept = [n for n in range(KeyCache.MAX_ENTRIES + 5) if cache.get(f"h{n}") is not None]
    assert len(kept) == KeyCache.MAX_ENTRIES
    assert cache.get(f"h{KeyCache.MAX_ENTRIES + 4}") is PRINCIPAL  # the newest stays


async def test_a_verified_key_is_cached_and_a_rejected_one_is_not(container: Container,
                                                                   merchant: IssuedKey) -> None:
    from krypton.web.app import create_app

    container.settings = container.settings.model_copy(update={"api_key_cache_seconds": 60})
    app = create_app(container, run_workers=False)
    cache: KeyCache = app.state.key_cache
    bad = merchant.secret + "x"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as api:
        assert_unauthorized(await api.get(f"{API}/invoices", headers=auth(bad)))
        assert (await api.get(f"{API}/invoices", headers=auth(merchant))).status_code == 200
    assert cache.get(merchants.hash_key(bad)) is None
    cached = cache.get(merchants.hash_key(merchant.secret))
    assert cached is not None and cached.key_id == merchant.id
