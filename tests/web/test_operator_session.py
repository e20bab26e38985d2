"""The operator API with the dashboard's operator session (and still the token): merchants
(list, create with a first key shown once, fee rate), the platform fee balance, chain and
consumer progress, and webhook delivery failures across merchants. A merchant's user is
refused with a sentence. On both databases."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from krypton.adapters.chains.tron.reader import EVENTS_CURSOR
from krypton.app import merchants
from krypton.bootstrap import Container
from krypton.domain.roles import Role
from krypton.domain.webhooks import Delivery, DeliveryStatus, Endpoint
from tests.conftest import auth
from tests.support.clock import ManualClock
from tests.web.conftest import Paid, SignIn, csrf
from tests.web.helpers import API, error_of

OPERATOR = f"{API}/operator"
TOKEN = "operator-secret-token-for-tests"


async def test_the_operator_lists_creates_and_refees_merchants(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    operator = await signed_in(Role.OPERATOR, None)
    listed = (await operator.get(f"{OPERATOR}/merchants")).json()
    assert [(m["id"], m["name"], m["fee_bps"], m["fee_percentage"]) for m in listed["data"]] == [
        (merchant.merchant_id, "Test shop", 100, "1")]

    created = await operator.post(f"{OPERATOR}/merchants", json={"name": " Tea house ", "fee_bps": 150},
                                  headers=csrf(operator))
    assert created.status_code == 201, created.text
    shop = created.json()
    assert shop["name"] == "Tea house" and shop["fee_percentage"] == "1.5" and shop["object"] == "merchant"
    # Its first key, shown once, works for the new merchant.
    invoice = await operator.post(f"{API}/invoices", json={"amount": "10", "currency": "TON"},
                                  headers=auth(shop["api_key"]))
    assert invoice.status_code == 201 and invoice.json()["platform_fee_percentage"] == "1.5"
    assert shop["api_key"] not in (await operator.get(f"{OPERATOR}/merchants")).text

    changed = await operator.patch(f"{OPERATOR}/merchants/{shop['id']}", json={"fee_bps": 75},
                                   headers=csrf(operator))
    assert changed.status_code == 200, changed.text
    assert changed.json()["fee_bps"] == 75 and changed.json()["fee_percentage"] == "0.75"
    later = await operator.post(f"{API}/invoices", json={"amount": "10", "currency": "TON"},
                                headers=auth(shop["api_key"]))
    assert later.json()["platform_fee_percentage"] == "0.75"
    earlier = await operator.get(f"{API}/invoices/{invoice.json()['id']}", headers=auth(shop["api_key"]))
    assert earlier.json()["platform_fee_percentage"] == "1.5"  # an invoice keeps its fee


async def test_bad_merchant_changes_are_refused_with_a_sentence(
        container: Container, merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    operator = await signed_in(Role.OPERATOR, None)
    too_high = await operator.patch(f"{OPERATOR}/merchants/{merchant.merchant_id}",
                                    json={"fee_bps": 10_001}, headers=csrf(operator))
    assert error_of(too_high, 422, "invalid_request")["field"] == "fee_bps"
    missing = await operator.patch(f"{OPERATOR}/merchants/mer_nope", json={"fee_bps": 10},
                                   headers=csrf(operator))
    assert error_of(missing, 404, "not_found")["message"] == "No merchant 'mer_nope'."
    error_of(await operator.post(f"{OPERATOR}/merchants", json={"name": "  "}, headers=csrf(operator)),
             422, "invalid_request")
    error_of(await operator.post(f"{OPERATOR}/merchants", json={"name": "X", "ton_address": "nope"},
                                 headers=csrf(operator)), 422, "invalid_address")
    error_of(await operator.patch(f"{OPERATOR}/merchants/{merchant.merchant_id}", json={"fee_bps": 5}),
             403, "csrf_failed")
    assert [m.fee_bps for m in await merchants.list_merchants(container.deps)] == [100]


async def test_a_merchants_user_is_refused_the_operator_api(
        merchant: merchants.IssuedKey, signed_in: SignIn) -> None:
    owner = await signed_in(Role.OWNER, merchant.merchant_id)
    for path in ("/merchants", "/fees", "/health", "/unmatched", "/webhook-failures"):
        error = error_of(await owner.get(OPERATOR + path), 403, "insufficient_permission")
        assert error["message"].startswith("Your role (owner) lacks the 'platform:read' permission")
    refused = await owner.post(f"{OPERATOR}/merchants", json={"name": "Mine"}, headers=csrf(owner))
    assert "'merchants:manage'" in error_of(refused, 403, "insufficient_permission")["message"]


async def test_the_token_still_works_and_nothing_is_a_401(
        container: Container, api: httpx.AsyncClient, merchant: merchants.IssuedKey) -> None:
    from krypton.web.app import create_app

    error = error_of(await api.get(f"{OPERATOR}/merchants"), 401, "unauthorized")
    assert "Sign in to the dashboard as the operator" in error["message"]
    container.settings = container.settings.model_copy(update={"operator_token": SecretStr(TOKEN)})
    app = create_app(container, run_workers=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        listed = await client.get(f"{OPERATOR}/merchants", headers=auth(TOKEN))
        assert listed.status_code == 200 and len(listed.json()["data"]) == 1
        made = await client.post(f"{OPERATOR}/merchants", json={"name": "Scripted"}, headers=auth(TOKEN))
        assert made.status_code == 201, made.text
        error_of(await client.get(f"{OPERATOR}/fees", headers=auth(merchant)), 401, "unauthorized")


async def test_platform_fees_are_the_ledgers_fee_accounts(
        paid: Paid, signed_in: SignIn) -> None:
    operator = await signed_in(Role.OPERATOR, None)
    fees = (await operator.get(f"{OPERATOR}/fees")).json()
    # 10 TON paid at the default 1 %.
    assert fees == {"object": "platform_fees",
                    "balances": [{"asset": "TON", "held": "0.1", "in_collectors": "0"}]}


async def test_health_shows_chain_progress_and_consumer_backlog(
        container: Container, clock: ManualClock, paid: Paid, signed_in: SignIn) -> None:
    behind = clock.now() - timedelta(seconds=90)
    async with container.deps.uow() as uow:
        await uow.cursors.set(EVENTS_CURSOR, str(int(behind.timestamp() * 1000)))
        await uow.commit()
    operator = await signed_in(Role.OPERATOR, None)
    health = (await operator.get(f"{OPERATOR}/health")).json()
    chains = {c["chain"]: c for c in health["chains"]}
    assert set(chains) == {"ton", "tron"}  # the devnet's platform account and Tron contract
    assert chains["tron"]["lag_seconds"] == 90
    in_ms = behind.replace(microsecond=behind.microsecond // 1000 * 1000)  # a cursor holds ms
    assert chains["tron"]["read_up_to"] == in_ms.isoformat()
    assert chains["ton"]["cursor"] is None and chains["ton"]["lag_seconds"] is None
    consumers = {c["name"]: c["behind"] for c in health["consumers"]}
    # No worker ran: every event of the paid invoice is still waiting for each consumer.
    assert set(consumers) == {"projections", "webhooks"}  # no export without KRYPTON_NATS_URL
    assert consumers["projections"] > 0
    assert health["providers"] == []  # no worker ran: no provider has reported yet


async def test_webhook_failures_across_merchants_newest_first(
        container: Container, clock: ManualClock, merchant: merchants.IssuedKey,
        other: merchants.IssuedKey, signed_in: SignIn) -> None:
    now = clock.now()
    hooks = [Endpoint(f"whe_{n}", key.merchant_id, f"https://shop{n}.example/hook", ("*",), True,
                      "sealed", now) for n, key in enumerate((merchant, other))]
    cases = [  # (endpoint, status, attempts, last_status): which deliveries count as failing
        (0, DeliveryStatus.FAILED, 8, 500), (1, DeliveryStatus.PENDING, 2, 503),
        (0, DeliveryStatus.PENDING, 0, None), (1, DeliveryStatus.SUCCEEDED, 1, 200),
        (1, DeliveryStatus.PENDING, 1, None)]
    deliveries = [Delivery(f"whd_{n}", f"whe_{hook}", hooks[hook].merchant_id, f"evt_{n}", "invoice.paid",
                           b"{}", status, attempts, None, now + timedelta(seconds=n),
                           last_status=last, last_error="timed out" if n == 4 else None)
                  for n, (hook, status, attempts, last) in enumerate(cases)]
    async with container.deps.uow() as uow:
        for hook in hooks:
            await uow.webhooks.add_endpoint(hook)
        await uow.webhooks.add_deliveries(deliveries)
        for delivery in deliveries:
            await uow.webhooks.save_delivery(delivery)
        await uow.commit()
    operator = await signed_in(Role.OPERATOR, None)
    first = (await operator.get(f"{OPERATOR}/webhook-failures?limit=2")).json()
    assert [(d["id"], d["merchant_id"], d["endpoint_url"]) for d in first["data"]] == [
        ("whd_4", other.merchant_id, "https://shop1.example/hook"),
        ("whd_1", other.merchant_id, "https://shop1.example/hook")]
    assert first["has_more"] is True
    rest = (await operator.get(f"{OPERATOR}/webhook-failures?limit=2&starting_after=whd_1")).json()
    assert [(d["id"], d["status"], d["attempts"], d["last_status"]) for d in rest["data"]] == [
        ("whd_0", "failed", 8, 500)]
    assert rest["has_more"] is False
    error_of(await operator.get(f"{OPERATOR}/webhook-failures?starting_after=whd_nope"), 422,
             "invalid_request")


@pytest.mark.parametrize("path", ["/merchants", "/fees", "/health", "/unmatched", "/webhook-failures"])
async def test_every_operator_read_answers_the_operator_session(
        signed_in: SignIn, path: str) -> None:
    operator = await signed_in(Role.OPERATOR, None)
    response = await operator.get(OPERATOR + path)
    assert response.status_code == 200, response.text
