"""Scopes: every endpoint answers 403 insufficient_scope without its scope and works with it; an
endpoint without a scope stops the app from being built."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from krypton.app import merchants
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.domain.errors import DomainError
from krypton.domain.roles import Permission
from krypton.domain.scopes import Scope
from krypton.web import sessions
from krypton.web.api import operator, public, resources, shop
from krypton.web.app import create_app
from krypton.web.auth import api_routes, check_routes, permissions_of, require, scopes_of
from krypton.web.principal import Principal
from tests.conftest import auth
from tests.web.conftest import KeyFactory, Paid
from tests.web.helpers import API, SCOPES, create_invoice, error_of, written


@dataclass(frozen=True)
class Endpoint:
    scope: Scope
    method: str
    path: str  # formatted with the ids of a `Paid` invoice and a pending one
    ok: int = 200


ENDPOINTS = [
    Endpoint(Scope.INVOICES_WRITE, "POST", "/invoices", 201),
    Endpoint(Scope.INVOICES_READ, "GET", "/invoices"),
    Endpoint(Scope.INVOICES_READ, "GET", "/invoices/{invoice_id}"),
    Endpoint(Scope.INVOICES_WRITE, "POST", "/invoices/{pending_id}/cancel"),
    Endpoint(Scope.PAYMENTS_READ, "GET", "/invoices/{invoice_id}/payments"),
    Endpoint(Scope.PAYMENTS_READ, "GET", "/invoices/{invoice_id}/refunds"),
    # 422: the body this test sends is no refund request (it carries `currency`).
    Endpoint(Scope.REFUNDS_WRITE, "POST", "/invoices/{invoice_id}/refund", 422),
    Endpoint(Scope.PAYMENTS_READ, "GET", "/payments/{payment_id}"),
    Endpoint(Scope.PAYMENTS_READ, "GET", "/unmatched-transfers"),
    Endpoint(Scope.SETTLEMENTS_READ, "GET", "/settlements"),
    Endpoint(Scope.SETTLEMENTS_READ, "GET", "/settlements/{settlement_id}"),
    Endpoint(Scope.BALANCES_READ, "GET", "/balances"),
    Endpoint(Scope.EVENTS_READ, "GET", "/events"),
    Endpoint(Scope.WEBHOOKS_WRITE, "GET", "/webhook-endpoints"),
    Endpoint(Scope.BALANCES_READ, "GET", "/stats"),
    Endpoint(Scope.EVENTS_READ, "GET", "/invoices/{invoice_id}/events"),
    Endpoint(Scope.INVOICES_READ, "GET", "/merchant"),
    # 422: the body this test sends is no payout request; a payout missing is 404.
    Endpoint(Scope.PAYOUTS_WRITE, "POST", "/payouts", 422),
    Endpoint(Scope.BALANCES_READ, "GET", "/payouts"),
    Endpoint(Scope.BALANCES_READ, "GET", "/payouts/{payout_id}", 404),
]
# Only a dashboard session whose role has the permission may manage API keys
# (tests/web/test_api_keys_api.py exercises them).
SESSION_ROUTES = {("GET", "/api-keys"): [Permission.APIKEYS_MANAGE],
                  ("POST", "/api-keys"): [Permission.APIKEYS_MANAGE],
                  ("DELETE", "/api-keys/{key_id}"): [Permission.APIKEYS_MANAGE],
                  ("PATCH", "/merchant"): [Permission.SETTINGS_MANAGE],
                  ("POST", "/merchant/telegram/link-code"): [Permission.SETTINGS_MANAGE],
                  # tests/web/test_users_api.py exercises these.
                  ("GET", "/users"): [Permission.USERS_MANAGE],
                  ("POST", "/users"): [Permission.USERS_MANAGE],
                  ("PATCH", "/users/{user_id}"): [Permission.USERS_MANAGE]}
# The other webhook routes take an endpoint's id; tests/web/test_webhooks_api.py exercises them.
WEBHOOK_ROUTES = [
    ("POST", "/webhook-endpoints"), ("GET", "/webhook-endpoints/{endpoint_id}"),
    ("PATCH", "/webhook-endpoints/{endpoint_id}"), ("DELETE", "/webhook-endpoints/{endpoint_id}"),
    ("POST", "/webhook-endpoints/{endpoint_id}/rotate-secret"),
    ("POST", "/webhook-endpoints/{endpoint_id}/test"),
    ("GET", "/webhook-endpoints/{endpoint_id}/deliveries"),
    ("GET", "/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}"),
    ("POST", "/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_endpoint_needs_exactly_its_scope(api: httpx.AsyncClient, container: Container,
                                                merchant: IssuedKey, key_with: KeyFactory,
                                                paid: Paid, endpoint: Endpoint) -> None:
    pending = await create_invoice(api, merchant)
    url = API + endpoint.path.format(invoice_id=paid.invoice_id, pending_id=pending["id"],
                                     payment_id=paid.payment_id, settlement_id=paid.settlement_id,
                                     payout_id="po_missing")
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
    key = await key_with(Scope.INVOICES_WRITE, Scope.INVOICES_READ)
    created = await create_invoice(api, key)
    got = await api.get(f"{API}/invoices/{created['id']}", headers=auth(key))
    assert got.status_code == 200
    error_of(await api.get(f"{API}/balances", headers=auth(key)), 403, "insufficient_scope")


async def test_public_invoice_needs_no_scope(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    created = await create_invoice(api, merchant)
    assert (await api.get(f"{API}/public/invoice/{created['id']}")).status_code == 200


# Every merchant-API route checks a scope; create_app refuses to build an app where one does not.


def _permissions_by_route(app: FastAPI) -> dict[tuple[str, str], list[Permission]]:
    return {(method, (route.path or "").removeprefix(API)): permissions_of(route)
            for route in api_routes(app.routes) for method in route.methods or ()}


def _scopes_by_route(app: FastAPI) -> dict[tuple[str, str], list[Scope]]:
    """(method, path under /api/v1) -> the scopes the route checks, for every API route."""
    found = {}
    for route in api_routes(app.routes):
        path = route.path or ""
        if path.startswith(API):
            for method in route.methods or ():
                found[method, path.removeprefix(API)] = scopes_of(route)
    return found


async def test_every_route_of_the_app_checks_its_scope_or_is_public(container: Container) -> None:
    app = create_app(container, run_workers=False)  # runs the check: it would raise
    keyless = {r.path for router in (public.router, operator.router, sessions.router, shop.router)
               for r in api_routes(router.routes)}
    guarded = {key: scopes for key, scopes in _scopes_by_route(app).items()
               if key[1] not in keyless and key not in SESSION_ROUTES}
    # The table above is the whole merchant API, each route with exactly its one scope.
    assert guarded == {**{(e.method, e.path.replace("{pending_id}", "{invoice_id}")): [e.scope]
                          for e in ENDPOINTS}, **{route: [Scope.WEBHOOKS_WRITE] for route in WEBHOOK_ROUTES}}
    assert keyless == {"/public/invoice/{invoice_id}", "/public/invoice/{invoice_id}/qr/{method}.svg",
                       "/operator/unmatched", "/operator/merchants", "/operator/merchants/{merchant_id}",
                       "/operator/fees", "/operator/health", "/operator/webhook-failures",
                       "/session", "/session/refresh",
                       # The Stars shop's buyers: no key; their own orders need a buyer session.
                       "/shop/limits", "/shop/quote", "/shop/recipients/{username}", "/shop/orders",
                       "/shop/orders/{order_id}", "/shop/me", "/shop/me/orders",
                       "/shop/auth/ton-proof/payload", "/shop/auth/ton-proof", "/shop/auth/telegram",
                       "/shop/auth/logout"}
    # Dashboard-only routes check a permission instead of a scope (never an API key's).
    assert {key: _permissions_by_route(app)[key] for key in SESSION_ROUTES} == SESSION_ROUTES


async def test_an_unguarded_route_stops_create_app(container: Container,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    router = APIRouter()
    router.include_router(resources.router)

    @router.get("/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    monkeypatch.setattr(resources, "router", router)
    with pytest.raises(RuntimeError, match=r"check no API-key scope: GET /api/v1/forgotten "
                                           r"\(tests\.web\.test_scopes\.\S+\.forgotten\)\. Give each"):
        create_app(container, run_workers=False)


async def _guard(who: Principal = Depends(require(Scope.EVENTS_READ))) -> Principal:
    return who


def _checked(*routers: APIRouter, public: tuple[APIRouter, ...] = ()) -> FastAPI:
    app = FastAPI()
    for router in (*routers, *public):
        app.include_router(router, prefix=API)
    check_routes(app, public=public, prefix=API)
    return app


def test_check_routes_finds_a_guard_wherever_it_is_declared() -> None:
    guarded = APIRouter()

    @guarded.get("/parameter")
    async def parameter(who: Principal = Depends(require(Scope.INVOICES_READ))) -> None: ...

    @guarded.get("/route", dependencies=[Depends(require(Scope.BALANCES_READ))])
    async def route() -> None: ...

    @guarded.get("/nested")
    async def nested(who: Principal = Depends(_guard)) -> None: ...

    on_router = APIRouter(dependencies=[Depends(require(Scope.PAYMENTS_READ, tier="create"))])

    @on_router.get("/router")
    async def router_wide() -> None: ...

    app = _checked(guarded, on_router)
    assert _scopes_by_route(app) == {
        ("GET", "/parameter"): [Scope.INVOICES_READ], ("GET", "/route"): [Scope.BALANCES_READ],
        ("GET", "/nested"): [Scope.EVENTS_READ], ("GET", "/router"): [Scope.PAYMENTS_READ]}


def test_check_routes_names_every_unguarded_route_and_spares_the_public_ones() -> None:
    merchant_api, keyless = APIRouter(), APIRouter()

    @merchant_api.get("/fine")
    async def fine(who: Principal = Depends(require(Scope.INVOICES_READ))) -> None: ...

    @merchant_api.api_route("/open", methods=["POST", "PUT"])
    async def open_() -> None: ...

    @merchant_api.get("/also-open", dependencies=[Depends(_unrelated)])
    async def also_open() -> None: ...

    @keyless.get("/public")
    async def public_page() -> None: ...

    with pytest.raises(RuntimeError) as raised:
        _checked(merchant_api, public=(keyless,))
    message = str(raised.value)
    assert "POST, PUT /api/v1/open (" in message and "GET /api/v1/also-open (" in message
    assert "/fine" not in message and "/public" not in message
    assert "require(Scope" in message

    _checked(keyless, public=(keyless,))  # alone, the public router passes
    outside = APIRouter()

    @outside.get("/livez")
    async def livez() -> None: ...

    app = FastAPI()
    app.include_router(outside)  # not under the API prefix: not the merchant API
    check_routes(app, public=(), prefix=API)


async def _unrelated() -> None: ...


def test_require_marks_the_dependency_with_its_scope() -> None:
    guard = require(Scope.SETTLEMENTS_READ, tier="create")
    assert guard.scope is Scope.SETTLEMENTS_READ
    assert guard.__name__ == "require_settlements_read"  # type: ignore[attr-defined]


# Scopes are the Scope enum; keys store their plain strings.


def test_the_scopes_are_the_enum_in_its_order() -> None:
    assert merchants.SCOPES == ("invoices:read", "invoices:write", "payments:read", "settlements:read",
                                "balances:read", "events:read", "webhooks:write", "refunds:write",
                                "payouts:write")
    assert tuple(Scope) == merchants.SCOPES and all(type(s) is str for s in merchants.SCOPES)


@pytest.mark.parametrize("given", [["nope"], [], ["invoices:read", "invoices:reed"]])
def test_unknown_or_no_scopes_are_refused_with_the_choice(given: list[str]) -> None:
    with pytest.raises(DomainError) as raised:
        merchants.validate_scopes(given)
    unknown = [s for s in given if s != "invoices:read"]
    assert str(raised.value) == (f"Unknown or missing scopes {unknown}; choose from invoices:read, "
                                 "invoices:write, payments:read, settlements:read, balances:read, "
                                 "events:read, webhooks:write, refunds:write, payouts:write.")
    assert raised.value.field == "scopes"


async def test_a_key_stores_its_scopes_as_plain_strings(container: Container,
                                                        merchant: IssuedKey) -> None:
    key = await merchants.create_api_key(container.deps, merchant.merchant_id,
                                         [Scope.EVENTS_READ, "invoices:read", Scope.EVENTS_READ])
    assert key.scopes == ("events:read", "invoices:read")
    assert all(type(s) is str for s in key.scopes)
    async with container.deps.uow(write=False) as uow:
        record = await uow.api_keys.get(key.id)
    assert record is not None and record.scopes == ("events:read", "invoices:read")
    assert merchants.validate_scopes(None) == merchants.SCOPES
