"""Webhooks: a merchant's endpoints, the relay that turns events into deliveries, and the
sender that attempts them (signed, retried, logged).

The relay reads the event log like any consumer and writes one delivery per (event,
endpoint) in the same transaction as its position: each event reaches each endpoint once,
at least. A sender claims due deliveries (each claim is a lease: `WebhookRepo.claim`), sends
them outside any transaction, then records every outcome and the endpoints' failure
streaks in one transaction. A sender that dies mid-send leaves its claims to run out; they
are sent again, with the same webhook-id.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from krypton.app.deps import Deps
from krypton.app.ports import (
    Due,
    Sealer,
    Sent,
    StoredEvent,
    UnitOfWork,
    UrlGuard,
    WebhookObjects,
    WebhookSender,
)
from krypton.domain import events
from krypton.domain import webhooks as wh
from krypton.domain.errors import DomainError, NotFound
from krypton.domain.webhooks import Attempt, Delivery, DeliveryStatus, Endpoint, Health, Outcome

RELAY = "webhooks"
# A claimed delivery is hidden from other senders this long: far longer than one attempt
# (10 s timeout), so only a sender that died leaves it to be taken again.
LEASE = timedelta(seconds=60)
# Attempts in flight to one endpoint at a time, from one sender.
PER_ENDPOINT = 16
MAX_DESCRIPTION = 500


@dataclass(frozen=True)
class Kit:
    """What webhooks need beyond `Deps`: the secret sealer, the URL check and the sender."""

    sealer: Sealer
    urls: UrlGuard
    sender: WebhookSender


def _spread(deps: Deps) -> float:
    return int.from_bytes(deps.ids.random_bytes(4), "big") / 2**32


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _secret(kit: Kit, endpoint_id: str, sealed: str) -> str:
    return kit.sealer.open(sealed, aad=endpoint_id.encode()).decode()


# --- endpoints -------------------------------------------------------------------------

async def owned_endpoint(uow: UnitOfWork, merchant_id: str, endpoint_id: str, *,
                         lock: bool = False) -> Endpoint:
    """The merchant's endpoint; another merchant's is as absent as a missing one."""
    endpoint = await uow.webhooks.endpoint(endpoint_id, for_update=lock)
    if endpoint is None or endpoint.merchant_id != merchant_id:
        raise NotFound(f"No webhook endpoint '{endpoint_id}'.", field="endpoint_id")
    return endpoint


def _description(text: str | None) -> str | None:
    if text is not None and len(text) > MAX_DESCRIPTION:
        raise DomainError(f"description is at most {MAX_DESCRIPTION} characters.", field="description")
    return text


async def create_endpoint(deps: Deps, kit: Kit, merchant_id: str, url: str,
                          event_types: Collection[str], description: str | None = None,
                          enabled: bool = True) -> tuple[Endpoint, str]:
    """A new endpoint and its signing secret: the only time the secret is shown."""
    chosen = wh.check_event_filter(event_types, events.WEBHOOK_TYPES)
    await kit.urls.check(url)
    endpoint_id = deps.ids.new("whe")
    secret = wh.new_secret(deps.ids.random_bytes(wh.SECRET_BYTES))
    endpoint = Endpoint(endpoint_id, merchant_id, url, tuple(chosen), enabled,
                        kit.sealer.seal(secret.encode(), aad=endpoint_id.encode()),
                        deps.clock.now(), _description(description))
    async with deps.uow() as uow:
        await uow.webhooks.add_endpoint(endpoint)
        await uow.commit()
    return endpoint, secret


async def update_endpoint(deps: Deps, kit: Kit, merchant_id: str, endpoint_id: str, *,
                          url: str | None = None, event_types: Collection[str] | None = None,
                          description: str | None = None, enabled: bool | None = None,
                          clear_description: bool = False) -> Endpoint:
    """Change what was given. Enabling a disabled endpoint forgets its failure streak; its
    pending deliveries go out again."""
    chosen = wh.check_event_filter(event_types, events.WEBHOOK_TYPES) if event_types is not None else None
    if url is not None:
        await kit.urls.check(url)
    async with deps.uow() as uow:
        endpoint = await owned_endpoint(uow, merchant_id, endpoint_id, lock=True)
        if url is not None:
            endpoint.url = url
        if chosen is not None:
            endpoint.events = tuple(chosen)
        if description is not None or clear_description:
            endpoint.description = _description(description)
        if enabled is not None and enabled != endpoint.enabled:
            endpoint.enabled = enabled
            endpoint.disabled_reason = None if enabled else "disabled by the merchant"
            endpoint.health = Health()
        await uow.webhooks.save_endpoint(endpoint)
        await uow.commit()
    return endpoint


async def delete_endpoint(deps: Deps, merchant_id: str, endpoint_id: str) -> None:
    async with deps.uow() as uow:
        await owned_endpoint(uow, merchant_id, endpoint_id)
        await uow.webhooks.delete_endpoint(endpoint_id)
        await uow.commit()


async def rotate_secret(deps: Deps, kit: Kit, merchant_id: str, endpoint_id: str,
                        keep_old_for: timedelta = wh.ROTATION_WINDOW) -> tuple[Endpoint, str]:
    """A new signing secret; the old one keeps signing (every delivery carries both
    signatures) for `keep_old_for`, so receivers can switch without losing one."""
    if not timedelta(0) <= keep_old_for <= wh.MAX_ROTATION_WINDOW:
        raise DomainError("expires_in must be between 0 and 604800 seconds (7 days).",
                          field="expires_in")
    secret = wh.new_secret(deps.ids.random_bytes(wh.SECRET_BYTES))
    async with deps.uow() as uow:
        endpoint = await owned_endpoint(uow, merchant_id, endpoint_id, lock=True)
        endpoint.old_secret = endpoint.secret if keep_old_for else None
        endpoint.old_secret_until = deps.clock.now() + keep_old_for if keep_old_for else None
        endpoint.secret = kit.sealer.seal(secret.encode(), aad=endpoint_id.encode())
        await uow.webhooks.save_endpoint(endpoint)
        await uow.commit()
    return endpoint, secret


async def send_test(deps: Deps, merchant_id: str, endpoint_id: str) -> Delivery:
    """Queue a `webhook.ping` for this endpoint alone, due now (disabled endpoints too: a
    ping is how a merchant checks a fix before enabling it again)."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        endpoint = await owned_endpoint(uow, merchant_id, endpoint_id)
        event_id = deps.ids.new("evt")
        body = _dumps({"id": event_id, "type": wh.PING, "created": now.isoformat(), "data": {
            "object": {"object": "webhook_endpoint", "id": endpoint.id, "url": endpoint.url}}})
        delivery = Delivery(deps.ids.new("whd"), endpoint.id, merchant_id, event_id, wh.PING, body,
                            DeliveryStatus.PENDING, 0, now, now)
        await uow.webhooks.add_deliveries([delivery])
        await uow.commit()
    return delivery


async def redeliver(deps: Deps, merchant_id: str, endpoint_id: str, delivery_id: str) -> Delivery:
    """Send a delivery again now, whatever became of it, with a fresh retry schedule."""
    async with deps.uow() as uow:
        await owned_endpoint(uow, merchant_id, endpoint_id)
        delivery = await uow.webhooks.delivery(delivery_id)
        if delivery is None or delivery.endpoint_id != endpoint_id:
            raise NotFound(f"No delivery '{delivery_id}' for this endpoint.", field="delivery_id")
        delivery.redeliver(deps.clock.now())
        await uow.webhooks.save_delivery(delivery)
        await uow.commit()
    return delivery


async def reseal_secrets(deps: Deps, sealer: Sealer) -> int:
    """Seal again with the current key every secret sealed with another (`krypton keys
    rotate`); how many were. Old keys can be dropped afterwards."""
    count = 0
    async with deps.uow() as uow:
        for endpoint in await uow.webhooks.all_endpoints():
            aad = endpoint.id.encode()
            fresh = replace(endpoint)
            for name in ("secret", "old_secret"):
                token = getattr(endpoint, name)
                if token is not None and sealer.needs_rewrap(token):
                    setattr(fresh, name, sealer.seal(sealer.open(token, aad=aad), aad=aad))
                    count += 1
            if fresh != endpoint:
                await uow.webhooks.save_endpoint(fresh)
        await uow.commit()
    return count


# --- the relay: events → deliveries ----------------------------------------------------

async def _object(uow: UnitOfWork, objects: WebhookObjects, event: StoredEvent) -> dict[str, Any]:
    """The object an event is about, as the REST API shows it now (its `version` tells a
    receiver which of two updates is newer); other events carry their own data."""
    kind = event.type.split(".", 1)[0]
    if kind == "invoice" and (invoice := await uow.invoices.get(event.subject_id)) is not None:
        return objects.invoice(invoice)
    if kind == "payment" and (payment := await uow.payments.get(event.subject_id)) is not None:
        return objects.payment(payment)
    if kind == "settlement" and (settlement := await uow.settlements.get(event.subject_id)) is not None:
        return objects.settlement(settlement)
    return {"object": kind, "id": event.subject_id, **objects.event_data(event)}


def payload(event: StoredEvent, obj: dict[str, Any]) -> bytes:
    return _dumps({"id": event.id, "type": event.type, "created": event.created_at.isoformat(),
                   "data": {"object": obj}})


async def relay(deps: Deps, objects: WebhookObjects, batch: int = 500) -> int:
    """Turn the next batch of events into deliveries; returns how many events were read."""
    async with deps.uow() as uow:
        position = await uow.events.consumer_position(RELAY)
        # Only events a merchant with an endpoint may get are read in full: decoding every
        # event of every merchant was most of this job's cost.
        subscribed = await uow.webhooks.subscribed_merchants()
        window = await uow.events.window(
            position, batch, lambda kind, merchant: kind in events.WEBHOOK_TYPES and merchant in subscribed)
        stored = window.events
        merchants = {e.merchant_id for e in stored if e.merchant_id is not None}
        endpoints: dict[str, list[Endpoint]] = defaultdict(list)
        for endpoint in await uow.webhooks.enabled_endpoints(merchants) if merchants else ():
            endpoints[endpoint.merchant_id].append(endpoint)
        now = deps.clock.now()
        deliveries: list[Delivery] = []
        for event in stored:
            # An endpoint gets what happens from its creation on, not the history before it.
            targets = [e for e in endpoints.get(event.merchant_id or "", ())
                       if event.type in events.WEBHOOK_TYPES and wh.wants(e.events, event.type)
                       and event.created_at >= e.created_at]
            if not targets:
                continue
            body = payload(event, await _object(uow, objects, event))
            deliveries.extend(Delivery(deps.ids.new("whd"), e.id, e.merchant_id, event.id, event.type,
                                       body, DeliveryStatus.PENDING, 0, now, now) for e in targets)
        await uow.webhooks.add_deliveries(deliveries)
        if window.end is not None:
            await uow.events.set_consumer_position(RELAY, window.end)
        await uow.commit()
    return len(window.types)


# --- the sender --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Tried:
    due: Due
    at: datetime
    headers: dict[str, str]
    sent: Sent


async def _attempt(kit: Kit, due: Due, now: datetime, gate: asyncio.Semaphore) -> _Tried:
    delivery, endpoint = due.delivery, due.endpoint
    secrets = [_secret(kit, endpoint.id, s) for s in endpoint.signing_secrets(now)]
    headers = wh.headers(secrets, delivery.event_id, int(now.timestamp()), delivery.body)
    async with gate:
        sent = await kit.sender.send(endpoint.url, delivery.body, headers)
    return _Tried(due, now, headers, sent)


async def deliver_due(deps: Deps, kit: Kit, batch: int = 200) -> int:
    """Claim up to `batch` due deliveries, attempt them, record how each went; returns how
    many were attempted."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        due = await uow.webhooks.claim(now, now + LEASE, batch)
        await uow.commit()
    if not due:
        return 0
    gates: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(PER_ENDPOINT))
    tried = await asyncio.gather(*(_attempt(kit, d, now, gates[d.endpoint.id]) for d in due))
    await _record(deps, tried)
    return len(tried)


async def _record(deps: Deps, tried: Sequence[_Tried]) -> None:
    now = deps.clock.now()
    outcomes: dict[str, list[Outcome]] = defaultdict(list)
    async with deps.uow() as uow:
        for t in tried:
            outcome = Outcome(t.sent.status, t.sent.error)
            t.due.delivery.record(outcome, now, _spread(deps))
            outcomes[t.due.endpoint.id].append(outcome)
        await uow.webhooks.save_deliveries([t.due.delivery for t in tried])
        await uow.webhooks.add_attempts([
            Attempt(t.due.delivery.id, t.due.delivery.attempts, t.at, t.headers, t.sent.status,
                    t.sent.error, t.sent.excerpt, t.sent.duration_ms) for t in tried])
        for endpoint_id in sorted(outcomes):  # locked in one order: no deadlock between senders
            await _note_health(uow, endpoint_id, outcomes[endpoint_id], now)
        await uow.commit()


async def _note_health(uow: UnitOfWork, endpoint_id: str, seen: Sequence[Outcome],
                       now: datetime) -> None:
    """Fold the attempts' outcomes into the endpoint's failure streak; switch it off when
    it answered 410 Gone or has failed for days, and tell its merchant by an event."""
    endpoint = await uow.webhooks.endpoint(endpoint_id, for_update=True)
    if endpoint is None:  # deleted meanwhile
        return
    health = endpoint.health
    for outcome in seen:
        health = health.after(outcome, now)
    if health == endpoint.health:
        return
    endpoint.health = health
    reason = None
    if any(o.gone for o in seen):
        reason = "it answered 410 Gone"
    elif health.should_disable(now):
        reason = f"every delivery to it failed for {wh.DISABLE_AFTER.days} days"
    if reason is not None and endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason = False, reason
        await uow.events.append(events.Event(events.WEBHOOK_ENDPOINT_DISABLED, endpoint.merchant_id,
                                             endpoint.id, {"url": endpoint.url, "reason": reason}), now)
    await uow.webhooks.save_endpoint(endpoint)
