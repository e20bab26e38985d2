"""The webhook repository: endpoints, deliveries (claimed by senders with a lease) and the
attempts' log."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from krypton.adapters.db import tables as t
from krypton.adapters.db.connection import write
from krypton.adapters.db.repositories import Repo, _page, keyset_page
from krypton.app.ports import Due
from krypton.domain.webhooks import Attempt, Delivery, DeliveryStatus, Endpoint, Health

E, D, A = t.webhook_endpoints.c, t.webhook_deliveries.c, t.webhook_attempts.c
_INSERT_ATTEMPT = t.webhook_attempts.insert()
_UPDATE_DELIVERY = t.webhook_deliveries.update().where(D.id == sa.bindparam("delivery_id"))


def _endpoint_values(e: Endpoint) -> dict[str, Any]:
    return {"url": e.url, "description": e.description, "events": list(e.events),
            "enabled": e.enabled, "disabled_reason": e.disabled_reason, "secret": e.secret,
            "old_secret": e.old_secret, "old_secret_until": e.old_secret_until,
            "failures": e.health.failures, "failing_since": e.health.failing_since,
            "resting_until": e.health.resting_until}


def _endpoint(r: Any) -> Endpoint:
    return Endpoint(r.id, r.merchant_id, r.url, tuple(r.events), r.enabled, r.secret, r.created_at,
                    r.description, r.disabled_reason, r.old_secret, r.old_secret_until,
                    Health(r.failures, r.failing_since, r.resting_until))


def _delivery_values(d: Delivery) -> dict[str, Any]:
    return {"status": d.status.value, "attempts": d.attempts, "schedule_from": d.schedule_from,
            "next_attempt_at": d.next_attempt_at, "finished_at": d.finished_at,
            "last_status": d.last_status, "last_error": d.last_error}


def _delivery(r: Any) -> Delivery:
    return Delivery(r.id, r.endpoint_id, r.merchant_id, r.event_id, r.event_type, r.body.encode(),
                    DeliveryStatus(r.status), r.attempts, r.next_attempt_at, r.created_at,
                    r.schedule_from, r.finished_at, r.last_status, r.last_error)


class WebhookRepo(Repo):
    async def add_endpoint(self, e: Endpoint) -> None:
        await self.conn.execute(t.webhook_endpoints.insert().values(
            id=e.id, merchant_id=e.merchant_id, created_at=e.created_at, **_endpoint_values(e)))

    async def endpoint(self, endpoint_id: str, *, for_update: bool = False) -> Endpoint | None:
        query = sa.select(t.webhook_endpoints).where(E.id == endpoint_id)
        if for_update and self.locking:
            query = query.with_for_update()
        row = await self._one(query)
        return _endpoint(row) if row else None

    async def save_endpoint(self, e: Endpoint) -> None:
        await self.conn.execute(t.webhook_endpoints.update().where(E.id == e.id).values(
            **_endpoint_values(e)))

    async def delete_endpoint(self, endpoint_id: str) -> None:
        # Explicitly, child rows first: SQLite enforces ON DELETE CASCADE only with its
        # foreign_keys pragma on, which a CLI connection opened elsewhere may not have.
        deliveries = sa.select(D.id).where(D.endpoint_id == endpoint_id).scalar_subquery()
        await self.conn.execute(t.webhook_attempts.delete().where(A.delivery_id.in_(deliveries)))
        await self.conn.execute(t.webhook_deliveries.delete().where(D.endpoint_id == endpoint_id))
        await self.conn.execute(t.webhook_endpoints.delete().where(E.id == endpoint_id))

    async def endpoints_page(self, merchant_id: str, *, limit: int,
                             starting_after: str | None) -> tuple[list[Endpoint], bool]:
        rows, more = await _page(self, t.webhook_endpoints, merchant_id, [], limit, starting_after)
        return [_endpoint(r) for r in rows], more

    async def enabled_endpoints(self, merchant_ids: Collection[str]) -> list[Endpoint]:
        found: list[Endpoint] = []
        ids = sorted(merchant_ids)
        for start in range(0, len(ids), 500):
            rows = await self.conn.execute(sa.select(t.webhook_endpoints).where(
                E.merchant_id.in_(ids[start:start + 500]), E.enabled).order_by(E.created_at, E.id))
            found.extend(_endpoint(r) for r in rows)
        return found

    async def subscribed_merchants(self) -> set[str]:
        rows = await self.conn.execute(sa.select(E.merchant_id).where(E.enabled).distinct())
        return set(rows.scalars())

    async def all_endpoints(self) -> list[Endpoint]:
        rows = await self.conn.execute(sa.select(t.webhook_endpoints).order_by(E.created_at, E.id))
        return [_endpoint(r) for r in rows]

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        existing: set[tuple[str, str]] = set()
        event_ids = sorted({d.event_id for d in deliveries})
        for start in range(0, len(event_ids), 500):
            rows = await self.conn.execute(sa.select(D.event_id, D.endpoint_id).where(
                D.event_id.in_(event_ids[start:start + 500])))
            existing.update((r.event_id, r.endpoint_id) for r in rows)
        rows_ = [{"id": d.id, "endpoint_id": d.endpoint_id, "merchant_id": d.merchant_id,
                  "event_id": d.event_id, "event_type": d.event_type, "body": d.body.decode(),
                  "created_at": d.created_at, **_delivery_values(d)}
                 for d in deliveries if (d.event_id, d.endpoint_id) not in existing]
        if rows_:
            await write(self.conn, t.webhook_deliveries.insert(), rows_)

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Due]:
        due = (sa.select(D.id)
               .select_from(t.webhook_deliveries.join(t.webhook_endpoints, E.id == D.endpoint_id))
               .where(D.status == DeliveryStatus.PENDING.value, D.next_attempt_at <= now, E.enabled,
                      sa.or_(E.resting_until.is_(None), E.resting_until <= now))
               .order_by(D.next_attempt_at).limit(limit)
               # PostgreSQL: rows another sender is claiming right now are skipped, not waited
               # for; SQLite has one writer, so a claim there is whole anyway.
               .with_for_update(of=t.webhook_deliveries, skip_locked=True))
        rows = (await self.conn.execute(
            t.webhook_deliveries.update().where(D.id.in_(due.scalar_subquery()))
            .values(next_attempt_at=lease_until, attempts=D.attempts + 1)
            .returning(*t.webhook_deliveries.c))).all()
        if not rows:
            return []
        endpoint_ids = sorted({r.endpoint_id for r in rows})
        endpoints = {r.id: _endpoint(r) for r in await self.conn.execute(
            sa.select(t.webhook_endpoints).where(E.id.in_(endpoint_ids)))}
        claimed = sorted((_delivery(r) for r in rows), key=lambda d: (d.created_at, d.id))
        return [Due(d, endpoints[d.endpoint_id]) for d in claimed]

    async def delivery(self, delivery_id: str) -> Delivery | None:
        row = await self._one(sa.select(t.webhook_deliveries).where(D.id == delivery_id))
        return _delivery(row) if row else None

    async def save_delivery(self, d: Delivery) -> None:
        await self.save_deliveries([d])

    async def save_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """One statement for them all (executemany): a sender's batch of 200 was 200 round
        trips on PostgreSQL."""
        if deliveries:
            await write(self.conn, _UPDATE_DELIVERY,
                        [{"delivery_id": d.id, **_delivery_values(d)} for d in deliveries])

    async def add_attempts(self, attempts: Sequence[Attempt]) -> None:
        if attempts:
            await write(self.conn, _INSERT_ATTEMPT, [
                {"delivery_id": a.delivery_id, "number": a.number, "at": a.at,
                 "request_headers": a.request_headers, "status": a.status, "error": a.error,
                 "response_excerpt": a.response_excerpt, "duration_ms": a.duration_ms}
                for a in attempts])

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        rows = await self.conn.execute(sa.select(t.webhook_attempts).where(
            A.delivery_id == delivery_id).order_by(A.number))
        return [Attempt(r.delivery_id, r.number, r.at, r.request_headers, r.status, r.error,
                        r.response_excerpt, r.duration_ms) for r in rows]

    async def deliveries_page(self, endpoint_id: str, *, limit: int, starting_after: str | None,
                              status: str | None = None) -> tuple[list[Delivery], bool]:
        """Newest first, keyset-paginated on (created_at, id)."""
        rows, more = await keyset_page(self, t.webhook_deliveries, [D.endpoint_id == endpoint_id],
                                       limit, starting_after,
                                       [] if status is None else [D.status == status])
        return [_delivery(r) for r in rows], more

    async def failures_page(self, *, limit: int,
                            starting_after: str | None) -> tuple[list[Delivery], bool]:
        """Deliveries across merchants that failed for good, or are pending after a failed
        attempt (an outcome is recorded, and a success would have ended it), newest first."""
        failing = sa.or_(D.status == DeliveryStatus.FAILED.value, sa.and_(
            D.status == DeliveryStatus.PENDING.value, D.attempts >= 1,
            sa.or_(D.last_status.is_not(None), D.last_error.is_not(None))))
        rows, more = await keyset_page(self, t.webhook_deliveries, [], limit, starting_after, [failing])
        return [_delivery(r) for r in rows], more
