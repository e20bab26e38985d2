"""/api/v1/users: a merchant's dashboard users, managed by its owners from the dashboard.

Only a signed-in user whose role has the `users:manage` permission (an owner) may list, add
or change users (`auth.require_permission`); an API key never can. The owner sets a new
user's initial password. An owner cannot demote or disable themself, nor leave the merchant
without an enabled owner. Disabling a user revokes its sessions' refresh tokens at once (an
access token it already holds lapses within its ten minutes; this router re-reads the
signed-in user on every request, so a disabled or demoted owner is refused here at once).
Another merchant's user is a 404, like a missing one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from krypton.app import users
from krypton.domain.roles import Permission, allows
from krypton.domain.users import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH, SessionEnded, UserPrincipal
from krypton.web import auth
from krypton.web.api import bodies
from krypton.web.api.common import deps_of, json, page
from krypton.web.api.schemas import listing
from krypton.web.errors import ApiError

router = APIRouter(prefix="/users", tags=["users"])

MerchantRole = Literal["owner", "developer", "viewer"]
UserId = Annotated[str, Path(max_length=64, description="The user's id (usr_…).")]
Reader = Annotated[UserPrincipal, Depends(auth.require_permission(Permission.USERS_MANAGE))]
Changer = Annotated[UserPrincipal, Depends(auth.require_permission(Permission.USERS_MANAGE,
                                                                   tier="create"))]


class MerchantUserOut(BaseModel):
    id: str = Field(description="The user's id (usr_…).")
    object: Literal["user"] = Field("user", description="The kind of object.")
    email: str = Field(description="The email the user signs in with (lower-cased).")
    role: MerchantRole = Field(description="owner (everything, users included), developer "
                               "(invoices, webhooks, API keys) or viewer (reads only).")
    created_at: datetime = Field(description="When the user was added.")
    disabled: bool = Field(description="A disabled user cannot sign in.")
    disabled_at: datetime | None = Field(description="When the user was disabled, if it is.")


class MerchantUserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=MAX_EMAIL_LENGTH + 20, description="The new user's email "
                       "address; one user per address across Krypton.")
    role: MerchantRole = Field(description="owner, developer or viewer.")
    password: str = Field(max_length=MAX_PASSWORD_LENGTH, description="The initial password "
                          "(at least 12 characters); tell it to the user yourself.")


class MerchantUserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: MerchantRole | None = Field(None, description="The new role; omitted or null: as it is.")
    disabled: StrictBool | None = Field(None, description="true disables the user and ends its "
                                        "sessions, false enables it; omitted or null: as it is.")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


user_body = bodies.builder(
    MerchantUserOut, role=lambda u: u.role.value, created_at=lambda u: u.created_at.isoformat(),
    disabled=lambda u: u.disabled_at is not None, disabled_at=lambda u: _iso(u.disabled_at))


async def _merchant_of(request: Request, principal: UserPrincipal) -> str:
    """The merchant the signed-in owner acts for, after re-reading the user: the access token
    says what the role was when it was issued, up to ten minutes ago."""
    if principal.merchant_id is None:  # the operator holds no users:manage; kept as a backstop
        raise ApiError(403, "operator_session", "Users of a merchant are managed by its owners; "
                       "sign in as one.")
    stored = await users.get_user(deps_of(request), principal.user_id)
    if stored is None or stored.disabled_at is not None:
        ended = SessionEnded()
        raise ApiError(401, ended.code, ended.message)
    if not allows(stored.role, Permission.USERS_MANAGE):
        raise ApiError(403, "insufficient_permission", f"Your role ({stored.role}) lacks the "
                       f"'{Permission.USERS_MANAGE}' permission; ask an owner of the account to "
                       "do it.")
    return principal.merchant_id


@router.get("", response_model=listing(MerchantUserOut),
            summary="Your merchant's dashboard users, oldest first (never their passwords)")
async def list_users(request: Request, user: Reader) -> JSONResponse:
    merchant_id = await _merchant_of(request, user)
    team = await users.list_users(deps_of(request), merchant_id)
    return page([user_body(u) for u in team], False)


@router.post("", response_model=MerchantUserOut, status_code=201, responses={409: {}},
             summary="Add a user to your merchant, with an initial password")
async def add_user(body: MerchantUserCreate, request: Request, user: Changer) -> JSONResponse:
    merchant_id = await _merchant_of(request, user)
    created = await users.add_merchant_user(deps_of(request), request.app.state.password_hasher,
                                            merchant_id, body.email, body.password, body.role)
    return json(user_body(created), 201)


@router.patch("/{user_id}", response_model=MerchantUserOut, responses={404: {}, 409: {}},
              summary="Change a user's role, or disable or enable it")
async def change_user(user_id: UserId, body: MerchantUserUpdate, request: Request,
                      user: Changer) -> JSONResponse:
    """Disabling ends the user's sessions. You cannot demote or disable yourself, nor the
    merchant's last enabled owner (409, saying so)."""
    merchant_id = await _merchant_of(request, user)
    changed = await users.change_merchant_user(deps_of(request), merchant_id, user.user_id,
                                              user_id, role=body.role, disabled=body.disabled)
    return json(user_body(changed))
