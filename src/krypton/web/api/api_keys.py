"""/api/v1/api-keys: a merchant's API keys, managed from the dashboard.

Only a signed-in user whose role has the `apikeys:manage` permission may list, create or
revoke keys (`auth.require_permission`): an API key never can, so a leaked key cannot mint
itself a successor that outlives its revocation. A new key's secret is in the creation
answer only; Krypton keeps its SHA-256 hash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from krypton.app import merchants
from krypton.domain.roles import Permission
from krypton.domain.users import UserPrincipal
from krypton.web import auth
from krypton.web.api import bodies
from krypton.web.api.common import deps_of, json, page
from krypton.web.api.schemas import listing
from krypton.web.errors import ApiError

router = APIRouter(prefix="/api-keys", tags=["api keys"])

ScopeName = Annotated[str, Field(json_schema_extra={"enum": list(merchants.SCOPES)})]
KeyId = Annotated[str, Path(max_length=64, description="The key's id (key_…).")]
Manager = Annotated[UserPrincipal, Depends(auth.require_permission(Permission.APIKEYS_MANAGE))]
Changer = Annotated[UserPrincipal, Depends(auth.require_permission(Permission.APIKEYS_MANAGE,
                                                                   tier="create"))]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scopes: list[ScopeName] | None = Field(
        None, min_length=1, max_length=len(merchants.SCOPES),
        description=f"What the key may do ({', '.join(merchants.SCOPES)}); default: every "
        "scope your role holds.")


class ApiKeyOut(BaseModel):
    id: str = Field(description="The key's id (key_…).")
    object: Literal["api_key"] = Field("api_key", description="The kind of object.")
    prefix: str = Field(description="The secret's first characters, to tell keys apart.")
    scopes: list[str] = Field(description="What the key may do.")
    status: Literal["active", "revoked"] = Field(description="A revoked key is refused (401).")
    created_at: datetime = Field(description="When it was created.")
    revoked_at: datetime | None = Field(description="When it was revoked, if it was.")


class ApiKeyWithSecret(ApiKeyOut):
    secret: str = Field(description="The key itself (kr_…), shown only in this answer: store it "
                        "now. Send it as 'Authorization: Bearer <key>'.")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


_fields: dict[str, Any] = dict(
    scopes=lambda k: list(k.scopes), status=lambda k: "revoked" if k.revoked_at else "active",
    created_at=lambda k: k.created_at.isoformat(), revoked_at=lambda k: _iso(k.revoked_at))
key_body = bodies.builder(ApiKeyOut, **_fields)
key_with_secret_body = bodies.builder(ApiKeyWithSecret, secret=bodies.GIVEN, **_fields)


def _allowed_scopes(user: UserPrincipal, asked: list[str] | None) -> list[str]:
    """The scopes asked for, none beyond the user's own: managing keys must not be a way to
    more rights than the role has."""
    own = [scope for scope in merchants.SCOPES if scope in user.grants]
    if asked is None:
        return own
    asked = list(merchants.validate_scopes(asked))  # unknown ones: 422 with the choice
    beyond = sorted(set(asked) - set(own))
    if beyond:
        raise ApiError(403, "insufficient_permission", f"Your role ({user.role}) cannot grant "
                       f"{', '.join(beyond)}; choose among {', '.join(own)}.", field="scopes")
    return asked


def _merchant_of(user: UserPrincipal) -> str:
    if user.merchant_id is None:  # the operator holds no apikeys:manage; kept as a backstop
        raise ApiError(403, "operator_session", "API keys belong to a merchant; sign in as one "
                       "of its users.")
    return user.merchant_id


@router.get("", response_model=listing(ApiKeyOut), summary="Your merchant's API keys, oldest first "
            "(revoked ones too; never their secrets)")
async def list_keys(request: Request, user: Manager) -> JSONResponse:
    keys = await merchants.list_api_keys(deps_of(request), _merchant_of(user))
    return page([key_body(k) for k in keys], False)


@router.post("", response_model=ApiKeyWithSecret, status_code=201,
             summary="Create an API key; its secret is in this answer only")
async def create_key(body: ApiKeyCreate, request: Request, user: Changer) -> JSONResponse:
    deps = deps_of(request)
    issued = await merchants.create_api_key(deps, _merchant_of(user),
                                            _allowed_scopes(user, body.scopes))
    async with deps.uow(write=False) as uow:
        record = await uow.api_keys.get(issued.id)
    assert record is not None  # committed by create_api_key
    return json(key_with_secret_body(record, secret=issued.secret), 201)


@router.delete("/{key_id}", response_model=ApiKeyOut,
               summary="Revoke an API key: it is refused from now on (revoking twice is fine)")
async def revoke_key(key_id: KeyId, request: Request, user: Changer) -> JSONResponse:
    record = await merchants.revoke_api_key(deps_of(request), key_id, _merchant_of(user))
    # This process forgets verified keys now; other API processes within their cache's
    # lifetime (KRYPTON_API_KEY_CACHE_SECONDS).
    request.app.state.key_cache.clear()
    return json(key_body(record))
