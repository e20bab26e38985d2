"""The rules of the house, checked against a world after every step.

The ledger, invoice and event-log checks are the stateful model's own
(tests/app/test_state_machine.py); the rest compares Krypton's tables with what the world
really did on its chains and with what the merchants' receivers really got.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from krypton.adapters.db import tables as t
from krypton.app import relay
from krypton.domain import events
from krypton.domain.payment import PaymentStatus
from tests.app.test_state_machine import Dump, PaymentMachine
from tests.simulation.clocks import check_no_flips

if TYPE_CHECKING:
    from tests.simulation.world import World

PS = PaymentStatus
LIVE = (PS.DETECTED, PS.CONFIRMING, PS.CONFIRMED)


async def dump(world: World) -> Dump:
    return await PaymentMachine._dump(_shim(world))


def _shim(world: World) -> Any:
    """What the state machine's checks read from `self`."""
    return SimpleNamespace(container=world.container, invoice_ids=list(world.invoice_ids),
                           transfers={})


async def check_step(world: World) -> Dump:
    """Everything that must hold after any step, whatever is still in flight."""
    d = await dump(world)
    shim = _shim(world)
    # Entries balance, sums are zero per asset, balances equal the journal's replay and the
    # replay of what was received and settled, each payment received once.
    with invariant("ledger"):
        PaymentMachine._check_ledger(shim, d)
    with invariant("invoice fold"):  # every invoice is the fold of its payments
        PaymentMachine._check_invoices(shim, d)
    with invariant("event log"):
        PaymentMachine._check_event_log(shim, d)
    with invariant("transfers"):
        check_transfers(world, d)
    with invariant("webhooks"):
        await check_webhooks(world)
    with invariant("clock"):  # no decision flips after a jump, nothing expires early
        check_no_flips(world, d)
    return d


@contextmanager
def invariant(name: str) -> Iterator[None]:
    """Name the invariant in the message of an assertion that breaks it."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"[{name}] {exc}") from exc


async def check_end(world: World) -> None:
    """After `settle`: what must hold once everything had time to happen."""
    d = await check_step(world)
    with invariant("accounted"):
        check_everything_accounted(world, d)
    with invariant("delivered"):
        await check_delivered(world)
    with invariant("read models"):
        await check_read_models(world)


# --- chains --------------------------------------------------------------------------------

def check_transfers(world: World, d: Dump) -> None:
    """No transfer stored twice or credited twice; nothing credited that the chain does not
    hold as sent (amount, destination, success, finality)."""
    keys = Counter((p.chain.value, p.tx_id, p.index) for p in d.payments)
    assert max(keys.values(), default=1) == 1, f"a transfer credited twice: {keys.most_common(1)}"
    unmatched = Counter((u["chain"], u["tx_id"], u["tx_index"]) for u in d.unmatched)
    assert max(unmatched.values(), default=1) == 1, "an unmatched transfer stored twice"
    assert world.devnet is not None
    tron = world.devnet.tron
    for p in d.payments:
        sent = world.sent.get((p.chain.value, p.tx_id))
        assert sent is not None, f"payment {p.id} for a transfer nobody sent: {p.tx_id}"
        assert sent.ever_counted, f"{sent.kind} transfer {p.tx_id} became payment {p.id}"
        assert p.amount == sent.amount, f"payment {p.id} of {p.amount}, the transfer was {sent.amount}"
        if p.status is PS.CONFIRMED and sent.chain == "tron":
            where = tron.find(p.tx_id)
            assert where is not None and where.tx.succeeded and tron.is_solid(where.block.number), (
                f"payment {p.id} confirmed but its transfer is not final and successful on chain")
    for u in d.unmatched:
        sent = world.sent.get((u["chain"], u["tx_id"]))
        assert sent is not None, f"unmatched {u['id']} for a transfer nobody sent"
        assert sent.ever_counted or sent.expect == "unmatched", (
            f"an ignored {sent.kind} transfer kept as unmatched")


def check_everything_accounted(world: World, d: Dump) -> None:
    """Every transfer to a watched address is a payment, an unmatched transfer, or ignored
    for a reason the world knows (a bounce, another contract, a revert, a reorg)."""
    assert world.devnet is not None
    tron = world.devnet.tron
    paid = {(p.chain.value, p.tx_id): p for p in d.payments}
    kept = {(u["chain"], u["tx_id"]) for u in d.unmatched}
    for key, sent in world.sent.items():
        on_chain = True
        if sent.chain == "tron":
            where = tron.find(sent.tx_id)
            on_chain = where is not None and where.tx.succeeded
        if sent.expect == "never" or not on_chain:
            p = paid.get(key)
            assert p is None or p.status not in LIVE, f"{sent.kind} transfer {sent.tx_id} is {p}"
            continue
        if sent.expect == "unmatched":
            assert key in kept and key not in paid, f"{sent.kind} transfer {sent.tx_id} unaccounted for"
            continue
        assert key in paid or key in kept, (
            f"{sent.kind} transfer {sent.tx_id} of {sent.amount} to {sent.destination} "
            "is neither a payment nor unmatched")
        if key in paid:
            assert paid[key].status is PS.CONFIRMED, f"final transfer {sent.tx_id} is {paid[key].status}"


# --- webhooks ------------------------------------------------------------------------------

async def _webhook_rows(world: World) -> tuple[list[Any], list[Any], list[Any]]:
    async with world.container.db.reader.connect() as conn:
        endpoints = (await conn.execute(sa.select(t.webhook_endpoints))).all()
        deliveries = (await conn.execute(sa.select(t.webhook_deliveries))).all()
        evts = (await conn.execute(sa.select(t.events).order_by(t.events.c.seq))).all()
    return list(endpoints), list(deliveries), list(evts)


async def check_webhooks(world: World) -> None:
    """One delivery per (event, endpoint), for events that exist; every request the
    receivers got carried its event's id as webhook-id."""
    _, deliveries, evts = await _webhook_rows(world)
    ids = {e.id for e in evts}
    pairs = Counter((r.event_id, r.endpoint_id) for r in deliveries)
    assert max(pairs.values(), default=1) == 1, "an event queued twice for one endpoint"
    assert {r.event_id for r in deliveries} <= ids, "a delivery of an event that does not exist"
    urls = {url: endpoint_id for endpoint_id, (_, url) in world.endpoints.items()}
    came = {(hook_id, urls[url]) for url, hook_id in world.receiver.got}
    assert came <= set(pairs), "a receiver got a webhook-id no delivery of its endpoint has"


async def pending_deliveries(world: World) -> int:
    async with world.container.db.reader.connect() as conn:
        c = t.webhook_deliveries.c
        return int((await conn.execute(sa.select(sa.func.count()).where(
            c.status == "pending"))).scalar_one())


async def check_delivered(world: World) -> None:
    """Every committed event reached every endpoint that wants it, at least once, with its
    own id as webhook-id; an endpoint that answered 410 Gone is switched off instead."""
    endpoints, _, evts = await _webhook_rows(world)
    got = set(world.receiver.got)
    for endpoint in endpoints:
        if not endpoint.enabled:
            assert endpoint.url in world.receiver.answered_gone, (
                f"endpoint {endpoint.id} was switched off but never answered 410")
            continue
        created_at = endpoint.created_at.replace(tzinfo=None)
        wanted = [e for e in evts if e.merchant_id == endpoint.merchant_id
                  and e.type in events.WEBHOOK_TYPES
                  and e.created_at.replace(tzinfo=None) >= created_at]
        missing = [f"{e.type} {e.id}" for e in wanted if (endpoint.url, e.id) not in got]
        assert not missing, f"endpoint {endpoint.url} never got {missing}"


# --- read models ---------------------------------------------------------------------------

async def check_read_models(world: World) -> None:
    deps = world.d
    await relay.catch_up(deps)
    async with deps.uow() as uow:
        live = await uow.read_models.snapshot()
    await relay.rebuild(deps)
    async with deps.uow() as uow:
        rebuilt = await uow.read_models.snapshot()
    assert live == rebuilt, "the read models differ from a rebuild of the event log"
