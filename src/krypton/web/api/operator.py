"""/api/v1/operator: what the platform operator sees across merchants (own bearer token)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from krypton.web.api import schemas as s
from krypton.web.api.common import deps_of, page
from krypton.web.errors import ApiError

# Not a merchant-key router: web/app.py names it as exempt from the API-key scope check.
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


@router.get("/unmatched", response_model=s.listing(s.UnmatchedOut), dependencies=[Depends(operator)],
            summary="Transfers that paid no invoice, newest first (never credited elsewhere)")
async def unmatched(request: Request,
                    limit: Annotated[int, Query(ge=1, le=100, description="1 to 100.")] = 50
                    ) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        rows = await uow.unmatched.list(limit + 1)
    return page([s.unmatched_body(u) for u in rows[:limit]], len(rows) > limit)
