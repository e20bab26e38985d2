"""PATCH /api/v1/merchant: a merchant's owner, signed in, changes the confirmations and the
TON receiving address; new invoices use them; a developer, a viewer and an API key cannot;
bad values are a sentence and change nothing. On both databases."""

from __future__ import annotations

import httpx

from krypton.app import merchants
from krypton.bootstrap import Container
from krypton.domain.roles import Role
from tests.conftest import auth
from tests.web.conftest import SignIn, csrf
from tests.web.helpers import API, error_of, events_of_type

ADDRESS = "0:" + "ab" * 32


async def test_the_owner_changes_confirmations_and_address_and_new_invoices_use_them(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn,
        api: httpx.AsyncClient) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    changed = await owner.patch(f"{API}/merchant", json={"confirmations_override": 3, "ton_address": ADDRESS},
                                headers=csrf(owner))
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["confirmations_override"], body["ton_address"]) == (3, ADDRESS)
    assert body["ton_receiving_address"] == ADDRESS
    invoice = (await api.post(f"{API}/invoices", json={"amount": "1", "currency": "TON"},
                              headers=auth(merchant))).json()
    ton = next(o for o in invoice["payment_options"] if o["method"] == "ton")
    assert ton["address"].startswith("UQCr")  # the merchant's own address, as a wallet shows it
    assert await events_of_type(container, "merchant.updated") == [merchant.merchant_id]
    # Only what is sent changes; null goes back to the defaults.
    again = await owner.patch(f"{API}/merchant", json={"confirmations_override": None}, headers=csrf(owner))
    assert (again.json()["confirmations_override"], again.json()["ton_address"]) == (None, ADDRESS)


async def test_bad_values_are_a_sentence_and_change_nothing(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    for body in ({"confirmations_override": 0}, {"confirmations_override": 101},
                 {"ton_address": "not an address"}):
        answer = await owner.patch(f"{API}/merchant", json=body, headers=csrf(owner))
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["message"].endswith(".")
    assert await events_of_type(container, "merchant.updated") == []


async def test_only_the_owner_may_and_never_with_an_api_key(
        merchant: merchants.IssuedKey, signed_in: SignIn, api: httpx.AsyncClient) -> None:
    for role in (Role.DEVELOPER, Role.VIEWER):
        user = await signed_in(role, merchant.merchant_id)
        error_of(await user.patch(f"{API}/merchant", json={"confirmations_override": 2}, headers=csrf(user)),
                 403, "insufficient_permission")
    answer = await api.patch(f"{API}/merchant", json={"confirmations_override": 2}, headers=auth(merchant))
    assert answer.status_code == 403, answer.text
