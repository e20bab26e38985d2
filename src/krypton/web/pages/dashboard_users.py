"""Dashboard page /dashboard/users: a merchant's owners list its users, add one with an
initial password, change a user's role, and disable or enable a user. A shell (dashboard.py);
its script (static/dash-users.js) fetches and changes the data through /api/v1/users with
the session cookie. A role without `users:manage` gets a 403 with a sentence; without a
session the browser is sent to sign in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from krypton.domain.roles import Permission
from krypton.domain.users import MIN_PASSWORD_LENGTH
from krypton.web.pages.dashboard import PREFIX, shell, signed_in, to_sign_in

router = APIRouter(include_in_schema=False)
SCRIPT = "dash-users.js"  # served by dashboard.FILES
TITLE = "Users"


@router.get(f"{PREFIX}/users")
async def users_page(request: Request) -> Response:
    user = signed_in(request)
    if user is None:
        return to_sign_in(request)
    if Permission.USERS_MANAGE not in user.grants:
        response = shell(request, user, "dashboard/permission_refused.html", TITLE,
                         reason=f"Your role ({user.role}) does not have the "
                                f"'{Permission.USERS_MANAGE}' permission this page needs; ask an "
                                "owner of the account.")
        response.status_code = 403
        return response
    return shell(request, user, "dashboard/users.html", TITLE, script=SCRIPT,
                 min_password=MIN_PASSWORD_LENGTH)
