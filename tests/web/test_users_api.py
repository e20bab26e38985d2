"""/api/v1/users: a merchant's owner, signed in, lists its users, adds one with an initial
password, changes a role, disables and enables one; a developer, a viewer and an API key
cannot; an owner cannot demote or disable themself nor the last enabled owner; a disabled
user's session ends and it cannot sign in; another merchant's users are not there. On both
databases, through the whole app with real session cookies."""

from __future__ import annotations

import httpx
import pytest

from krypton.adapters.db import tables
from krypton.adapters.db.users import sessions as sessions_table
from krypton.adapters.db.users import users as users_table
from krypton.app import merchants, users
from krypton.bootstrap import Container
from krypton.domain.errors import Conflict, DomainError
from krypton.domain.roles import Role
from tests.conftest import auth
from tests.support.clock import ManualClock
from tests.web.conftest import PASSWORD, SignIn, csrf
from tests.web.helpers import API, count_rows, error_of

USERS = f"{API}/users"
NEW_PASSWORD = "a fine initial password"


async def _me(client: httpx.AsyncClient) -> str:
    answer = await client.get(f"{API}/session")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["user"]["id"])


async def _add(owner: httpx.AsyncClient, email: str, role: str = "viewer") -> dict[str, object]:
    created = await owner.post(USERS, json={"email": email, "role": role, "password": NEW_PASSWORD},
                               headers=csrf(owner))
    assert created.status_code == 201, created.text
    body: dict[str, object] = created.json()
    return body


def _another(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client of the same app with a cookie jar of its own: another browser."""
    return httpx.AsyncClient(transport=client._transport, base_url="http://testserver")


async def _sign_in(client: httpx.AsyncClient, email: str, password: str = NEW_PASSWORD) -> httpx.Response:
    return await client.post(f"{API}/session", json={"email": email, "password": password})


async def test_an_owner_adds_lists_changes_and_disables_users(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    owner_id = await _me(owner)
    added = await _add(owner, "  Ada@Example.com ", "viewer")
    assert (added["email"], added["role"], added["object"]) == ("ada@example.com", "viewer", "user")
    assert added["disabled"] is False and added["disabled_at"] is None
    assert str(added["id"]).startswith("usr_") and "password" not in str(added)

    listed = (await owner.get(USERS)).json()
    assert [u["id"] for u in listed["data"]] == [owner_id, added["id"]]  # oldest first
    assert listed["data"][0]["role"] == "owner" and listed["has_more"] is False
    assert "hash" not in str(listed) and NEW_PASSWORD not in str(listed)

    # The new user signs in with the password the owner chose, as a viewer.
    async with _another(owner) as ada:
        session = await _sign_in(ada, "ada@example.com")
        assert session.status_code == 200, session.text
        assert session.json()["user"]["role"] == "viewer"

    promoted = await owner.patch(f"{USERS}/{added['id']}", json={"role": "developer"}, headers=csrf(owner))
    assert promoted.status_code == 200, promoted.text
    assert (promoted.json()["role"], promoted.json()["disabled"]) == ("developer", False)

    disabled = await owner.patch(f"{USERS}/{added['id']}", json={"disabled": True}, headers=csrf(owner))
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled"] is True
    assert disabled.json()["disabled_at"] == container.deps.clock.now().isoformat()
    assert disabled.json()["role"] == "developer"  # only what was sent changes
    enabled = await owner.patch(f"{USERS}/{added['id']}", json={"disabled": False}, headers=csrf(owner))
    assert (enabled.json()["disabled"], enabled.json()["disabled_at"]) == (False, None)
    async with container.deps.uow(write=False) as uow:
        stored = await uow.users.get(str(added["id"]))
    assert stored is not None and stored.role is Role.DEVELOPER and stored.disabled_at is None


async def test_a_duplicate_email_and_a_bad_body_are_sentences_and_add_nobody(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    await _add(owner, "ada@example.com")
    before = await count_rows(container, users_table)
    duplicate = error_of(await owner.post(USERS, json={"email": "ADA@example.com", "role": "viewer",
                                                       "password": NEW_PASSWORD}, headers=csrf(owner)),
                         409, "conflict")
    assert duplicate["message"] == ("A user with the email 'ada@example.com' exists already; "
                                    "choose another email.")
    short = error_of(await owner.post(USERS, json={"email": "bo@example.com", "role": "viewer",
                                                   "password": "short"}, headers=csrf(owner)),
                     422, "invalid_request")
    assert short["message"] == "The password has 5 characters; choose one of at least 12."
    assert short["field"] == "password"
    for body in ({"email": "bo@example.com", "role": "operator", "password": NEW_PASSWORD},
                 {"email": "not an email", "role": "viewer", "password": NEW_PASSWORD},
                 {"email": "bo@example.com", "role": "viewer"},
                 {"email": "bo@example.com", "role": "viewer", "password": NEW_PASSWORD, "x": 1}):
        error = error_of(await owner.post(USERS, json=body, headers=csrf(owner)), 422, "invalid_request")
        assert error["message"].endswith("."), error
    user_id = (await owner.get(USERS)).json()["data"][1]["id"]
    for body in ({"role": "operator"}, {"disabled": "yes"}, {"name": "x"}):
        error_of(await owner.patch(f"{USERS}/{user_id}", json=body, headers=csrf(owner)), 422,
                 "invalid_request")
    assert await count_rows(container, users_table) == before
    error_of(await owner.post(USERS, json={"email": "bo@example.com", "role": "viewer",
                                           "password": NEW_PASSWORD}), 403, "csrf_failed")


async def test_developers_viewers_and_api_keys_are_refused(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn,
        api: httpx.AsyncClient) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    owner_id = await _me(owner)
    before = await count_rows(container, users_table)
    body = {"email": "eve@example.com", "role": "owner", "password": NEW_PASSWORD}
    for role in (Role.DEVELOPER, Role.VIEWER):
        user = await signed_in(role, merchant.merchant_id)
        for response in (await user.get(USERS), await user.post(USERS, json=body, headers=csrf(user)),
                         await user.patch(f"{USERS}/{owner_id}", json={"disabled": True},
                                          headers=csrf(user))):
            error = error_of(response, 403, "insufficient_permission")
            assert error["message"] == (f"Your role ({role.value}) lacks the 'users:manage' "
                                        "permission; ask an owner of the account to do it.")
    for response in (await api.get(USERS, headers=auth(merchant)),
                     await api.post(USERS, json=body, headers=auth(merchant)),
                     await api.patch(f"{USERS}/{owner_id}", json={"disabled": True}, headers=auth(merchant))):
        assert "an API key or token cannot do it" in error_of(response, 403, "session_required")["message"]
    error_of(await api.get(USERS), 401, "unauthorized")
    operator = await signed_in(Role.OPERATOR, None)
    assert "(operator)" in error_of(await operator.get(USERS), 403, "insufficient_permission")["message"]
    assert await count_rows(container, users_table) == before + 3  # the three signed in above
    async with container.deps.uow(write=False) as uow:
        stored = await uow.users.get(owner_id)
    assert stored is not None and stored.disabled_at is None


async def test_an_owner_cannot_demote_or_disable_themself(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    owner_id = await _me(owner)
    for body, field, words in (({"role": "viewer"}, "role", "take the owner role from yourself"),
                               ({"disabled": True}, "disabled", "disable your own account")):
        error = error_of(await owner.patch(f"{USERS}/{owner_id}", json=body, headers=csrf(owner)),
                         409, "own_account")
        assert error["field"] == field
        assert error["message"] == f"You cannot {words}; ask another owner of the merchant to do it."
    # Setting what is already so is no change, and allowed.
    same = await owner.patch(f"{USERS}/{owner_id}", json={"role": "owner", "disabled": False},
                             headers=csrf(owner))
    assert same.status_code == 200, same.text

    # With a second owner, each may demote the other, and the demoted one loses users:manage
    # at once, though its access token still says owner: the router re-reads the user.
    second = await _add(owner, "second@example.com", "owner")
    async with _another(owner) as other:
        assert (await _sign_in(other, "second@example.com")).status_code == 200
        demoted = await other.patch(f"{USERS}/{owner_id}", json={"role": "developer"}, headers=csrf(other))
        assert demoted.status_code == 200, demoted.text
        error = error_of(await owner.patch(f"{USERS}/{second['id']}", json={"role": "viewer"},
                                           headers=csrf(owner)), 403, "insufficient_permission")
        assert error["message"].startswith("Your role (developer) lacks the 'users:manage'")
    async with container.deps.uow(write=False) as uow:
        team = await uow.users.for_merchant(merchant.merchant_id)
    assert {(u.email, u.role, u.disabled_at) for u in team} == {
        ("owner1@example.com", Role.DEVELOPER, None), ("second@example.com", Role.OWNER, None)}


async def test_the_last_enabled_owner_is_never_demoted_or_disabled(
        fast_container: Container, merchant: merchants.IssuedKey) -> None:
    """Through the API an owner always remains (the actor is one, and may not demote itself);
    the use case holds the rule on its own, under a lock, for whoever calls it."""
    deps, hasher = fast_container.deps, fast_container.password_hasher
    first = await users.add_merchant_user(deps, hasher, merchant.merchant_id, "first@example.com",
                                          NEW_PASSWORD, "owner")
    second = await users.add_merchant_user(deps, hasher, merchant.merchant_id, "second@example.com",
                                           NEW_PASSWORD, Role.OWNER)
    await users.change_merchant_user(deps, merchant.merchant_id, first.id, second.id, disabled=True)
    # `second` (disabled, so no owner any more in effect) acting on `first`, the last enabled one.
    for role, disabled in ((Role.VIEWER, None), (None, True)):
        with pytest.raises(Conflict) as refused:
            await users.change_merchant_user(deps, merchant.merchant_id, second.id, first.id,
                                             role=role, disabled=disabled)
        assert refused.value.code == "last_owner"
        assert refused.value.message == ("first@example.com is the merchant's last enabled owner; "
                                         "make another user an owner first.")
    # Demoting the disabled second owner leaves the first: allowed.
    changed = await users.change_merchant_user(deps, merchant.merchant_id, first.id, second.id,
                                               role="viewer")
    assert (changed.role, changed.disabled_at) == (Role.VIEWER, deps.clock.now())
    with pytest.raises(DomainError, match="not operator; choose one of those"):
        await users.change_merchant_user(deps, merchant.merchant_id, first.id, second.id,
                                         role="operator")
    async with deps.uow(write=False) as uow:
        stored = await uow.users.get(first.id)
    assert stored is not None and stored.role is Role.OWNER and stored.disabled_at is None


async def test_disabling_ends_the_users_sessions_and_it_cannot_sign_in(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn,
        clock: ManualClock) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    developer = await signed_in(Role.DEVELOPER, merchant.merchant_id)  # developer2@example.com
    developer_id = await _me(developer)
    async with _another(owner) as laptop, _another(owner) as phone:  # two more sessions of it
        for client in (laptop, phone):
            assert (await _sign_in(client, "developer2@example.com", PASSWORD)).status_code == 200
            assert (await client.get(f"{API}/invoices")).status_code == 200

        disabled = await owner.patch(f"{USERS}/{developer_id}", json={"disabled": True},
                                     headers=csrf(owner))
        assert disabled.status_code == 200, disabled.text
        async with container.db.writer.connect() as conn:
            tokens = (await conn.execute(sessions_table.select().where(
                sessions_table.c.user_id == developer_id))).all()
        assert len(tokens) == 3 and all(t.revoked_at == clock.now() for t in tokens)

        # At once: who-am-I, refresh and the merchant API say the session ended, though the
        # access tokens themselves are still unexpired.
        error_of(await laptop.get(f"{API}/session"), 401, "session_ended")
        error_of(await developer.post(f"{API}/session/refresh", headers=csrf(developer)), 401,
                 "session_ended")
        error_of(await phone.get(f"{API}/invoices"), 401, "session_ended")
        error_of(await phone.post(f"{API}/invoices", json={"amount": "1", "currency": "TON"},
                                  headers=csrf(phone)), 401, "session_ended")
        # Later the access token lapses on its own, and cannot be renewed.
        clock.advance(minutes=11)
        error_of(await phone.get(f"{API}/invoices"), 401, "session_expired")
        error_of(await phone.post(f"{API}/session/refresh", headers=csrf(phone)), 401, "session_ended")
        refused = error_of(await _sign_in(phone, "developer2@example.com", PASSWORD), 403,
                           "account_disabled")
        assert refused["message"] == ("This account is disabled; ask an owner of your merchant to "
                                      "enable it.")

        # Enabled again (by a fresh owner session: the first one's lapsed too), it signs in.
        owner_again = await signed_in(Role.OWNER, merchant.merchant_id)
        enabled = await owner_again.patch(f"{USERS}/{developer_id}", json={"disabled": False},
                                          headers=csrf(owner_again))
        assert enabled.status_code == 200, enabled.text
        assert (await _sign_in(phone, "developer2@example.com", PASSWORD)).status_code == 200
        assert (await phone.get(f"{API}/invoices")).status_code == 200


async def test_a_disabled_owners_session_is_refused_here_at_once(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    first = await signed_in(Role.OWNER, merchant.merchant_id)
    second = await signed_in(Role.OWNER, merchant.merchant_id)
    second_id = await _me(second)
    assert (await first.patch(f"{USERS}/{second_id}", json={"disabled": True},
                              headers=csrf(first))).status_code == 200
    # Its access token has not lapsed, but managing users re-reads the user: 401 now.
    error_of(await second.get(USERS), 401, "session_ended")
    error_of(await second.post(USERS, json={"email": "x@example.com", "role": "owner",
                                            "password": NEW_PASSWORD}, headers=csrf(second)),
             401, "session_ended")


async def test_another_merchants_users_are_not_there(
        container: Container, merchant: merchants.IssuedKey, other: merchants.IssuedKey,
        signed_in: SignIn) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    owner_id = await _me(owner)
    stranger = await signed_in(Role.OWNER, other.merchant_id)
    stranger_id = await _me(stranger)
    assert [u["id"] for u in (await owner.get(USERS)).json()["data"]] == [owner_id]
    assert [u["id"] for u in (await stranger.get(USERS)).json()["data"]] == [stranger_id]
    for body in ({"disabled": True}, {"role": "viewer"}):
        error = error_of(await owner.patch(f"{USERS}/{stranger_id}", json=body, headers=csrf(owner)),
                         404, "not_found")
        assert error["message"] == f"No user '{stranger_id}'."
    error_of(await owner.patch(f"{USERS}/usr_nope", json={"disabled": True}, headers=csrf(owner)),
             404, "not_found")
    async with container.deps.uow(write=False) as uow:
        untouched = await uow.users.get(stranger_id)
    assert untouched is not None and untouched.role is Role.OWNER and untouched.disabled_at is None
    # A user the owner adds belongs to the owner's merchant, whatever the body says.
    added = await _add(owner, "new@example.com")
    assert added["id"] in [u["id"] for u in (await owner.get(USERS)).json()["data"]]
    assert added["id"] not in [u["id"] for u in (await stranger.get(USERS)).json()["data"]]
    assert (await stranger.get(f"{API}/session")).status_code == 200
    assert await count_rows(container, tables.merchants) == 2


async def test_a_demoted_users_session_has_the_new_roles_rights_at_once(
        merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    developer = await signed_in(Role.DEVELOPER, merchant.merchant_id)
    assert (await developer.get(f"{API}/api-keys")).status_code == 200
    demoted = await owner.patch(f"{USERS}/{await _me(developer)}", json={"role": "viewer"},
                                headers=csrf(owner))
    assert demoted.status_code == 200, demoted.text
    error_of(await developer.get(f"{API}/api-keys"), 403, "insufficient_permission")
    error_of(await developer.post(f"{API}/invoices", json={"amount": "1", "currency": "TON"},
                                  headers=csrf(developer)), 403, "insufficient_scope")
    assert (await developer.get(f"{API}/invoices")).status_code == 200  # a viewer still reads
