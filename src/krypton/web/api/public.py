"""/api/v1/public: what a payer's page needs, without a key, rate-limited per client IP."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from krypton.app import invoices as use
from krypton.web.api import schemas as s
from krypton.web.api.common import deps_of, json

router = APIRouter(prefix="/public", tags=["public"])


@router.get("/invoice/{invoice_id}", response_model=s.PublicInvoiceOut,
            summary="An invoice as the payer sees it (no fees, no merchant internals)")
async def public_invoice(invoice_id: str, request: Request) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    invoice = await use.get_invoice(deps_of(request), None, invoice_id)
    return json(s.public_invoice_body(invoice))
