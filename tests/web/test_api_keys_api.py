"""/api/v1/api-keys: only a dashboard session whose role has apikeys:manage lists, creates
and revokes a merchant's keys; an API key never can; another merchant's key is not there.
On both databases, through the whole app (create_app) with real session cookies."""

from __future__ import annotations

import httpx

from krypton.adapters.db import tables
from krypton.app import merchants
from krypton.bootstrap import Container
from krypton.domain.roles import Role, grants_of
from tests.conftest import auth
from tests.web.conftest import SignIn, csrf
from tests.web.helpers import API, count_rows, error_of

PASSWORD = "correct horse battery"
KEYS = f"{API}/api-keys"

async def test_an_owner_creates_lists_and_revokes_a_key_and_the_revoked_key_is_refused(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    created = await owner.post(KEYS, json={"scopes": ["invoices:read"]}, headers=csrf(owner))
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["secret"].startswith("kr_") and key["secret"].startswith(key["prefix"])
    assert key["scopes"] == ["invoices:read"] and key["status"] == "active"
    assert key["revoked_at"] is None and key["object"] == "api_key"

    # The secret works as an API key, with exactly its scope.
    assert (await owner.get(f"{API}/invoices", headers=auth(key["secret"]))).status_code == 200
    error_of(await owner.get(f"{API}/balances", headers=auth(key["secret"])), 403, "insufficient_scope")

    listed = (await owner.get(KEYS)).json()
    assert [k["id"] for k in listed["data"]] == [merchant.id, key["id"]]  # oldest first
    assert "secret" not in listed["data"][1] and key["secret"] not in str(listed)
    assert listed["has_more"] is False

    revoked = await owner.delete(f"{KEYS}/{key['id']}", headers=csrf(owner))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"] is not None
    error_of(await owner.get(f"{API}/invoices", headers=auth(key["secret"])), 401, "unauthorized")
    again = await owner.delete(f"{KEYS}/{key['id']}", headers=csrf(owner))
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    statuses = {k["id"]: k["status"] for k in (await owner.get(KEYS)).json()["data"]}
    assert statuses == {merchant.id: "active", key["id"]: "revoked"}


async def test_no_scopes_given_means_every_scope_of_the_role(
        merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    developer = await signed_in(Role.DEVELOPER, merchant.merchant_id)
    created = await developer.post(KEYS, json={}, headers=csrf(developer))
    assert created.status_code == 201, created.text
    # Every scope a developer holds: all but refunds:write, which moves money (owners only).
    assert created.json()["scopes"] == [s for s in merchants.SCOPES if s in grants_of(Role.DEVELOPER)]
    assert "refunds:write" not in created.json()["scopes"]


async def test_a_viewer_session_is_refused_with_a_sentence(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    viewer = await signed_in(Role.VIEWER, merchant.merchant_id)
    before = await count_rows(container, tables.api_keys)
    for response in (await viewer.get(KEYS),
                     await viewer.post(KEYS, json={}, headers=csrf(viewer)),
                     await viewer.delete(f"{KEYS}/{merchant.id}", headers=csrf(viewer))):
        error = error_of(response, 403, "insufficient_permission")
        assert error["message"] == ("Your role (viewer) lacks the 'apikeys:manage' permission; ask "
                                    "an owner of the account to do it.")
    assert await count_rows(container, tables.api_keys) == before
    assert (await viewer.get(f"{API}/invoices", headers=auth(merchant))).status_code == 200


async def test_an_api_key_cannot_list_mint_or_revoke_keys(
        container: Container, api: httpx.AsyncClient, merchant: merchants.IssuedKey) -> None:
    before = await count_rows(container, tables.api_keys)
    for response in (await api.get(KEYS, headers=auth(merchant)),
                     await api.post(KEYS, json={"scopes": ["invoices:read"]}, headers=auth(merchant)),
                     await api.delete(f"{KEYS}/{merchant.id}", headers=auth(merchant))):
        error = error_of(response, 403, "session_required")
        assert "an API key or token cannot do it" in error["message"]
    assert await count_rows(container, tables.api_keys) == before
    assert (await api.get(f"{API}/invoices", headers=auth(merchant))).status_code == 200  # not revoked
    error_of(await api.get(KEYS), 401, "unauthorized")  # nothing at all


async def test_another_merchants_key_is_not_there(
        container: Container, merchant: merchants.IssuedKey, other: merchants.IssuedKey,
        signed_in: SignIn) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    listed = (await owner.get(KEYS)).json()["data"]
    assert [k["id"] for k in listed] == [merchant.id]
    missing = await owner.delete(f"{KEYS}/{other.id}", headers=csrf(owner))
    error = error_of(missing, 404, "not_found")
    assert error["message"] == f"No API key '{other.id}'."
    assert error_of(await owner.delete(f"{KEYS}/key_nope", headers=csrf(owner)), 404,
                    "not_found")["message"] == "No API key 'key_nope'."
    async with container.deps.uow(write=False) as uow:
        record = await uow.api_keys.get(other.id)
    assert record is not None and record.revoked_at is None


async def test_changes_need_the_csrf_header_and_valid_scopes(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    before = await count_rows(container, tables.api_keys)
    error_of(await owner.post(KEYS, json={}), 403, "csrf_failed")
    error_of(await owner.delete(f"{KEYS}/{merchant.id}"), 403, "csrf_failed")
    unknown = error_of(await owner.post(KEYS, json={"scopes": ["keys:mint"]}, headers=csrf(owner)),
                       422, "invalid_request")
    assert "scopes" in (unknown["field"] or "")
    error_of(await owner.post(KEYS, json={"scopes": []}, headers=csrf(owner)), 422, "invalid_request")
    error_of(await owner.post(KEYS, json={"name": "x"}, headers=csrf(owner)), 422, "invalid_request")
    assert await count_rows(container, tables.api_keys) == before


async def test_the_operator_session_manages_no_merchants_keys(
        merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    operator = await signed_in(Role.OPERATOR, None)
    error = error_of(await operator.get(KEYS), 403, "insufficient_permission")
    assert "(operator)" in error["message"]
