"""/api/v1/invoices"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from krypton.app import invoices as use
from krypton.app import refunds, subscriptions
from krypton.domain import money, subscription
from krypton.domain.errors import DomainError
from krypton.domain.invoice import InvoiceStatus
from krypton.domain.refund import RefundStatus
from krypton.domain.scopes import Scope
from krypton.web.api import schemas as s
from krypton.web.api.common import After, Limit, deps_of, invoice_json, json, owned, page
from krypton.web.auth import require
from krypton.web.errors import ApiError
from krypton.web.principal import Principal

router = APIRouter(prefix="/invoices", tags=["invoices"])
IDEMPOTENCY_KEY_LENGTH = 255
_IDEMPOTENCY_KEY_HELP = "Retry-safe key; same key and body replay the first response."
# The Idempotency-Key header is read by `_idempotency_key`, not declared as a FastAPI Header
# parameter: FastAPI's header parameters cost 25-30 µs per request (measured in-process),
# about a tenth of this endpoint's CPU. The OpenAPI document describes it all the same.
_IDEMPOTENCY_KEY_DOC = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"anyOf": [{"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_LENGTH},
                         {"type": "null"}],
               "description": _IDEMPOTENCY_KEY_HELP, "title": "Idempotency-Key"},
    "description": _IDEMPOTENCY_KEY_HELP,
}


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_LENGTH:
        raise ApiError(422, "invalid_request",
                       f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_LENGTH} characters long; "
                       "send a non-empty key (a UUID is a good choice) or none.",
                       field="Idempotency-Key")
    return key


@router.post("", status_code=201, response_model=s.InvoiceOut, summary="Create an invoice",
             openapi_extra={"parameters": [_IDEMPOTENCY_KEY_DOC]})
async def create(body: s.InvoiceCreate, request: Request,
                 who: Principal = Depends(require(Scope.INVOICES_WRITE, tier="create"))) -> JSONResponse:
    idempotency_key = _idempotency_key(request)
    asked = body.model_dump()
    period = _subscription_period(asked.pop("stars_subscription"), asked.pop("subscription_period"),
                                  body)
    req = use.InvoiceRequest(**asked)
    created = await use.create_invoice(
        deps_of(request), who.merchant_id, req, view=lambda inv: invoice_json(request, inv),
        idempotency_key=idempotency_key, merchant=who.merchant)
    if period is not None:  # a replay keeps the plan its first request kept
        container = request.app.state.container
        await subscriptions.ask(deps_of(request), container.stars_books(), created.view["id"],
                                period)
    return json(created.view, 201)


def _subscription_period(flag: bool, period: int | None, body: s.InvoiceCreate) -> int | None:
    if flag and period is None:
        period = subscription.PERIOD
    methods = body.methods if body.methods is not None else ["stars"]
    return subscription.validate(
        period, stars=list(methods) == ["stars"], price_currency=body.currency,
        amount=_whole(body.amount) if period is not None else 0)


def _whole(amount: str) -> int:
    try:
        return money.parse_units(amount, 0)
    except DomainError:
        raise DomainError("A Stars subscription costs a whole number of Stars.",
                          field="amount") from None


@router.post("/{invoice_id}/refund", response_model=s.RefundOut,
             summary="Refund the invoice's payment",
             openapi_extra={"parameters": [_IDEMPOTENCY_KEY_DOC]})
async def refund(invoice_id: str, body: s.RefundCreate, request: Request,
                 who: Principal = Depends(require(Scope.REFUNDS_WRITE))) -> JSONResponse:
    """Give the payment back to its payer. Stars: 200 with `succeeded` or `failed`
    (Telegram's reason), 202 with `pending` when Telegram could not be reached (retried).
    TON: 201 with the refund, `pending` until the signer's transfer is final; to the
    payment's source address (`to: source`) or, by default, to the address the payer gives
    at `claim_url`. USDT on Tron cannot be refunded (no Tron signer): 409."""
    container = request.app.state.container
    deps = deps_of(request)
    kit = container.refund_kit()
    req = refunds.RefundRequest(amount=body.amount, reason=body.reason, payment_id=body.payment_id,
                                to=body.to)
    key = _idempotency_key(request)
    try:
        done = await refunds.refund_invoice(deps, kit, who.merchant_id, invoice_id, req,
                                            idempotency_key=key)
    except refunds.RailUnavailable as exc:
        # Recorded, but Telegram's answer is unknown: the worker (or a retry) finishes it.
        pending = await refunds.list_refunds(deps, kit, who.merchant_id, invoice_id)
        waiting = [r for r in pending if r.status is RefundStatus.PENDING]
        if not waiting:
            raise
        body_ = s.refund_body(waiting[-1], claim_url=await refunds.link(deps, kit, waiting[-1]))
        body_["message"] = exc.message
        return json(body_, 202)
    return json(s.refund_body(done, claim_url=await refunds.link(deps, kit, done)),
                200 if done.to is None else 201)


@router.get("/{invoice_id}/refunds", response_model=s.listing(s.RefundOut),
            summary="Refunds of an invoice, oldest first")
async def list_refunds(invoice_id: str, request: Request,
                       who: Principal = Depends(require(Scope.PAYMENTS_READ))) -> JSONResponse:
    container = request.app.state.container
    items = await refunds.list_refunds(deps_of(request), container.refund_kit(), who.merchant_id,
                                       invoice_id)
    deps = deps_of(request)
    kit = container.refund_kit()
    return page([s.refund_body(r, claim_url=await refunds.link(deps, kit, r)) for r in items],
                False)


@router.get("", response_model=s.listing(s.InvoiceOut), summary="List invoices, newest first")
async def list_(request: Request, who: Principal = Depends(require(Scope.INVOICES_READ)),
                status: Annotated[str | None, Query(description="pending, confirming, paid, "
                                                    "expired or cancelled")] = None,
                order_id: Annotated[str | None, Query(max_length=200)] = None,
                limit: Limit = 20, starting_after: After = None) -> JSONResponse:
    try:
        wanted = InvoiceStatus(status) if status is not None else None
    except ValueError:
        raise DomainError(f"status must be one of {', '.join(InvoiceStatus)}.",
                          field="status") from None
    async with deps_of(request).uow(write=False) as uow:
        items, more = await uow.invoices.page(who.merchant_id, status=wanted, order_id=order_id,
                                              limit=limit, starting_after=starting_after)
    return page([invoice_json(request, i) for i in items], more)


@router.get("/{invoice_id}", response_model=s.InvoiceOut, summary="Retrieve an invoice")
async def get(invoice_id: str, request: Request,
              who: Principal = Depends(require(Scope.INVOICES_READ))) -> JSONResponse:
    invoice = await use.get_invoice(deps_of(request), who.merchant_id, invoice_id)
    return json(invoice_json(request, invoice))


@router.post("/{invoice_id}/cancel", response_model=s.InvoiceOut, summary="Cancel a pending invoice")
async def cancel(invoice_id: str, request: Request,
                 who: Principal = Depends(require(Scope.INVOICES_WRITE))) -> JSONResponse:
    invoice = await use.cancel_invoice(deps_of(request), who.merchant_id, invoice_id)
    return json(invoice_json(request, invoice))


@router.get("/{invoice_id}/payments", response_model=s.listing(s.PaymentOut),
            summary="Payments seen for an invoice")
async def payments(invoice_id: str, request: Request,
                   who: Principal = Depends(require(Scope.PAYMENTS_READ))) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        owned(await uow.invoices.get(invoice_id), who.merchant_id, "invoice", invoice_id,
              field="invoice_id")
        items = await uow.payments.for_invoice(invoice_id)
    return page([s.payment_body(p) for p in items], False)
