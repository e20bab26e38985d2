"""/api/v1/merchant: the calling merchant's own settings, as the dashboard's settings page
shows them; its owner (a dashboard session with settings:manage, never an API key) may
change the confirmations and the TON receiving address. The fee is the operator's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from krypton.app import merchants
from krypton.domain.confirmations import MAX_OVERRIDE
from krypton.domain.errors import DomainError, NotFound
from krypton.domain.merchant import Merchant
from krypton.domain.roles import Permission
from krypton.domain.scopes import Scope
from krypton.domain.users import UserPrincipal
from krypton.web.api import bodies
from krypton.web.api.common import deps_of, json
from krypton.web.auth import require, require_permission
from krypton.web.principal import Principal

router = APIRouter(tags=["merchant"])


class MerchantOut(BaseModel):
    id: str = Field(description="The merchant's id (mer_…).")
    object: Literal["merchant"] = Field("merchant", description="The kind of object.")
    name: str = Field(description="The merchant's name.")
    fee_bps: int = Field(description="The platform's fee in basis points (1/100 of a percent); "
                                     "set by the operator.")
    confirmations_override: int | None = Field(
        description=f"Confirmations every payment needs (1 to {MAX_OVERRIDE}) instead of each "
                    "chain's default; null: the defaults.")
    underpayment_tolerance_bps: int = Field(
        description="Shortfall accepted as paid, in basis points of the amount due.")
    methods: list[str] = Field(description="Payment methods a new invoice offers by default.")
    ton_address: str | None = Field(description="The merchant's own TON receiving address (raw "
                                                 "form); null: the platform's.")
    ton_receiving_address: str | None = Field(
        description="Where TON payments to this merchant go now (its own address or the "
                    "platform's); null when neither is configured.")
    ton_collector: str | None = Field(description="The merchant's fee-collector contract, "
                                                  "where TON itself is paid, if it has one.")


def _receiving(request: Request, merchant: Merchant) -> str | None:
    try:
        return deps_of(request).rails.ton_address(merchant.ton_address)
    except DomainError:  # no address anywhere: TON is not offered, nothing to show
        return None


_merchant_body: Callable[..., dict[str, Any]] = bodies.builder(
    MerchantOut, methods=lambda m: list(m.methods), ton_receiving_address=bodies.GIVEN)


@router.get("/merchant", response_model=MerchantOut, responses={404: {}},
            summary="This merchant's settings")
async def get_merchant(request: Request,
                       who: Principal = Depends(require(Scope.INVOICES_READ))) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        merchant = await uow.merchants.get(who.merchant_id)
    if merchant is None:  # deleted under a still-cached key
        raise NotFound(f"No merchant '{who.merchant_id}'.", field="merchant_id")
    return json(_merchant_body(merchant, ton_receiving_address=_receiving(request, merchant)))


class MerchantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirmations_override: int | None = Field(
        None, description=f"Confirmations every payment needs, 1 to {MAX_OVERRIDE}; null: each "
        "chain's default.")
    ton_address: str | None = Field(None, max_length=100, description="Your own TON receiving "
                                    "address (any form); null: the platform's.")


@router.patch("/merchant", response_model=MerchantOut, summary="Change this merchant's settings")
async def update_merchant(body: MerchantUpdate, request: Request,
                          who: UserPrincipal = Depends(require_permission(Permission.SETTINGS_MANAGE)),
                          ) -> JSONResponse:
    """Only the fields sent change; new invoices use them, existing ones keep theirs."""
    given = body.model_fields_set
    assert who.merchant_id is not None  # the permission is a merchant owner's
    merchant = await merchants.update_settings(
        deps_of(request), who.merchant_id,
        confirmations_override=body.confirmations_override if "confirmations_override" in given
        else merchants.UNCHANGED,
        ton_address=body.ton_address if "ton_address" in given else merchants.UNCHANGED)
    return json(_merchant_body(merchant, ton_receiving_address=_receiving(request, merchant)))
