"""Dashboard users' roles and the one table of what each role may do.

A role grants API scopes (`Scope`, the same strings an API key holds, so a signed-in user
passes the merchant API's `require(Scope.…)` checks like a key) and dashboard permissions
(`Permission`: things no API key may do, such as managing users)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from krypton.domain.errors import DomainError
from krypton.domain.scopes import Scope


class Role(StrEnum):
    OWNER = "owner"
    DEVELOPER = "developer"
    VIEWER = "viewer"
    # The platform's owner: no merchant of its own, sees across merchants.
    OPERATOR = "operator"


class Permission(StrEnum):
    """Dashboard-only grants. Kept apart from `Scope` because API keys hold scopes: a key
    must never be able to manage users or other keys."""

    APIKEYS_MANAGE = "apikeys:manage"
    USERS_MANAGE = "users:manage"
    SETTINGS_MANAGE = "settings:manage"  # the merchant's own: confirmations, TON address
    # Operator only: platform-wide.
    PLATFORM_READ = "platform:read"
    MERCHANTS_MANAGE = "merchants:manage"


Grant = Scope | Permission

READ_SCOPES: frozenset[Grant] = frozenset(s for s in Scope if s.value.endswith(":read"))
_VIEWER = READ_SCOPES
_DEVELOPER: frozenset[Grant] = _VIEWER | frozenset[Grant](
    {Scope.INVOICES_WRITE, Scope.WEBHOOKS_WRITE, Permission.APIKEYS_MANAGE})
_OWNER: frozenset[Grant] = frozenset[Grant](Scope) | {Permission.APIKEYS_MANAGE,
                                                      Permission.USERS_MANAGE,
                                                      Permission.SETTINGS_MANAGE}

# The permission table: the only place a role's rights are written down.
GRANTS: Mapping[Role, frozenset[Grant]] = {
    Role.VIEWER: _VIEWER,
    Role.DEVELOPER: _DEVELOPER,
    Role.OWNER: _OWNER,
    # Operator permissions only: an operator acts on no merchant's behalf, so it holds no
    # merchant-API scope (a merchant's own users and keys do that).
    Role.OPERATOR: frozenset[Grant]({Permission.PLATFORM_READ, Permission.MERCHANTS_MANAGE}),
}

MERCHANT_ROLES = frozenset({Role.OWNER, Role.DEVELOPER, Role.VIEWER})


def allows(role: Role, grant: Grant) -> bool:
    return grant in GRANTS[role]


def grants_of(role: Role) -> frozenset[str]:
    """Everything `role` may do, as the plain strings a principal carries."""
    return frozenset(g.value for g in GRANTS[role])


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise DomainError(f"Unknown role '{text}'; choose one of {', '.join(Role)}.",
                          field="role") from None


def check_membership(role: Role, merchant_id: str | None) -> None:
    """A merchant role belongs to one merchant; the operator to none."""
    if role is Role.OPERATOR and merchant_id is not None:
        raise DomainError("An operator belongs to no merchant; leave the merchant out.",
                          field="merchant_id")
    if role in MERCHANT_ROLES and not merchant_id:
        raise DomainError(f"A user with the role {role} belongs to a merchant; give its id (mer_…).",
                          field="merchant_id")
