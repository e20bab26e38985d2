"""/api/v1/session: dashboard sign-in, refresh, sign-out and who-am-I, with cookies.

Three cookies, all SameSite=Strict (Secure over https): `krypton_session` (the access JWT,
HttpOnly, 10 minutes), `krypton_refresh` (the refresh token, HttpOnly, sent only to this
router's paths) and `krypton_csrf` (readable by the dashboard's script, which echoes it in
`X-CSRF-Token` on every unsafe request: double submit, and the access token carries the
token's hash, so a cookie planted by a sibling site does not pass either).

Keyless: web/app.py names this router as exempt from the API-key scope check. It needs on
`app.state`: `deps`, `limiter`, `session_tokens` (a `Tokens`) and `password_hasher` (a
`PasswordHasher`); `signin_limits` (`SignInLimits`) optionally."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from limits import RateLimitItem, parse
from pydantic import BaseModel, ConfigDict, Field

from krypton.app import users
from krypton.app.ports import Tokens
from krypton.domain.roles import grants_of
from krypton.domain.users import (
    FAILURE_LIMIT,
    FAILURE_WINDOW,
    MAX_EMAIL_LENGTH,
    MAX_PASSWORD_LENGTH,
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    SessionEnded,
    User,
    UserPrincipal,
)
from krypton.web.api.common import deps_of, json
from krypton.web.errors import ApiError, error_response
from krypton.web.principal import Principal

router = APIRouter(prefix="/session", tags=["session"])

SESSION_COOKIE = "krypton_session"
REFRESH_COOKIE = "krypton_refresh"
CSRF_COOKIE = "krypton_csrf"
CSRF_HEADER = "X-CSRF-Token"
# Where the router is mounted (web/app.py's API prefix + ours): the refresh cookie goes there only.
REFRESH_PATH = "/api/v1/session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class SignInLimits:
    """Sign-in attempts per client IP and per email (any outcome), and failures per email.

    The failure limit matches the account lockout (domain/users.py) and applies to every
    email, existing or not: an unknown email is "locked" after as many failures as a real
    one, so the lockout does not tell which emails have accounts."""

    per_ip: str = "20/minute"
    per_email: str = "10/10minutes"
    failures_per_email: str = f"{FAILURE_LIMIT}/{int(FAILURE_WINDOW.total_seconds() // 60)}minutes"


class SignInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=MAX_EMAIL_LENGTH + 20, description="The user's email address.")
    password: str = Field(max_length=MAX_PASSWORD_LENGTH, description="The user's password.")


class UserOut(BaseModel):
    id: str = Field(description="The user's id (usr_…).")
    email: str = Field(description="The email the user signs in with (lower-cased).")
    role: str = Field(description="owner, developer, viewer or operator.")
    merchant_id: str | None = Field(description="None for the operator.")
    scopes: list[str] = Field(description="API scopes and dashboard permissions the role grants.")


class SessionOut(BaseModel):
    user: UserOut = Field(description="The signed-in user.")
    csrf_token: str = Field(description=f"Send it as {CSRF_HEADER} on POST, PUT, PATCH and DELETE.")
    access_expires_at: datetime = Field(description="Refresh before this (POST /session/refresh).")
    expires_at: datetime = Field(description="The session's end: sign in again after it.")


class WhoAmIOut(BaseModel):
    user: UserOut = Field(description="The signed-in user.")
    access_expires_at: datetime = Field(description="When the session cookie's access token ends.")


# --- Authentication of other routes --------------------------------------------------------


def _tokens(request: Request) -> Tokens:
    return request.app.state.session_tokens  # type: ignore[no-any-return]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _csrf_failed() -> ApiError:
    return ApiError(403, "csrf_failed", f"This request needs the {CSRF_HEADER} header set to the "
                    f"{CSRF_COOKIE} cookie's value; send it, or sign in again if the cookie is gone.")


def _check_csrf(request: Request, principal: UserPrincipal | None) -> None:
    """Header equals cookie; and, when an access token is at hand, it is the token's own."""
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not header or not _same(header, cookie):
        raise _csrf_failed()
    if principal is not None and not _same(_sha256(header), principal.csrf_hash):
        raise _csrf_failed()


def session_user(request: Request) -> UserPrincipal | None:
    """The signed-in user of the session cookie; None without one. An invalid or expired
    cookie is a 401, an unsafe method without the CSRF header a 403."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    principal = users.authenticate_access(_tokens(request), token)
    if principal is None:
        raise ApiError(401, "session_expired", "The session cookie has expired or is not valid; "
                       f"refresh it (POST {REFRESH_PATH}/refresh) or sign in again.")
    if request.method in UNSAFE_METHODS:
        _check_csrf(request, principal)
    return principal


async def current_user(request: Request) -> UserPrincipal | None:
    """`session_user`, checked against the database: a revoked session or a disabled user is
    a 401 at once (not when the access token expires), and the role is the user's current one."""
    principal = session_user(request)
    if principal is None:
        return None
    current = await users.still_signed_in(deps_of(request), principal)
    if current is None:
        raise ApiError(401, "session_ended", "This session has ended (signed out, or the user was "
                       "disabled); sign in again.")
    return current


async def authenticate_session(request: Request) -> Principal | None:
    """The merchant-API principal of the session cookie (its role's scopes), or None without
    a cookie. For `web/auth.authenticate`, when no Authorization header is sent."""
    principal = await current_user(request)
    if principal is None:
        return None
    if principal.merchant_id is None:
        raise ApiError(403, "operator_session", "An operator session acts for no merchant and "
                       "cannot use the merchant API; sign in as a merchant's user.")
    return Principal(principal.merchant_id, f"usr:{principal.user_id}", principal.grants)


# --- Rate limits ---------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _item(text: str) -> RateLimitItem:
    return parse(text)


def _retry_after(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))


async def _limit(request: Request, email_id: str) -> SignInLimits:
    limiter = request.app.state.limiter
    chosen: SignInLimits = getattr(request.app.state, "signin_limits", SignInLimits())
    await limiter.check_global()
    ip = request.client.host if request.client else "unknown"
    for item, ids in ((_item(chosen.per_ip), ("signin-ip", ip)),
                      (_item(chosen.per_email), ("signin-email", email_id))):
        if not await limiter.strategy.hit(item, *ids):
            stats = await limiter.strategy.get_window_stats(item, *ids)
            retry = _retry_after(stats.reset_time)
            raise ApiError(429, "rate_limited", f"Too many sign-in attempts ({item}); retry after "
                           f"{retry} seconds.", headers={"Retry-After": str(retry)})
    failures = _item(chosen.failures_per_email)
    if not await limiter.strategy.test(failures, "signin-failures", email_id):
        stats = await limiter.strategy.get_window_stats(failures, "signin-failures", email_id)
        raise _locked(AccountLocked(_retry_after(stats.reset_time)))
    return chosen


def _locked(exc: AccountLocked) -> ApiError:
    return ApiError(423, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after)})


# --- Cookies and bodies --------------------------------------------------------------------


def _user_body(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "role": user.role.value,
            "merchant_id": user.merchant_id, "scopes": sorted(grants_of(user.role))}


def _session_response(request: Request, session: users.Session, now: datetime) -> JSONResponse:
    response = json({"user": _user_body(session.user), "csrf_token": session.csrf_token,
                     "access_expires_at": session.principal.expires_at.isoformat(),
                     "expires_at": session.expires_at.isoformat()})
    secure = request.url.scheme == "https"
    access_age = max(0, int((session.principal.expires_at - now).total_seconds()))
    session_age = max(0, int((session.expires_at - now).total_seconds()))
    for name, value, age, path, httponly in (
            (SESSION_COOKIE, session.access_jwt, access_age, "/", True),
            (REFRESH_COOKIE, session.refresh_token, session_age, REFRESH_PATH, True),
            # Readable by the dashboard's script: it echoes the value in the header.
            (CSRF_COOKIE, session.csrf_token, session_age, "/", False)):
        response.set_cookie(name, value, max_age=age, path=path, secure=secure,
                            httponly=httponly, samesite="strict")
    return response


def _cleared(response: Response) -> Response:
    for name, path in ((SESSION_COOKIE, "/"), (REFRESH_COOKIE, REFRESH_PATH), (CSRF_COOKIE, "/")):
        response.delete_cookie(name, path=path, samesite="strict")
    return response


def _ended(exc: SessionEnded) -> Response:
    return _cleared(error_response(401, exc.code, exc.message))


# --- Routes --------------------------------------------------------------------------------


@router.post("", response_model=SessionOut, summary="Sign in with email and password",
             responses={401: {}, 403: {}, 423: {}, 429: {}})
async def sign_in(body: SignInIn, request: Request) -> JSONResponse:
    # Counted per email by its hash: the limiter's store (maybe Redis) holds no addresses.
    email_id = _sha256(body.email.strip().lower())
    chosen = await _limit(request, email_id)
    deps = deps_of(request)
    now = deps.clock.now()
    try:
        session = await users.sign_in(deps, request.app.state.password_hasher, _tokens(request),
                                      body.email, body.password, now)
    except InvalidCredentials as exc:
        await request.app.state.limiter.strategy.hit(_item(chosen.failures_per_email),
                                                     "signin-failures", email_id)
        raise ApiError(401, exc.code, exc.message) from None
    except AccountLocked as exc:
        raise _locked(exc) from None
    except AccountDisabled as exc:
        raise ApiError(403, exc.code, exc.message) from None
    # As the account's own streak: a success starts the count of failures over.
    await request.app.state.limiter.strategy.clear(_item(chosen.failures_per_email),
                                                   "signin-failures", email_id)
    return _session_response(request, session, now)


@router.post("/refresh", response_model=SessionOut, responses={401: {}, 403: {}},
             summary="New access token and refresh token for the refresh cookie (rotation)")
async def refresh(request: Request) -> Response:
    _check_csrf(request, None)  # the access token may have expired: the pair alone
    await request.app.state.limiter.check_global()
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        return _ended(SessionEnded())
    deps = deps_of(request)
    now = deps.clock.now()
    try:
        session = await users.refresh(deps, _tokens(request), token, now)
    except SessionEnded as exc:
        return _ended(exc)
    return _session_response(request, session, now)


@router.delete("", status_code=204, response_class=Response, responses={403: {}},
               summary="Sign out: revoke the session and clear its cookies")
async def sign_out(request: Request) -> Response:
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    access = request.cookies.get(SESSION_COOKIE)
    if refresh_token or access:  # with nothing to revoke, there is nothing to forge either
        _check_csrf(request, None)
    principal = users.authenticate_access(_tokens(request), access) if access else None
    deps = deps_of(request)
    await users.sign_out(deps, deps.clock.now(), refresh_token=refresh_token,
                         session_id=principal.session_id if principal else None)
    return _cleared(Response(status_code=204))


@router.get("", response_model=WhoAmIOut, responses={401: {}},
            summary="Who is signed in (the session cookie's user)")
async def who_am_i(request: Request) -> Response:
    principal = session_user(request)
    if principal is None:
        return error_response(401, "unauthorized", "No session cookie was sent; sign in "
                              f"(POST {REFRESH_PATH}).")
    user = await users.get_user(deps_of(request), principal.user_id)
    if user is None or user.disabled_at is not None:
        return _ended(SessionEnded())
    return json({"user": _user_body(user), "access_expires_at": principal.expires_at.isoformat()})
