"""API-key authentication and scopes; dashboard-only permissions for sessions."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, cast

from cachetools import TTLCache
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter, RouteContext, iter_route_contexts
from starlette.routing import BaseRoute

from krypton.app.deps import Deps
from krypton.app.merchants import hash_key
from krypton.domain.roles import Permission
from krypton.domain.scopes import Scope
from krypton.domain.users import UserPrincipal
from krypton.web import sessions
from krypton.web.errors import ApiError
from krypton.web.principal import Principal


class KeyCache:
    """Verified keys, cached briefly so a request costs no extra query; misses are not cached.
    A `ttl` of 0 caches nothing; past `MAX_ENTRIES` the least recently used key goes first."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float, timer: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._entries: TTLCache[str, Principal] = TTLCache(maxsize=self.MAX_ENTRIES, ttl=max(ttl, 0),
                                                          timer=timer)

    def get(self, key_hash: str) -> Principal | None:
        try:
            return self._entries[key_hash]  # an expired entry is a KeyError too
        except KeyError:
            return None

    def put(self, key_hash: str, principal: Principal) -> None:
        if self.ttl > 0:
            self._entries[key_hash] = principal

    def clear(self) -> None:
        self._entries.clear()


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> Principal:
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:  # checked already, before the body was read (web/request_body.py)
        return known
    header = request.headers.get("authorization", "")
    if not header:  # a dashboard session (cookie, CSRF-checked) stands in for a key
        from_session = await sessions.authenticate_session(request)
        if from_session is not None:
            request.state.principal = from_session
            return from_session
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


class Guard(Protocol):
    """A route dependency made by `require`, marked with the scope it checks (`check_routes`)."""

    scope: Scope

    def __call__(self, request: Request) -> Awaitable[Principal]: ...


def require(scope: Scope, tier: str = "reads") -> Guard:
    """Authenticate, check the scope, and count the request against the key's `tier` limit."""
    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if scope not in principal.scopes:
            raise ApiError(403, "insufficient_scope",
                           f"This API key lacks the '{scope}' scope; create a key that has it.")
        await request.app.state.limiter.check_key(principal.key_id, tier)
        return principal

    dependency.__name__ = f"require_{scope.value.replace(':', '_')}"
    guard = cast(Guard, dependency)
    guard.scope = scope
    return guard


class PermissionGuard(Protocol):
    """A route dependency made by `require_permission`, marked with the permission it checks."""

    permission: Permission

    def __call__(self, request: Request) -> Awaitable[UserPrincipal]: ...


async def session_with(request: Request, permission: Permission) -> UserPrincipal:
    """The signed-in user of the session cookie if their role grants `permission`. Anything in
    an Authorization header is refused: permissions are what API keys must never hold (a key
    that could mint keys would outlive its own revocation)."""
    if request.headers.get("authorization"):
        raise ApiError(403, "session_required", f"This needs a signed-in dashboard user with the "
                       f"'{permission}' permission; an API key or token cannot do it, so send the "
                       "session cookie instead of an Authorization header.")
    user = await sessions.current_user(request)
    if user is None:
        raise _unauthorized(f"Sign in to the dashboard first: this needs a session whose role has "
                            f"the '{permission}' permission.")
    if permission not in user.grants:
        raise ApiError(403, "insufficient_permission", f"Your role ({user.role}) lacks the "
                       f"'{permission}' permission; ask an owner of the account to do it.")
    return user


def require_permission(permission: Permission, tier: str = "reads") -> PermissionGuard:
    """Only a dashboard session whose role grants `permission` passes (never an API key);
    counts the request against the user's `tier` limit."""
    async def dependency(request: Request) -> UserPrincipal:
        user = await session_with(request, permission)
        await request.app.state.limiter.check_key(f"usr:{user.user_id}", tier)
        return user

    dependency.__name__ = f"require_{permission.value.replace(':', '_')}"
    guard = cast(PermissionGuard, dependency)
    guard.permission = permission
    return guard


def api_routes(routes: Sequence[BaseRoute]) -> Iterator[RouteContext]:
    """The path operations among `routes` (`app.routes`), included routers' ones with their
    full path and dependencies (FastAPI keeps an included router as one entry of `routes`)."""
    for context in iter_route_contexts(routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _marks(route: RouteContext, attribute: str) -> Iterator[Any]:
    """The `attribute` marks of the guards among a route's dependencies, however deep."""
    def walk(dependant: Dependant) -> Iterator[Any]:
        for dependency in dependant.dependencies:
            mark: Any = getattr(dependency.call, attribute, None)
            if mark is not None:
                yield mark
            yield from walk(dependency)
    return walk(route.dependant)


def scopes_of(route: RouteContext) -> list[Scope]:
    """The scopes the `require` guards among a route's dependencies check, however deep."""
    return [mark for mark in _marks(route, "scope") if isinstance(mark, Scope)]


def permissions_of(route: RouteContext) -> list[Permission]:
    """The dashboard permissions the `require_permission` guards (or another dependency
    marked with `permission`) among a route's dependencies check."""
    return [mark for mark in _marks(route, "permission") if isinstance(mark, Permission)]


def check_routes(app: FastAPI, *, public: Iterable[APIRouter], prefix: str = "/api/v1") -> None:
    """Refuse to start with an API route that checks no API-key scope.

    Every route under `prefix` must depend on a `require(...)` guard (as a parameter, in the
    route's or its router's `dependencies`, or inside another dependency), or, for what only a
    dashboard session may do, on a `require_permission(...)` guard, unless it comes
    from one of the `public` routers, which the caller names as reachable without a merchant
    key (open to payers, or guarded otherwise). Runs once, when the app is built: routes carry
    no extra dependency, so a request costs nothing more.
    """
    exempt = {id(route.original_route) for router in public for route in api_routes(router.routes)}
    unguarded = [
        f"{', '.join(sorted(route.methods or ()))} {route.path} "
        f"({getattr(route.endpoint, '__module__', '?')}.{getattr(route.endpoint, '__qualname__', '?')})"
        for route in api_routes(app.routes)
        if (route.path or "").startswith(prefix) and id(route.original_route) not in exempt
        and not scopes_of(route) and not permissions_of(route)]
    if unguarded:
        raise RuntimeError(
            f"These API routes check no API-key scope: {'; '.join(unguarded)}. Give each a "
            "`Depends(require(Scope....))` parameter (or `require_permission(Permission....)` for "
            "what only a dashboard session may do), or, if it must be reachable without a "
            "merchant key, put it on a router that create_app names as public.")
