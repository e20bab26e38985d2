"""Dashboard pages: a merchant's API keys (/dashboard/api-keys) and the platform operator's
pages (/dashboard/operator/…). Each is a shell; its script (static/dash-keys.js,
dash-operator-*.js) fetches the data from /api/v1/api-keys and /api/v1/operator/* with the
session cookie. A page whose permission the role lacks answers 403 with a sentence (the API
would refuse its data anyway); without a session the browser is sent to sign in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from krypton.app.merchants import SCOPES
from krypton.domain.roles import Permission
from krypton.domain.users import UserPrincipal
from krypton.web.pages.dashboard import PREFIX, shell, signed_in, to_sign_in

router = APIRouter(include_in_schema=False)
OPERATOR = f"{PREFIX}/operator"
# The scripts these pages load (dashboard.FILES serves them).
SCRIPTS = ("dash-keys.js", "dash-operator-overview.js", "dash-operator-merchants.js",
           "dash-operator-unmatched.js", "dash-operator-webhooks.js")


def _page(request: Request, permission: Permission, template: str, title: str, script: str,
          context: Callable[[UserPrincipal], dict[str, Any]] = lambda user: {}) -> Response:
    user = signed_in(request)
    if user is None:
        return to_sign_in(request)
    if permission not in user.grants:
        return _refused(request, user, title, permission)
    return shell(request, user, template, title, script=script, **context(user))


def _refused(request: Request, user: UserPrincipal, title: str, permission: Permission) -> Response:
    response = shell(request, user, "dashboard/permission_refused.html", title,
                     reason=f"Your role ({user.role}) does not have the '{permission}' "
                            "permission this page needs; ask an owner of the account.")
    response.status_code = 403
    return response


@router.get(f"{PREFIX}/api-keys")
async def api_keys(request: Request) -> Response:
    # The scopes the user may grant: a key never gets more than its maker's role.
    return _page(request, Permission.APIKEYS_MANAGE, "dashboard/api_keys.html", "API keys",
                 "dash-keys.js", lambda user: {"scopes": [s for s in SCOPES if s in user.grants],
                              "all_scopes": len(SCOPES)})


@router.get(OPERATOR)
async def overview(request: Request) -> Response:
    return _page(request, Permission.PLATFORM_READ, "dashboard/operator_overview.html", "Platform",
                 "dash-operator-overview.js")


@router.get(f"{OPERATOR}/merchants")
async def merchants(request: Request) -> Response:
    return _page(request, Permission.PLATFORM_READ, "dashboard/operator_merchants.html",
                 "Merchants", "dash-operator-merchants.js",
                 lambda user: {"can_manage": Permission.MERCHANTS_MANAGE in user.grants})


@router.get(f"{OPERATOR}/unmatched")
async def unmatched(request: Request) -> Response:
    return _page(request, Permission.PLATFORM_READ, "dashboard/operator_unmatched.html",
                 "Unmatched transfers", "dash-operator-unmatched.js")


@router.get(f"{OPERATOR}/webhooks")
async def webhook_failures(request: Request) -> Response:
    return _page(request, Permission.PLATFORM_READ, "dashboard/operator_webhooks.html",
                 "Webhook failures", "dash-operator-webhooks.js")
