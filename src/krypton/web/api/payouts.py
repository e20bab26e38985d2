"""/api/v1/payouts: a merchant's withdrawals of its available balance (app/payouts.py).

The request and response models live here, beside their only router (rendered by
`bodies.builder` like every body)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from krypton.adapters.chains.ton.address import InvalidAddress, parse
from krypton.app import payouts as use
from krypton.domain import money
from krypton.domain.assets import ASSETS
from krypton.domain.errors import Conflict, DomainError
from krypton.domain.payout import PAYOUT_ASSETS
from krypton.domain.scopes import Scope
from krypton.web.api import bodies
from krypton.web.api.common import After, Limit, deps_of, json, page
from krypton.web.api.invoices import IDEMPOTENCY_KEY_LENGTH, _idempotency_key
from krypton.web.api.schemas import (
    MAX_AMOUNT_CHARS,
    AssetCode,
    Moment,
    Strict,
    Text,
    fmt,
    listing,
)
from krypton.web.auth import require
from krypton.web.principal import Principal

router = APIRouter(prefix="/payouts", tags=["payouts"])
_IDEMPOTENCY_DOC = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_LENGTH},
    "description": "Retry-safe key: the same key and body answer with the first payout."}


class PayoutCreate(Strict):
    asset: Literal["TON", "USDT_TON"] = Field(
        description="TON or USDT_TON (USDT on Tron is not paid out: the signer holds no Tron keys).")
    amount: str = Field(max_length=MAX_AMOUNT_CHARS, description="Decimal amount of the asset, "
                        "e.g. \"12.5\"; taken from the available balance exactly (the network "
                        "fee is the platform's).")
    destination: str = Field(max_length=100, description="TON address (user-friendly or raw) of "
                             "the network Krypton runs on.")
    description: Text | None = Field(None, max_length=200, description="For your records.")


class PayoutOut(BaseModel):
    id: str = Field(description="The payout's id (po_…).")
    object: Literal["payout"] = Field("payout", description="The kind of object.")
    asset: AssetCode
    amount: str = Field(description="Taken from the available balance and sent.")
    destination: str = Field(description="Where it is sent.")
    description: str | None = Field(description="As given.")
    status: str = Field(description="requested, queued, sent, confirmed or failed (credited back).")
    tx_hash: str | None = Field(description="The hot wallet's transaction that sent it.")
    network_fee: str = Field(description="TON the chain charged for sending it (the platform's).")
    failure: str | None = Field(description="Why it failed.")
    created_at: Moment
    updated_at: Moment


payout_body: Callable[..., dict[str, Any]] = bodies.builder(
    PayoutOut, status="status.value", amount=lambda p: fmt(p.amount, p.asset),
    network_fee=lambda p: fmt(p.network_fee, "TON"))


def _kit(request: Request) -> use.PayoutKit:
    return request.app.state.container.payout_kit()  # type: ignore[no-any-return]


def destination(text: str, network: str) -> str:
    """The address as the signer is asked to send to: checked for the network Krypton runs on
    (a testnet address on mainnet, or a mainnet one on testnet, is refused: money sent there
    would land on the other network's address, or nowhere)."""
    shown = text.strip()
    try:
        parse(shown, network="mainnet" if network == "mainnet" else "testnet")
    except InvalidAddress as exc:
        raise DomainError(exc.message, field="destination") from None
    # A friendly address's first character carries its test-only flag: E/U mainnet, k/0
    # testnet (parse refuses the latter on mainnet). The devnet takes either.
    if network == "testnet" and ":" not in shown and shown[:1] in ("E", "U"):
        raise DomainError("This is a mainnet address; Krypton runs on testnet: use the address's "
                          "testnet form (kQ… or 0Q…).", field="destination")
    return shown


@router.post("", response_model=PayoutOut, status_code=201, summary="Pay out to an address",
             openapi_extra={"parameters": [_IDEMPOTENCY_DOC]})
async def create_payout(body: PayoutCreate, request: Request,
                        who: Principal = Depends(require(Scope.PAYOUTS_WRITE))) -> JSONResponse:
    """Take `amount` from the available balance and send it to `destination`, batched with
    other payouts (within payout_batch_seconds). 201 with the payout (`requested`); 409
    `insufficient_balance` when the available balance does not cover it; the same
    Idempotency-Key and body answer 200 with the first payout."""
    kit = _kit(request)
    if kit.signer is None:
        raise Conflict("Payouts are not available: no hot-wallet signer is configured on this "
                       "server (KRYPTON_SIGNER_SOCKET).", code="payouts_unavailable")
    if body.asset not in PAYOUT_ASSETS:  # pragma: no cover - the model allows only these
        raise DomainError(f"Payouts are made in {', '.join(sorted(PAYOUT_ASSETS))}.", field="asset")
    amount = money.parse_units(body.amount, ASSETS[body.asset].decimals)
    if amount <= 0:
        raise DomainError("amount must be more than zero.", field="amount")
    to = destination(body.destination, request.app.state.settings.network)
    req = use.PayoutRequest(body.asset, amount, to, body.description)
    payout, created = await use.request_payout(deps_of(request), kit, who.merchant_id, req,
                                               idempotency_key=_idempotency_key(request))
    return json(payout_body(payout), 201 if created else 200)


@router.get("", response_model=listing(PayoutOut), summary="List payouts, newest first")
async def list_payouts(request: Request, who: Principal = Depends(require(Scope.BALANCES_READ)),
                       limit: Limit = 20, starting_after: After = None) -> JSONResponse:
    items, more = await use.list_payouts(deps_of(request), _kit(request), who.merchant_id,
                                         limit=limit, starting_after=starting_after)
    return page([payout_body(p) for p in items], more)


@router.get("/{payout_id}", response_model=PayoutOut, summary="Retrieve a payout")
async def get_payout(payout_id: str, request: Request,
                     who: Principal = Depends(require(Scope.BALANCES_READ))) -> JSONResponse:
    payout = await use.get_payout(deps_of(request), _kit(request), who.merchant_id, payout_id)
    return json(payout_body(payout))
