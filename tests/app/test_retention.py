"""Retention (app/retention.py): finished bookkeeping older than the policy goes, in bounded
batches; what is unfinished, recent, or money stays. On both databases."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from krypton.adapters.db import tables as t
from krypton.adapters.db.database import SqlUnitOfWork
from krypton.adapters.db.retention import pruner
from krypton.app import merchants, retention
from krypton.bootstrap import Container
from krypton.config import Settings
from krypton.workers import loops
from tests.support.clock import ManualClock

DAY = timedelta(days=1)


async def _insert(container: Container, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    async with container.deps.uow() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        await uow.connection.execute(table.insert(), rows)
        await uow.commit()


async def _ids(container: Container, column: sa.Column[Any]) -> set[Any]:
    async with container.deps.uow(write=False) as uow:
        assert isinstance(uow, SqlUnitOfWork)
        return set((await uow.connection.execute(sa.select(column))).scalars())


async def _seed(container: Container, now: datetime) -> None:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    await _insert(container, t.webhook_endpoints, [{
        "id": "we_1", "merchant_id": merchant.id, "url": "https://example.com/hook", "events": [],
        "enabled": True, "secret": "sealed", "created_at": now - 200 * DAY}])
    deliveries = [  # (id, created days ago, finished days ago or None: still being tried)
        ("wd_old", 120, 100), ("wd_recent", 30, 29), ("wd_pending", 120, None)]
    await _insert(container, t.webhook_deliveries, [{
        "id": i, "endpoint_id": "we_1", "merchant_id": merchant.id, "event_id": f"evt_{i}",
        "event_type": "invoice.paid", "body": "{}", "status": "pending" if done is None else "delivered",
        "attempts": 1, "schedule_from": 0, "created_at": now - created * DAY,
        "finished_at": None if done is None else now - done * DAY} for i, created, done in deliveries])
    await _insert(container, t.webhook_attempts, [{
        "delivery_id": i, "number": 1, "at": now - created * DAY, "request_headers": {},
        "status": 200, "response_excerpt": "", "duration_ms": 5} for i, created, _ in deliveries])
    await _insert(container, t.telegram_messages, [{
        "id": i, "chat_id": 1, "merchant_id": merchant.id, "event_id": f"evt_{i}", "event_txid": 0,
        "event_seq": n, "text": "paid", "status": "sent" if done else "pending", "attempts": 1,
        "created_at": now - 100 * DAY, "finished_at": now - done * DAY if done else None}
        for n, (i, done) in enumerate([("tgm_old", 95), ("tgm_recent", 5), ("tgm_pending", 0)])])
    await _insert(container, t.idempotency_keys, [{
        "merchant_id": merchant.id, "key": key, "request_hash": "h", "response": {},
        "created_at": now - age * DAY} for key, age in [("old", 91), ("recent", 89)]])
    await _insert(container, t.shop_proof_payloads, [
        {"nonce": "lapsed", "expires_at": now - 2 * DAY}, {"nonce": "fresh", "expires_at": now - DAY / 2}])
    await _insert(container, t.telegram_link_codes, [{
        "code_hash": h, "merchant_id": merchant.id, "created_at": now - 3 * DAY,
        "expires_at": now - age} for h, age in [("lapsed", 2 * DAY), ("fresh", DAY / 2)]])


async def test_finished_old_records_go_and_the_rest_stay(container: Container, clock: ManualClock) -> None:
    now = clock.now()
    await _seed(container, now)
    deleted = await retention.prune(container.deps, pruner, retention.Policy(90 * DAY))
    assert deleted == {"webhook_deliveries": 1, "telegram_messages": 1, "idempotency_keys": 1,
                       "shop_proof_payloads": 1, "telegram_link_codes": 1}
    assert await _ids(container, t.webhook_deliveries.c.id) == {"wd_recent", "wd_pending"}
    assert await _ids(container, t.webhook_attempts.c.delivery_id) == {"wd_recent", "wd_pending"}
    assert await _ids(container, t.telegram_messages.c.id) == {"tgm_recent", "tgm_pending"}
    assert await _ids(container, t.idempotency_keys.c.key) == {"recent"}
    assert await _ids(container, t.shop_proof_payloads.c.nonce) == {"fresh"}
    assert await _ids(container, t.telegram_link_codes.c.code_hash) == {"fresh"}
    assert await _ids(container, t.merchants.c.name) == {"Shop"}
    # A second pass finds nothing more: pruning is idempotent.
    again = await retention.prune(container.deps, pruner, retention.Policy(90 * DAY))
    assert set(again.values()) == {0}


async def test_a_backlog_goes_in_batches(container: Container, clock: ManualClock) -> None:
    now = clock.now()
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    await _insert(container, t.idempotency_keys, [{
        "merchant_id": merchant.id, "key": f"k{n}", "request_hash": "h", "response": None,
        "created_at": now - (100 + n) * DAY} for n in range(25)])
    deleted = await retention.prune(container.deps, pruner, retention.Policy(90 * DAY, batch=10))
    assert deleted["idempotency_keys"] == 25
    assert await _ids(container, t.idempotency_keys.c.key) == set()


async def test_the_worker_prunes_under_a_lease_unless_told_to_keep_all(
        container: Container, clock: ManualClock) -> None:
    await _seed(container, clock.now())
    [job] = [j for j in loops.retention_jobs(container) if j.name == "retention"]
    assert job.leased
    await job.step()
    assert await _ids(container, t.idempotency_keys.c.key) == {"recent"}
    keep_all = replace(container, settings=container.settings.model_copy(update={"retention_days": 0}))
    assert loops.retention_jobs(keep_all) == []


def test_a_negative_retention_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        Settings(**{**settings.model_dump(), "retention_days": -1})
