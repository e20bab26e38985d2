"""/api/v1/stats (the dashboard's overview numbers) and /api/v1/invoices/{id}/events (one
invoice's timeline). Response models live here, beside their only routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from krypton.app import stats as use
from krypton.app.ports import DailyRow
from krypton.domain.invoice import InvoiceStatus
from krypton.domain.scopes import Scope
from krypton.web.api import bodies
from krypton.web.api import schemas as s
from krypton.web.api.common import deps_of, json, page
from krypton.web.auth import require
from krypton.web.principal import Principal

router = APIRouter(tags=["stats"])

Days = Annotated[int, Query(ge=1, le=use.MAX_DAYS,
                            description=f"How many days the daily series covers, ending today "
                                        f"(UTC), 1 to {use.MAX_DAYS}.")]


class AssetVolumeOut(BaseModel):
    asset: s.AssetCode
    gross: s.Amount = Field(description="Everything settled in this asset, before the fee.")
    net: s.Amount = Field(description="What the merchant received after the fee.")
    count: int = Field(description="How many settlements.")


class DailyVolumeOut(BaseModel):
    day: str = Field(description="The day (UTC), YYYY-MM-DD.")
    asset: s.AssetCode
    gross: s.Amount = Field(description="Settled that day in this asset, before the fee.")
    fees: s.Amount = Field(description="The platform's fee on it.")
    count: int = Field(description="How many settlements.")


class InvoiceCountsOut(BaseModel):
    """How many of the merchant's invoices are in each status now."""

    pending: int = Field(description="Waiting for a payment.")
    confirming: int = Field(description="Paid in full, waiting for confirmations.")
    paid: int = Field(description="Paid and confirmed.")
    expired: int = Field(description="Not paid in time.")
    cancelled: int = Field(description="Cancelled by the merchant.")
    refunded: int = Field(description="Paid, then refunded to the payer.")


# Every status has its field: a new status without one fails here, at import, not in a test.
assert set(InvoiceCountsOut.model_fields) == {s.value for s in InvoiceStatus}


class StatsOut(BaseModel):
    object: Literal["stats"] = Field("stats", description="The kind of object.")
    invoices: InvoiceCountsOut = Field(description="How many invoices are in each status now.")
    volume: list[AssetVolumeOut] = Field(description="Settled volume per asset, all time.")
    daily: list[DailyVolumeOut] = Field(
        description="Settled volume per day and asset within the window, oldest first; days "
                    "without settlements are left out.")
    first_day: str = Field(description="The window's first day (UTC), YYYY-MM-DD.")
    last_day: str = Field(description="The window's last day (UTC, today), YYYY-MM-DD.")


_volume_body: Callable[[use.AssetVolume], dict[str, Any]] = bodies.builder(
    AssetVolumeOut, gross=lambda v: s.fmt(v.gross, v.asset), net=lambda v: s.fmt(v.net, v.asset))
_daily_body: Callable[[DailyRow], dict[str, Any]] = bodies.builder(
    DailyVolumeOut, gross=lambda r: s.fmt(r.gross, r.asset), fees=lambda r: s.fmt(r.fees, r.asset))
_stats_body: Callable[[use.Overview], dict[str, Any]] = bodies.builder(
    StatsOut, invoices="counts", volume=lambda o: [_volume_body(v) for v in o.volume],
    daily=lambda o: [_daily_body(r) for r in o.daily],
    first_day=lambda o: o.first_day.isoformat(), last_day=lambda o: o.last_day.isoformat())


@router.get("/stats", response_model=StatsOut, summary="Invoice counts and settled volume")
async def stats(request: Request, who: Principal = Depends(require(Scope.BALANCES_READ)),
                days: Days = use.DEFAULT_DAYS) -> JSONResponse:
    """What the dashboard's overview shows: invoices per status, settled volume per asset,
    and the daily series of the last `days` days. From the read models, which follow the
    event log a moment behind."""
    return json(_stats_body(await use.overview(deps_of(request), who.merchant_id, days)))


@router.get("/invoices/{invoice_id}/events", response_model=s.listing(s.EventOut), tags=["events"],
            summary="One invoice's events, its payments' and settlements' included, oldest first")
async def invoice_events(invoice_id: str, request: Request,
                         who: Principal = Depends(require(Scope.EVENTS_READ))) -> JSONResponse:
    events = await use.invoice_timeline(deps_of(request), who.merchant_id, invoice_id)
    return page([s.event_body(e) for e in events], False)
