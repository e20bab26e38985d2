"""The dashboard at /dashboard: pages for merchants' users and the platform operator. Each
page is a server-rendered shell (layout, navigation, words); its script fetches the data
from the same REST API the merchant's servers use, signed in by the session cookie
(web/sessions.py) with the CSRF header on every change. Merchant pages live in
dashboard_merchant.py, operator pages in dashboard_operator.py; this module holds what they
share: who is signed in, the navigation, and the sign-in page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from krypton.domain.errors import NotFound
from krypton.domain.roles import Permission, Role
from krypton.domain.scopes import Scope
from krypton.domain.users import UserPrincipal
from krypton.web.errors import ApiError
from krypton.web.pages.checkout import STATIC
from krypton.web.pages.render import page
from krypton.web.sessions import session_user

router = APIRouter(include_in_schema=False)
PREFIX = "/dashboard"
SIGN_IN = f"{PREFIX}/sign-in"
FILES = {"dashboard.css": "text/css", "dashboard.js": "text/javascript", "sign-in.js": "text/javascript"}
FILES.update({f"dash-{page}.js": "text/javascript" for page in (  # merchant pages
    "overview", "invoices", "invoice", "settlements", "webhooks", "settings")})
FILES.update({f"dash-{page}.js": "text/javascript" for page in (  # API keys, operator pages
    "keys", "operator-overview", "operator-merchants", "operator-unmatched", "operator-webhooks")})
FILES["dash-users.js"] = "text/javascript"  # a merchant's users (dashboard_users.py)


@dataclass(frozen=True)
class Link:
    path: str
    label: str
    needs: str  # the grant (scope or permission) its page needs: without it, not in the menu


# The navigation per kind of user: merchant pages for a merchant's users, platform pages
# for the operator. A page that needs a permission the role lacks is left out of the menu
# and answers 403 (the API would refuse its data anyway).
MERCHANT_NAV = (Link(f"{PREFIX}", "Overview", Scope.BALANCES_READ),
                Link(f"{PREFIX}/invoices", "Invoices", Scope.INVOICES_READ),
                Link(f"{PREFIX}/settlements", "Settlements", Scope.SETTLEMENTS_READ),
                Link(f"{PREFIX}/api-keys", "API keys", Permission.APIKEYS_MANAGE),
                Link(f"{PREFIX}/users", "Users", Permission.USERS_MANAGE),
                Link(f"{PREFIX}/webhooks", "Webhooks", Scope.WEBHOOKS_WRITE),
                Link(f"{PREFIX}/settings", "Settings", Scope.INVOICES_READ))
OPERATOR_NAV = (Link(f"{PREFIX}/operator", "Platform", Permission.PLATFORM_READ),
                Link(f"{PREFIX}/operator/merchants", "Merchants", Permission.PLATFORM_READ),
                Link(f"{PREFIX}/operator/unmatched", "Unmatched transfers", Permission.PLATFORM_READ),
                Link(f"{PREFIX}/operator/webhooks", "Webhook failures", Permission.PLATFORM_READ))


def signed_in(request: Request) -> UserPrincipal | None:
    """The session's user, or None (no cookie, or one that expired: the page sends the
    browser to sign in, where the script refreshes first)."""
    try:
        return session_user(request)
    except ApiError:
        return None


def shell(request: Request, user: UserPrincipal, template: str, title: str,
          **context: Any) -> Response:
    """A dashboard page for `user`: the layout with its navigation around `template`."""
    links = OPERATOR_NAV if user.role is Role.OPERATOR else MERCHANT_NAV
    nav = [link for link in links if link.needs in user.grants]
    return page(template, {"title": title, "user": user, "nav": nav, "path": request.url.path,
                           "lang": "en", **context})


def to_sign_in(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{SIGN_IN}?next={request.url.path}", status_code=303)


@router.get(SIGN_IN)
async def sign_in(request: Request) -> Response:
    return page("dashboard/sign_in.html", {"lang": "en", "title": "Sign in"})


@router.get(PREFIX + "-assets/{name}")
async def asset(name: str) -> FileResponse:
    if name not in FILES:
        raise NotFound(f"No file '{name[:64]}'.", field="name")
    return FileResponse(STATIC / name, media_type=FILES[name], headers={"Cache-Control": "no-cache"})
