"""API-key authentication and scopes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from krypton.app.deps import Deps
from krypton.app.merchants import hash_key
from krypton.domain.merchant import Merchant
from krypton.web.errors import ApiError


@dataclass(frozen=True, slots=True)
class Principal:
    merchant_id: str
    key_id: str
    scopes: frozenset[str]
    # The merchant's settings, cached with the key (same lifetime): saves a query per invoice.
    merchant: Merchant | None = None


class KeyCache:
    """Verified keys, cached briefly so a request costs no extra query; misses are not cached."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key_hash: str) -> Principal | None:
        hit = self._entries.get(key_hash)
        if hit is None or hit[0] < time.monotonic():
            self._entries.pop(key_hash, None)
            return None
        return hit[1]

    def put(self, key_hash: str, principal: Principal) -> None:
        if self.ttl > 0:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key_hash] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        self._entries.clear()


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
    key_hash = hash_key(secret.strip())
    cache: KeyCache = request.app.state.key_cache
    principal = cache.get(key_hash)
    if principal is None:
        deps: Deps = request.app.state.deps
        async with deps.uow(write=False) as uow:
            record = await uow.api_keys.by_hash(key_hash)
            merchant = await uow.merchants.get(record.merchant_id) if record else None
        if record is None or record.revoked_at is not None:
            raise _unauthorized("This API key is not valid or has been revoked.")
        principal = Principal(record.merchant_id, record.id, frozenset(record.scopes), merchant)
        cache.put(key_hash, principal)
    request.state.principal = principal
    return principal


def require(scope: str, tier: str = "reads") -> Callable[[Request], Awaitable[Principal]]:
    """Authenticate, check the scope, and count the request against the key's `tier` limit."""
    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if scope not in principal.scopes:
            raise ApiError(403, "insufficient_scope",
                           f"This API key lacks the '{scope}' scope; create a key that has it.")
        await request.app.state.limiter.check_key(principal.key_id, tier)
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency
