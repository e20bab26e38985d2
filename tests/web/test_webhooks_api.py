"""/api/v1/webhook-endpoints: the secret shown once and stored sealed, unsafe URLs refused
with a sentence, scopes, tenant isolation, the delivery log and redelivery."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from krypton.adapters.db import tables
from krypton.app import webhooks
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.config import Settings
from krypton.web.api.schemas import WebhookObjects
from tests.conftest import auth
from tests.support.receiver import Receiver
from tests.web.conftest import KeyFactory
from tests.web.helpers import API, count_rows, error_of

HOOKS = f"{API}/webhook-endpoints"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=db_url, api_key_cache_seconds=0,
                    webhooks_allow_loopback=True, rate_limit_global="100000/second",
                    rate_limit_reads="100000/hour", rate_limit_invoice_create="100000/hour")


async def _create(api: httpx.AsyncClient, key: IssuedKey, url: str, **fields: object) -> dict[str, object]:
    response = await api.post(HOOKS, json={"url": url, **fields}, headers=auth(key))
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_the_secret_is_shown_once_and_stored_sealed(api: httpx.AsyncClient, merchant: IssuedKey,
                                                           container: Container) -> None:
    created = await _create(api, merchant, "http://127.0.0.1:9/hooks", events=["invoice.paid"],
                            description="orders")
    secret = created["secret"]
    assert isinstance(secret, str) and secret.startswith("whsec_")
    assert (created["object"], created["events"], created["enabled"]) == ("webhook_endpoint",
                                                                          ["invoice.paid"], True)
    shown = (await api.get(f"{HOOKS}/{created['id']}", headers=auth(merchant))).json()
    assert "secret" not in shown and shown["description"] == "orders"
    listed = (await api.get(HOOKS, headers=auth(merchant))).json()
    assert [e["id"] for e in listed["data"]] == [created["id"]] and "secret" not in listed["data"][0]
    async with container.db.reader.connect() as conn:
        stored = (await conn.execute(sa.select(tables.webhook_endpoints.c.secret))).scalar_one()
    assert secret.removeprefix("whsec_") not in stored


@pytest.mark.parametrize(("url", "says"), [
    ("http://10.0.0.5/hooks", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://0x0a000001/", "private"),
    ("http://[::ffff:10.0.0.1]/", "10.0.0.1"),
    ("http://100.64.0.1/", "100.64.0.1"),
    ("ftp://example.com/", "http"),
    ("http://user:pass@127.0.0.1/", "user"),
    ("not a url", "URL"),
])
async def test_unsafe_urls_are_refused_with_a_sentence_and_nothing_is_written(
        api: httpx.AsyncClient, merchant: IssuedKey, container: Container, url: str, says: str) -> None:
    error = error_of(await api.post(HOOKS, json={"url": url}, headers=auth(merchant)), 422, "unsafe_url")
    assert says in error["message"] and error["field"] == "url"
    assert await count_rows(container, tables.webhook_endpoints) == 0


async def test_unknown_event_types_are_refused(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    response = await api.post(HOOKS, json={"url": "http://127.0.0.1:9/", "events": ["invoice.payed"]},
                              headers=auth(merchant))
    assert response.status_code == 422 and "invoice.payed" in response.text


async def test_update_rotate_and_delete(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    created = await _create(api, merchant, "http://127.0.0.1:9/a")
    path = f"{HOOKS}/{created['id']}"
    changed = await api.patch(path, json={"url": "http://127.0.0.1:9/b", "events": ["payment.confirmed"],
                                          "enabled": False}, headers=auth(merchant))
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["url"], body["events"], body["enabled"]) == (
        "http://127.0.0.1:9/b", ["payment.confirmed"], False)
    assert body["disabled_reason"] == "disabled by the merchant"
    error_of(await api.patch(path, json={"url": "http://192.168.0.1/"}, headers=auth(merchant)),
             422, "unsafe_url")
    rotated = (await api.post(f"{path}/rotate-secret", json={"expires_in": 3600},
                              headers=auth(merchant))).json()
    assert rotated["secret"] != created["secret"] and rotated["old_secret_expires_at"] is not None
    assert (await api.delete(path, headers=auth(merchant))).status_code == 204
    error_of(await api.get(path, headers=auth(merchant)), 404, "not_found")


async def test_a_test_ping_shows_in_the_delivery_log_and_can_be_redelivered(
        api: httpx.AsyncClient, merchant: IssuedKey, container: Container) -> None:
    with Receiver() as hooks:
        created = await _create(api, merchant, hooks.url)
        path = f"{HOOKS}/{created['id']}"
        ping = await api.post(f"{path}/test", headers=auth(merchant))
        assert ping.status_code == 202 and ping.json()["event_type"] == "webhook.ping"
        objects = WebhookObjects("http://testserver", testnet=False)
        await webhooks.relay(container.deps, objects)
        assert await webhooks.deliver_due(container.deps, container.webhook_kit()) == 1
        log = (await api.get(f"{path}/deliveries", headers=auth(merchant))).json()
        (delivery,) = log["data"]
        assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == ("succeeded", 1, 200)
        detail = (await api.get(f"{path}/deliveries/{delivery['id']}", headers=auth(merchant))).json()
        (attempt,) = detail["attempt_log"]
        assert attempt["request_headers"]["webhook-id"] == delivery["event_id"]
        assert attempt["response_excerpt"] == "answer 200"
        assert detail["request_body"] == hooks.bodies()[0].decode()
        again = await api.post(f"{path}/deliveries/{delivery['id']}/redeliver", headers=auth(merchant))
        assert again.status_code == 202 and again.json()["status"] == "pending"
        assert await webhooks.deliver_due(container.deps, container.webhook_kit()) == 1
        assert len(hooks.received) == 2
        failed = (await api.get(f"{path}/deliveries", params={"status": "failed"},
                                headers=auth(merchant))).json()
        assert failed["data"] == []


@pytest.mark.parametrize(("method", "suffix"), [
    ("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/rotate-secret"), ("POST", "/test"),
    ("GET", "/deliveries"), ("GET", "/deliveries/{delivery}"), ("POST", "/deliveries/{delivery}/redeliver"),
])
async def test_another_merchants_endpoint_is_404(api: httpx.AsyncClient, merchant: IssuedKey,
                                                 other: IssuedKey, container: Container,
                                                 method: str, suffix: str) -> None:
    created = await _create(api, merchant, "http://127.0.0.1:9/")
    ping = (await api.post(f"{HOOKS}/{created['id']}/test", headers=auth(merchant))).json()
    url = f"{HOOKS}/{created['id']}" + suffix.format(delivery=ping["id"])
    kwargs = {"json": {"enabled": False}} if method == "PATCH" else {}
    error_of(await api.request(method, url, headers=auth(other), **kwargs), 404, "not_found")
    # Nor can it reach the owner's delivery through an endpoint of its own.
    own = await _create(api, other, "http://127.0.0.1:9/")
    if "{delivery}" in suffix:
        theirs = f"{HOOKS}/{own['id']}" + suffix.format(delivery=ping["id"])
        error_of(await api.request(method, theirs, headers=auth(other)), 404, "not_found")
    assert (await api.get(f"{HOOKS}/{created['id']}", headers=auth(merchant))).json()["enabled"] is True
    assert [e["id"] for e in (await api.get(HOOKS, headers=auth(other))).json()["data"]] == [own["id"]]


async def test_webhook_routes_need_the_webhooks_scope(api: httpx.AsyncClient, key_with: KeyFactory) -> None:
    reader = await key_with("invoices:read", "events:read")
    error_of(await api.get(HOOKS, headers=auth(reader)), 403, "insufficient_scope")
    error_of(await api.post(HOOKS, json={"url": "http://127.0.0.1:9/"}, headers=auth(reader)),
             403, "insufficient_scope")
