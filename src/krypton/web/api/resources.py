"""/api/v1/payments, /settlements, /balances and /events"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from krypton.app.ports import UnitOfWork
from krypton.domain import events as event_types
from krypton.domain import ledger
from krypton.domain.assets import XTR
from krypton.domain.errors import DomainError
from krypton.domain.scopes import Scope
from krypton.web.api import schemas as s
from krypton.web.api.common import After, Limit, OwnedT, deps_of, json, owned, page
from krypton.web.auth import require
from krypton.web.principal import Principal

router = APIRouter()
OwnedT_co = TypeVar("OwnedT_co", covariant=True)


class _Repo(Protocol[OwnedT_co]):
    def get(self, item_id: str, /) -> Awaitable[OwnedT_co | None]: ...


async def _retrieve(request: Request, who: Principal, what: str, item_id: str,
                    repo: Callable[[UnitOfWork], _Repo[OwnedT]],
                    render: Callable[[OwnedT], dict[str, Any]]) -> JSONResponse:
    """One of the merchant's items by id, rendered; another merchant's is 404 like a missing one."""
    async with deps_of(request).uow(write=False) as uow:
        item = await repo(uow).get(item_id)
    return json(render(owned(item, who.merchant_id, what, item_id)))


@router.get("/payments/{payment_id}", response_model=s.PaymentOut, tags=["payments"],
            summary="Retrieve a payment")
async def get_payment(payment_id: str, request: Request,
                      who: Principal = Depends(require(Scope.PAYMENTS_READ))) -> JSONResponse:
    return await _retrieve(request, who, "payment", payment_id, lambda uow: uow.payments, s.payment_body)


@router.get("/settlements/{settlement_id}", response_model=s.SettlementOut, tags=["settlements"],
            summary="Retrieve a settlement")
async def get_settlement(settlement_id: str, request: Request,
                         who: Principal = Depends(require(Scope.SETTLEMENTS_READ))) -> JSONResponse:
    return await _retrieve(request, who, "settlement", settlement_id, lambda uow: uow.settlements,
                           s.settlement_body)


@router.get("/settlements", response_model=s.listing(s.SettlementOut), tags=["settlements"],
            summary="List settlements, newest first")
async def list_settlements(request: Request,
                           who: Principal = Depends(require(Scope.SETTLEMENTS_READ)),
                           limit: Limit = 20, starting_after: After = None) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        items, more = await uow.settlements.page(who.merchant_id, limit=limit,
                                                 starting_after=starting_after)
    return page([s.settlement_body(x) for x in items], more)


@router.get("/unmatched-transfers", response_model=s.listing(s.UnmatchedOut), tags=["payments"],
            summary="Transfers to this merchant that paid nothing, newest first")
async def unmatched_transfers(request: Request,
                              who: Principal = Depends(require(Scope.PAYMENTS_READ)),
                              limit: Limit = 20, starting_after: After = None) -> JSONResponse:
    """Money that reached one of this merchant's invoices or addresses and was not credited:
    a payment in another asset than the one the invoice is being paid in, after it was paid
    or cancelled, or past its monitoring window, and the like (`reason` says which). Nothing
    here was credited anywhere; settle it with the payer."""
    async with deps_of(request).uow(write=False) as uow:
        merchant = await uow.merchants.get(who.merchant_id)
        addresses = [a for a in (merchant.ton_address, merchant.ton_collector) if a] if merchant else []
        items, more = await uow.unmatched.page(who.merchant_id, addresses, limit=limit,
                                               starting_after=starting_after)
    return page([s.unmatched_body(u) for u in items], more)


@router.get("/balances", response_model=s.BalancesOut, tags=["balances"],
            summary="Settled (available) and received-but-unsettled (pending) balances")
async def balances(request: Request,
                   who: Principal = Depends(require(Scope.BALANCES_READ))) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        available = await uow.ledger.balances(ledger.merchant_account(who.merchant_id, ""))
        pending = await uow.ledger.balances(ledger.clearing(who.merchant_id, ""))
        held = await uow.ledger.balances(ledger.merchant_held(who.merchant_id, ""))
    per_asset: dict[str, dict[str, int]] = defaultdict(
        lambda: {"available": 0, "pending": 0, "held": 0})
    for (_, asset), amount in available.items():
        per_asset[asset]["available"] = amount
    for (_, asset), amount in pending.items():
        per_asset[asset]["pending"] += amount
    # Settled Stars Telegram still holds: pending to the merchant, withdrawable after the hold.
    for (_, asset), amount in held.items():
        per_asset[asset]["pending"] += amount
        per_asset[asset]["held"] = amount
    return json({"object": "balances", "balances": [
        {"asset": a, "available": s.fmt(v["available"], a), "pending": s.fmt(v["pending"], a),
         # Only rails with a hold (Telegram Stars) say how much of `pending` it is.
         **({"held": s.fmt(v["held"], a)} if a == XTR.code else {})}
        for a, v in sorted(per_asset.items())]})


@router.get("/events", response_model=s.listing(s.EventOut), tags=["events"],
            summary="This merchant's events, oldest first, in commit order")
async def events(request: Request, who: Principal = Depends(require(Scope.EVENTS_READ)),
                 after: After = None, limit: Limit = 50,
                 type_: Annotated[list[str] | None, Query(
                     alias="type", max_length=len(event_types.TYPES),
                     description="Only events of these types (repeat the parameter for "
                     "several), e.g. `invoice.paid`.")] = None) -> JSONResponse:
    unknown = sorted(set(type_ or ()) - event_types.TYPES)
    if unknown:
        raise DomainError(f"Unknown event type {', '.join(repr(t[:64]) for t in unknown[:3])}; "
                          f"choose from {', '.join(sorted(event_types.TYPES))}.", field="type")
    async with deps_of(request).uow(write=False) as uow:
        position = (0, 0)
        if after is not None:
            found = await uow.events.position_of(after, who.merchant_id)
            if found is None:
                raise DomainError(f"after '{after}' is not an event id.", field="after")
            position = found
        items = await uow.events.read(position, limit + 1, merchant_id=who.merchant_id,
                                      types=frozenset(type_ or ()))
    return page([s.event_body(e) for e in items[:limit]], len(items) > limit)
