"""The merchant's dashboard pages: overview, invoices (list, create, detail), settlements and
balances, webhooks, settings; and the overview's charts, drawn here as SVG images from the
read models (charts.py). Each page is a shell (dashboard.py); its script fetches the data
from the REST API with the session cookie."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from krypton.app import stats
from krypton.domain.assets import ASSETS, METHODS, PRICING_DECIMALS
from krypton.domain.invoice import InvoiceStatus
from krypton.domain.roles import Role
from krypton.domain.scopes import Scope
from krypton.domain.users import UserPrincipal
from krypton.web.api.common import deps_of
from krypton.web.pages import charts
from krypton.web.pages.dashboard import PREFIX, shell, signed_in, to_sign_in

router = APIRouter(include_in_schema=False)
OPERATOR_HOME = f"{PREFIX}/operator"
SVG = "image/svg+xml"
# What each page's data needs: a role without it sees a short refusal instead of a page of
# API errors.
NEEDS = {"overview": Scope.BALANCES_READ, "invoices": Scope.INVOICES_READ,
         "invoice": Scope.INVOICES_READ, "settlements": Scope.SETTLEMENTS_READ,
         "webhooks": Scope.WEBHOOKS_WRITE, "settings": Scope.INVOICES_READ}
TITLES = {"overview": "Overview", "invoices": "Invoices", "invoice": "Invoice",
          "settlements": "Settlements and balances", "webhooks": "Webhooks", "settings": "Settings"}


def _refused(request: Request, user: UserPrincipal) -> Response:
    response = shell(request, user, "dashboard/base.html", "You cannot see this page")
    response.status_code = 403
    return response


def _page(request: Request, name: str, **context: Any) -> Response:
    """The page `name` for the signed-in merchant user; sign-in first, the operator's home
    for the operator (who has no merchant), a refusal for a role without the page's scope."""
    user = signed_in(request)
    if user is None:
        return to_sign_in(request)
    if user.role is Role.OPERATOR or user.merchant_id is None:
        return RedirectResponse(OPERATOR_HOME, status_code=303)
    if NEEDS[name].value not in user.grants:
        return _refused(request, user)
    return shell(request, user, f"dashboard/{name}.html", TITLES[name],
                 can_write=Scope.INVOICES_WRITE.value in user.grants, **context)


@router.get(PREFIX)
async def overview(request: Request) -> Response:
    return _page(request, "overview", days=stats.DEFAULT_DAYS)


@router.get(f"{PREFIX}/invoices")
async def invoices(request: Request) -> Response:
    return _page(request, "invoices", statuses=[s.value for s in InvoiceStatus],
                 currencies=list(PRICING_DECIMALS), methods=list(METHODS))


@router.get(f"{PREFIX}/invoices/{{invoice_id}}")
async def invoice(invoice_id: str, request: Request) -> Response:
    # The id goes into the page as an escaped attribute; the script asks the API for it, and
    # the API answers 404 for an id that is not this merchant's.
    return _page(request, "invoice", invoice_id=invoice_id[:64])


@router.get(f"{PREFIX}/settlements")
async def settlements(request: Request) -> Response:
    return _page(request, "settlements")


@router.get(f"{PREFIX}/webhooks")
async def webhooks(request: Request) -> Response:
    return _page(request, "webhooks")


@router.get(f"{PREFIX}/settings")
async def settings(request: Request) -> Response:
    return _page(request, "settings")


# --- Charts --------------------------------------------------------------------------------


def _svg(body: str, status: int = 200) -> Response:
    # Private: the numbers are the merchant's. Short-lived: the read models move on.
    return Response(body, status_code=status, media_type=SVG,
                    headers={"Cache-Control": "private, max-age=30"})


async def _chart(request: Request, scope: Scope,
                 draw: Callable[[str], Awaitable[str]]) -> Response:
    """A chart for the signed-in merchant user with `scope`; an image-sized answer otherwise
    (an <img> shows no JSON error)."""
    user = signed_in(request)
    if user is None or user.merchant_id is None:
        return Response(status_code=401, headers={"Cache-Control": "no-store"})
    if scope.value not in user.grants:
        return Response(status_code=403, headers={"Cache-Control": "no-store"})
    return _svg(await draw(user.merchant_id))


@router.get(f"{PREFIX}/charts/volume.svg")
async def volume_chart(request: Request, asset: Annotated[str, Query(max_length=16)] = "TON",
                       days: Annotated[int, Query(ge=1, le=stats.MAX_DAYS)] = stats.DEFAULT_DAYS,
                       ) -> Response:
    """The daily settled volume of one asset over the last `days` days."""
    if asset not in ASSETS:
        return _svg(charts.empty("Daily volume", f"Unknown asset; use {', '.join(ASSETS)}."), 404)
    decimals = ASSETS[asset].decimals

    async def draw(merchant_id: str) -> str:
        found = await stats.overview(deps_of(request), merchant_id, days)
        series = stats.daily_series(found.daily, asset, found.first_day, found.last_day)
        return charts.volume_chart(asset, decimals, [charts.DayVolume(d, u) for d, u in series])
    return await _chart(request, Scope.BALANCES_READ, draw)


@router.get(f"{PREFIX}/charts/confirmations.svg")
async def confirmations_chart(request: Request) -> Response:
    """How long the merchant's recent payments took to confirm."""
    async def draw(merchant_id: str) -> str:
        found = await stats.confirmation_times(deps_of(request), merchant_id)
        return charts.confirmation_chart([charts.ConfirmationTime(f"{p.id} ({p.asset})", p.seconds)
                                          for p in found])
    return await _chart(request, Scope.PAYMENTS_READ, draw)
