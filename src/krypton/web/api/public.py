"""/api/v1/public: what a payer's page needs, without a key, rate-limited per client IP."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from krypton.app import invoices as use
from krypton.domain.errors import NotFound
from krypton.web.api import instructions
from krypton.web.api import schemas as s
from krypton.web.api.common import deps_of, json, public_invoice_json

# Keyless (payers, limited per client IP): web/app.py names it exempt from the API-key check.
router = APIRouter(prefix="/public", tags=["public"])


@router.get("/invoice/{invoice_id}", response_model=s.PublicInvoiceOut,
            summary="An invoice as the payer sees it (no fees, no merchant internals)")
async def public_invoice(invoice_id: str, request: Request) -> JSONResponse:
    await request.app.state.limiter.check_ip(request)
    return json(await public_invoice_json(request, invoice_id))


@router.get("/invoice/{invoice_id}/qr/{method}.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}}},
            summary="QR code for paying one option of an invoice (SVG)")
async def invoice_qr(invoice_id: str, method: str, request: Request) -> Response:
    await request.app.state.limiter.check_ip(request)
    invoice = await use.get_invoice(deps_of(request), None, invoice_id)
    option = next((o for o in invoice.open_options() if o.method == method), None)
    if option is None:
        raise NotFound(f"Invoice '{invoice_id}' has no '{method}' payment option (open now).",
                       field="method")
    where = instructions.pay_to(invoice, option, testnet=request.app.state.settings.network == "testnet")
    data = where["deep_link"] or where["address"]
    if data is None:
        raise NotFound(f"The '{method}' option has nothing to scan.", field="method")
    return Response(instructions.qr_svg(data), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=300"})
