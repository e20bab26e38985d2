"""/api/v1/operator: what the platform operator sees across merchants (own bearer token)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from krypton.domain.assets import ASSETS
from krypton.domain.money import format_units
from krypton.web.api.common import deps_of, page
from krypton.web.errors import ApiError

router = APIRouter(prefix="/operator", tags=["operator"])


async def operator(request: Request) -> None:
    token = request.app.state.settings.operator_token
    if token is None:
        raise ApiError(403, "operator_api_off", "The operator API is off; set "
                       "KRYPTON_OPERATOR_TOKEN to use it.")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.get_secret_value().encode()):
        raise ApiError(401, "unauthorized", "Send the operator token as 'Authorization: Bearer "
                       "<token>'.", headers={"WWW-Authenticate": "Bearer"})
    await request.app.state.limiter.check_key("operator", "reads")


class UnmatchedOut(BaseModel):
    id: str
    chain: str
    tx_id: str
    index: int
    asset: str
    amount: str
    destination: str
    memo: str | None
    reason: str
    invoice_id: str | None
    observed_at: str


class UnmatchedList(BaseModel):
    object: str = "list"
    data: list[UnmatchedOut]
    has_more: bool


def _amount(units: int, asset: str) -> str:
    # Counterfeit tokens have no catalogue entry: show their raw units.
    return format_units(units, ASSETS[asset].decimals) if asset in ASSETS else str(units)


def _body(u: dict[str, Any]) -> dict[str, Any]:
    return {"id": u["id"], "chain": u["chain"], "tx_id": u["tx_id"], "index": u["tx_index"],
            "asset": u["asset"], "amount": _amount(u["amount"], u["asset"]),
            "destination": u["destination"], "memo": u["memo"], "reason": u["reason"],
            "invoice_id": u["invoice_id"], "observed_at": u["observed_at"].isoformat()}


@router.get("/unmatched", response_model=UnmatchedList, dependencies=[Depends(operator)],
            summary="Transfers that paid no invoice, newest first (never credited elsewhere)")
async def unmatched(request: Request,
                    limit: Annotated[int, Query(ge=1, le=100, description="1 to 100.")] = 50
                    ) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        rows = await uow.unmatched.list(limit + 1)
    return page([_body(u) for u in rows[:limit]], len(rows) > limit)
