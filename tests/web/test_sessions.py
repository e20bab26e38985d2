"""/api/v1/session: sign-in cookies, CSRF double submit, refresh rotation, sign-out, lockout
and rate limits, over a small app holding the session router (create_app includes it later);
on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request

from krypton.adapters.auth.passwords import Argon2Hasher
from krypton.adapters.auth.tokens import JwtTokens
from krypton.app import merchants, users
from krypton.bootstrap import Container
from krypton.domain.roles import Role, grants_of
from krypton.domain.scopes import Scope
from krypton.web import auth, errors, sessions
from krypton.web.principal import Principal
from krypton.web.ratelimit import Limiter
from krypton.web.request_body import GuardedBody
from krypton.web.sessions import CSRF_COOKIE, REFRESH_COOKIE, SESSION_COOKIE, SignInLimits
from tests.support.clock import ManualClock
from tests.web.helpers import API, error_of

PASSWORD = "correct horse battery"
KEY = "a-test-session-signing-key-of-48-bytes-or-so!!!"
FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
ROOMY = SignInLimits(per_ip="1000/hour", per_email="1000/hour")
SESSION = f"{API}/session"


# A merchant-API stand-in: what `authenticate_session` makes of the request.
probe = APIRouter()


@probe.api_route("/probe", methods=["GET", "POST"])
async def probe_route(request: Request) -> dict[str, Any]:
    principal = await sessions.authenticate_session(request)
    if principal is None:
        return {"principal": None}
    return {"merchant_id": principal.merchant_id, "key_id": principal.key_id,
            "scopes": sorted(principal.scopes)}


def session_app(container: Container, limits: SignInLimits = ROOMY) -> FastAPI:
    """The app state create_app sets, plus what the session router needs."""
    app = FastAPI()
    app.state.settings = container.settings
    app.state.deps = container.deps
    app.state.key_cache = auth.KeyCache(0)
    app.state.limiter = Limiter(container.settings)
    app.state.session_tokens = JwtTokens(KEY, container.deps.clock.now)
    app.state.password_hasher = Argon2Hasher(**FAST)
    app.state.signin_limits = limits
    errors.install(app)
    app.include_router(sessions.router, prefix=API)
    app.include_router(probe, prefix=API)
    # As create_app will: the session paths read a body without an API key.
    app.add_middleware(GuardedBody, max_bytes=65536, keyed_prefix=f"{API}/",
                       keyless_prefixes=(SESSION,))
    return app


@asynccontextmanager
async def client(container: Container, limits: SignInLimits = ROOMY, *, ip: str = "10.0.0.1",
                 base: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    app = session_app(container, limits)
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=base) as c:
            yield c
    finally:
        await app.state.limiter.close()


@pytest.fixture
async def api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with client(container) as c:
        yield c


@pytest.fixture
async def shop(container: Container) -> str:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    return merchant.id


@pytest.fixture
async def ada(container: Container, shop: str) -> users.User:
    return await users.create_user(container.deps, Argon2Hasher(**FAST), "ada@example.com", PASSWORD,
                                   Role.DEVELOPER, shop)


async def sign_in(api: httpx.AsyncClient, email: str = "ada@example.com",
                  password: str = PASSWORD) -> httpx.Response:
    return await api.post(SESSION, json={"email": email, "password": password})


def set_cookie(response: httpx.Response, name: str) -> list[str]:
    """The attributes of `name`'s Set-Cookie, lower-cased, value first."""
    (line,) = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}=")]
    return [part.strip().lower() if i else part.strip() for i, part in enumerate(line.split(";"))]


def csrf(api: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": api.cookies[CSRF_COOKIE]}


def raw(**cookies: str) -> dict[str, str]:
    """Headers sending exactly these cookies (from a client with an empty jar)."""
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


# --- Signing in ----------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_sign_in_sets_three_strict_cookies_and_answers_the_user(
        container: Container, ada: users.User, shop: str, scheme: str) -> None:
    async with client(container, base=f"{scheme}://testserver") as api:
        response = await sign_in(api)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"] == {"id": ada.id, "email": "ada@example.com", "role": "developer",
                            "merchant_id": shop, "scopes": sorted(grants_of(Role.DEVELOPER))}
    assert body["access_expires_at"] == "2026-11-24T12:10:00+00:00"
    assert body["expires_at"] == "2026-11-25T00:00:00+00:00"
    secure = ["secure"] if scheme == "https" else []
    access, refresh, token = (set_cookie(response, n) for n in (SESSION_COOKIE, REFRESH_COOKIE,
                                                                  CSRF_COOKIE))
    assert sorted(access[1:]) == sorted(["httponly", "max-age=600", "path=/", "samesite=strict",
                                         *secure])
    assert sorted(refresh[1:]) == sorted(["httponly", "max-age=43200", "path=/api/v1/session",
                                          "samesite=strict", *secure])
    assert sorted(token[1:]) == sorted(["max-age=43200", "path=/", "samesite=strict", *secure])
    assert token[0] == f"{CSRF_COOKIE}={body['csrf_token']}"
    assert PASSWORD not in response.text and "argon2" not in response.text


async def test_an_unknown_email_and_a_wrong_password_get_the_same_answer(
        api: httpx.AsyncClient, ada: users.User) -> None:
    unknown = await sign_in(api, email="eve@example.com")
    wrong = await sign_in(api, password="wrong password!")
    assert unknown.json() == wrong.json()
    error = error_of(wrong, 401, "invalid_credentials")
    assert error["message"] == "The email or password is wrong; check both and try again."
    assert "set-cookie" not in wrong.headers


async def test_a_malformed_body_is_a_422_with_a_sentence(api: httpx.AsyncClient) -> None:
    error_of(await api.post(SESSION, json={"email": "ada@example.com"}), 422, "invalid_request")
    error_of(await api.post(SESSION, json={"email": "a@b.co", "password": "x", "totp": 1}), 422,
             "invalid_request")
    long = await api.post(SESSION, json={"email": "a@b.co", "password": "x" * 1001})
    assert error_of(long, 422, "invalid_request")["field"] == "password"


async def test_five_failures_lock_the_account_and_an_unknown_email_alike(
        container: Container, api: httpx.AsyncClient, ada: users.User) -> None:
    for email in ("ada@example.com", "eve@example.com"):
        for _ in range(5):
            error_of(await sign_in(api, email=email, password="wrong password!"), 401,
                     "invalid_credentials")
        locked = await sign_in(api, email=email)  # the right password, for ada
        error = error_of(locked, 423, "account_locked")
        assert error["message"] == ("Too many failed sign-ins for this account; try again in 15 "
                                    "minutes.")
        assert 1 <= int(locked.headers["Retry-After"]) <= 900


async def test_a_success_starts_the_failure_count_over(api: httpx.AsyncClient,
                                                       ada: users.User) -> None:
    for _ in range(2):
        for _ in range(4):
            error_of(await sign_in(api, password="wrong password!"), 401, "invalid_credentials")
        assert (await sign_in(api)).status_code == 200


async def test_sign_in_is_rate_limited_per_client_ip_and_per_email(
        container: Container, ada: users.User) -> None:
    async with client(container, SignInLimits(per_ip="2/hour", per_email="1000/hour")) as api:
        assert [(await sign_in(api)).status_code for _ in range(2)] == [200, 200]
        limited = await sign_in(api)
        error = error_of(limited, 429, "rate_limited")
        assert error["message"].startswith("Too many sign-in attempts (2 per 1 hour); retry after ")
        assert limited.headers["Retry-After"].isdigit()
    app = session_app(container, SignInLimits(per_ip="1000/hour", per_email="2/hour"))
    first, second = (httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)),
                                       base_url="http://testserver") for ip in ("10.0.0.1", "10.0.0.2"))
    async with first, second:
        for _ in range(2):
            await sign_in(first, email="ADA@example.com")
        error_of(await sign_in(second), 429, "rate_limited")  # the same email, from anywhere
        assert (await sign_in(second, email="eve@example.com")).status_code == 401  # another email
    await app.state.limiter.close()


# --- Using the session ---------------------------------------------------------------------


async def test_the_session_cookie_authenticates_with_the_roles_scopes(
        api: httpx.AsyncClient, ada: users.User, shop: str) -> None:
    assert (await api.get(f"{API}/probe")).json() == {"principal": None}
    await sign_in(api)
    assert (await api.get(f"{API}/probe")).json() == {
        "merchant_id": shop, "key_id": f"usr:{ada.id}", "scopes": sorted(grants_of(Role.DEVELOPER))}
    me = await api.get(SESSION)
    assert me.status_code == 200 and me.json()["user"]["id"] == ada.id


async def test_unsafe_requests_need_the_csrf_header_of_this_session(
        api: httpx.AsyncClient, ada: users.User) -> None:
    await sign_in(api)
    error = error_of(await api.post(f"{API}/probe"), 403, "csrf_failed")
    assert error["message"] == ("This request needs the X-CSRF-Token header set to the krypton_csrf "
                                "cookie's value; send it, or sign in again if the cookie is gone.")
    error_of(await api.post(f"{API}/probe", headers={"X-CSRF-Token": "guess"}), 403, "csrf_failed")
    assert (await api.post(f"{API}/probe", headers=csrf(api))).status_code == 200
    # A pair planted by someone else (cookie tossing) matches itself, not the session.
    planted = {**raw(**{SESSION_COOKIE: api.cookies[SESSION_COOKIE], CSRF_COOKIE: "planted"}),
               "X-CSRF-Token": "planted"}
    async with client_like(api) as stranger:
        error_of(await stranger.post(f"{API}/probe", headers=planted), 403, "csrf_failed")
        assert (await stranger.get(f"{API}/probe", headers=planted)).status_code == 200  # reads need none


@asynccontextmanager
async def client_like(api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """Another client of the same app, with an empty cookie jar."""
    async with httpx.AsyncClient(transport=api._transport, base_url=api.base_url) as other:
        yield other


async def test_a_tampered_or_expired_session_cookie_is_a_401_saying_to_refresh(
        api: httpx.AsyncClient, ada: users.User, clock: ManualClock) -> None:
    await sign_in(api)
    async with client_like(api) as other:
        tampered = raw(**{SESSION_COOKIE: api.cookies[SESSION_COOKIE] + "x"})
        error_of(await other.get(f"{API}/probe", headers=tampered), 401, "session_expired")
    clock.advance(minutes=10)
    error = error_of(await api.get(f"{API}/probe"), 401, "session_expired")
    assert "refresh it (POST /api/v1/session/refresh) or sign in again" in error["message"]


async def test_an_operator_session_cannot_use_the_merchant_api(
        container: Container, api: httpx.AsyncClient) -> None:
    await users.create_user(container.deps, Argon2Hasher(**FAST), "root@example.com", PASSWORD,
                            Role.OPERATOR, None)
    signed = await sign_in(api, email="root@example.com")
    assert signed.json()["user"]["scopes"] == ["merchants:manage", "platform:read"]
    error_of(await api.get(f"{API}/probe"), 403, "operator_session")
    assert (await api.get(SESSION)).json()["user"]["role"] == "operator"


async def proposed_authenticate(request: Request) -> Principal:
    """web/auth.authenticate with the change proposed for it: a session cookie stands in for a
    key when no Authorization header is sent. Temporary, until web/auth.py has it."""
    if getattr(request.state, "principal", None) is None and not request.headers.get("authorization"):
        principal = await sessions.authenticate_session(request)
        if principal is not None:
            request.state.principal = principal
    return await original_authenticate(request)


original_authenticate = auth.authenticate


@pytest.mark.parametrize(("role", "status"), [(Role.VIEWER, 403), (Role.DEVELOPER, 200)])
async def test_a_session_passes_the_merchant_apis_scope_checks_by_its_role(
        container: Container, shop: str, monkeypatch: pytest.MonkeyPatch, role: Role,
        status: int) -> None:
    monkeypatch.setattr(auth, "authenticate", proposed_authenticate)
    app = session_app(container)
    guarded = APIRouter()

    @guarded.post("/guarded")
    async def write(who: Annotated[Principal, Depends(auth.require(Scope.INVOICES_WRITE))]
                    ) -> dict[str, str]:
        return {"key_id": who.key_id}
    app.include_router(guarded, prefix=API)
    await users.create_user(container.deps, Argon2Hasher(**FAST), "ada@example.com", PASSWORD,
                            role, shop)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as api:
        await sign_in(api)
        response = await api.post(f"{API}/guarded", json={}, headers=csrf(api))
        assert response.status_code == status, response.text
        if status == 403:
            assert error_of(response, 403, "insufficient_scope")
        error_of(await api.post(f"{API}/guarded", json={}), 403, "csrf_failed")
    await app.state.limiter.close()


# --- Refresh and sign-out ------------------------------------------------------------------


async def test_refresh_rotates_every_cookie_and_revives_an_expired_access(
        api: httpx.AsyncClient, ada: users.User, clock: ManualClock) -> None:
    first = (await sign_in(api)).json()
    old_refresh = api.cookies[REFRESH_COOKIE]
    clock.advance(minutes=11)
    error_of(await api.post(f"{SESSION}/refresh"), 403, "csrf_failed")
    renewed = await api.post(f"{SESSION}/refresh", headers=csrf(api))
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["csrf_token"] != first["csrf_token"]
    assert renewed.json()["access_expires_at"] == "2026-11-24T12:21:00+00:00"
    assert renewed.json()["expires_at"] == first["expires_at"]
    assert api.cookies[REFRESH_COOKIE] != old_refresh
    assert (await api.post(f"{API}/probe", headers=csrf(api))).status_code == 200


async def test_a_refresh_token_replayed_ends_the_session_for_everyone(
        api: httpx.AsyncClient, ada: users.User) -> None:
    await sign_in(api)
    stolen = api.cookies[REFRESH_COOKIE]
    assert (await api.post(f"{SESSION}/refresh", headers=csrf(api))).status_code == 200
    async with client_like(api) as thief:
        replay = await thief.post(f"{SESSION}/refresh", headers={
            **raw(**{REFRESH_COOKIE: stolen, CSRF_COOKIE: "t"}), "X-CSRF-Token": "t"})
    error = error_of(replay, 401, "session_ended")
    assert error["message"] == "Your session has ended or is not valid; sign in again."
    assert set_cookie(replay, REFRESH_COOKIE)[0] == f'{REFRESH_COOKIE}=""'  # cleared
    error_of(await api.post(f"{SESSION}/refresh", headers=csrf(api)), 401, "session_ended")


async def test_refresh_without_a_refresh_cookie_ends_nothing_but_says_sign_in(
        api: httpx.AsyncClient) -> None:
    response = await api.post(f"{SESSION}/refresh", headers={**raw(**{CSRF_COOKIE: "t"}),
                                                              "X-CSRF-Token": "t"})
    error_of(response, 401, "session_ended")


async def test_sign_out_revokes_the_session_and_clears_its_cookies(
        api: httpx.AsyncClient, ada: users.User) -> None:
    await sign_in(api)
    refresh_token = api.cookies[REFRESH_COOKIE]
    error_of(await api.delete(SESSION), 403, "csrf_failed")
    out = await api.delete(SESSION, headers=csrf(api))
    assert out.status_code == 204
    for name in (SESSION_COOKIE, REFRESH_COOKIE, CSRF_COOKIE):
        assert "max-age=0" in set_cookie(out, name)
    assert not api.cookies
    error_of(await api.get(SESSION), 401, "unauthorized")
    async with client_like(api) as other:
        replay = await other.post(f"{SESSION}/refresh", headers={
            **raw(**{REFRESH_COOKIE: refresh_token, CSRF_COOKIE: "t"}), "X-CSRF-Token": "t"})
    error_of(replay, 401, "session_ended")
    assert (await api.delete(SESSION)).status_code == 204  # signed out already: still fine


async def test_who_am_i_ends_the_session_of_a_disabled_user(
        container: Container, api: httpx.AsyncClient, ada: users.User) -> None:
    from krypton.adapters.db.users import users as users_table

    await sign_in(api)
    async with container.db.writer.connect() as conn:
        await conn.execute(users_table.update().values(disabled_at=container.deps.clock.now()))
        await conn.commit()
    error_of(await api.get(SESSION), 401, "session_ended")


async def test_the_real_app_takes_a_session_in_place_of_an_api_key(container: Container) -> None:
    """create_app wires the session router and the cookie into the merchant API."""
    from krypton.web.app import create_app

    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    await users.create_user(container.deps, container.password_hasher, "dev@shop.example", PASSWORD,
                            Role.DEVELOPER, merchant.id)
    app = create_app(container, run_workers=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as api:
        signed = await api.post(SESSION, json={"email": "dev@shop.example", "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        csrf = signed.json()["csrf_token"]
        body = {"amount": "1", "currency": "TON"}
        error_of(await api.post(f"{API}/invoices", json=body), 403, "csrf_failed")
        made = await api.post(f"{API}/invoices", json=body, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201, made.text
        listed = await api.get(f"{API}/invoices")
        assert [i["id"] for i in listed.json()["data"]] == [made.json()["id"]]
        error_of(await api.get(f"{API}/balances", headers={"Authorization": "Bearer nope"}), 401,
                 "unauthorized")  # a key given is judged as a key, whatever the cookie
