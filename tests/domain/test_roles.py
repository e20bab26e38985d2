"""The role permission table, cell by cell: every role against every scope and permission,
compared with the table written out here by hand (a new scope or permission fails
`test_the_table_below_names_every_grant` until someone decides who gets it)."""

from __future__ import annotations

from itertools import product

import pytest

from krypton.domain.errors import DomainError
from krypton.domain.roles import (
    GRANTS,
    MERCHANT_ROLES,
    Permission,
    Role,
    allows,
    check_membership,
    grants_of,
    parse_role,
)
from krypton.domain.scopes import Scope

OW, D, V, P = Role.OWNER, Role.DEVELOPER, Role.VIEWER, Role.OPERATOR

# grant -> the roles that have it. Written out, not computed: this is the specification.
EXPECTED: dict[str, set[Role]] = {
    "invoices:read": {OW, D, V},
    "invoices:write": {OW, D},
    "payments:read": {OW, D, V},
    "settlements:read": {OW, D, V},
    "balances:read": {OW, D, V},
    "events:read": {OW, D, V},
    "webhooks:write": {OW, D},
    "refunds:write": {OW},  # moves money back out: owners only
    "payouts:write": {OW},  # sends the balance out to an address: owners only
    "apikeys:manage": {OW, D},
    "users:manage": {OW},
    "settings:manage": {OW},
    "platform:read": {P},
    "merchants:manage": {P},
}
ALL_GRANTS: list[Scope | Permission] = [*Scope, *Permission]


def test_the_table_below_names_every_grant() -> None:
    assert sorted(g.value for g in ALL_GRANTS) == sorted(EXPECTED)
    assert set(GRANTS) == set(Role)


@pytest.mark.parametrize(("role", "grant"), list(product(Role, ALL_GRANTS)),
                         ids=lambda v: str(v))
def test_each_role_has_exactly_the_grants_of_the_table(role: Role, grant: Scope | Permission) -> None:
    assert allows(role, grant) is (role in EXPECTED[grant.value])
    assert (grant.value in grants_of(role)) is (role in EXPECTED[grant.value])


def test_roles_nest_viewer_in_developer_in_owner() -> None:
    assert GRANTS[V] < GRANTS[D] < GRANTS[OW]


def test_viewer_has_every_read_scope_and_nothing_that_writes() -> None:
    assert grants_of(V) == {s.value for s in Scope if s.value.endswith(":read")}


def test_the_operator_shares_nothing_with_merchant_roles() -> None:
    merchant_side = set().union(*(GRANTS[r] for r in MERCHANT_ROLES))
    assert not GRANTS[P] & merchant_side
    assert not any(isinstance(g, Scope) for g in GRANTS[P])  # acts for no merchant


def test_roles_parse_from_text_or_say_which_exist() -> None:
    assert parse_role(" Owner ") is OW
    with pytest.raises(DomainError) as raised:
        parse_role("admin")
    assert raised.value.message == ("Unknown role 'admin'; choose one of owner, developer, viewer, "
                                    "operator.")
    assert raised.value.field == "role"


@pytest.mark.parametrize(("role", "merchant_id"), list(product(Role, ["mer_1", None])),
                         ids=lambda v: str(v))
def test_merchant_roles_need_a_merchant_and_the_operator_none(role: Role,
                                                              merchant_id: str | None) -> None:
    fits = (role is P) == (merchant_id is None)
    if fits:
        check_membership(role, merchant_id)
        return
    with pytest.raises(DomainError) as raised:
        check_membership(role, merchant_id)
    assert raised.value.field == "merchant_id"
    assert raised.value.message.endswith(".")
