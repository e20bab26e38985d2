"""The simulated worlds' two clocks and the invariant between them (issue 19 §2).

The world's manual clock is the chains' (the devnet dates its blocks by it); the server's
clock is that plus an offset the `jump_back` step sets: ten minutes back, or none again,
as an NTP step would. A server clock ahead of the chains is what every world has most of
the time anyway: its clock moves on (`advance`, `jump`) while no block is made, so the
chains' newest block time stays behind. The chain heads are sampled as the head-lag job
samples them in a real process (workers/watch.py) after each watcher round.

After every step: no decision flips (an expired invoice never becomes pending, cancelled
or paid again without a payment, a paid one only refunded, a cancelled one never anything)
and nothing expires before its `expires_at` by the chains' time (the newest block time of
each chain it can be paid on, where one was sampled), nor, when the expiry job or a
payment's ingest expires a pending invoice, by the server's clock.
"""

from __future__ import annotations

import random
import weakref
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from krypton.app import chain_time
from krypton.domain.invoice import InvoiceStatus
from tests.support.clock import ManualClock

if TYPE_CHECKING:
    from tests.app.test_state_machine import Dump
    from tests.simulation.world import World

S = InvoiceStatus
JUMP = timedelta(minutes=10)
# Where an invoice may go from each status between two checks: what the transition table
# allows, and any chain of such moves within one step, without going back. (Expired ->
# confirming -> pending would reopen it: a payment lost after the chains passed its expiry
# leaves it expired.)
ALLOWED: dict[S, frozenset[S]] = {
    S.PENDING: frozenset(S),
    S.CONFIRMING: frozenset(S) - {S.CANCELLED},
    S.EXPIRED: frozenset({S.EXPIRED, S.CONFIRMING, S.PAID, S.REFUNDED}),
    S.PAID: frozenset({S.PAID, S.REFUNDED}),
    S.CANCELLED: frozenset({S.CANCELLED}),
    S.REFUNDED: frozenset({S.REFUNDED}),
}


class ServerClock:
    """The server's clock: the chains' plus an offset."""

    def __init__(self, chains: ManualClock) -> None:
        self.chains = chains
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return self.chains.now() + self.offset


def jump_back(clock: ServerClock, rng: random.Random) -> str:
    """The server clock steps ten minutes behind the chains' or ahead of them (or back in line
    with them); the chains' clock goes on as it was."""
    clock.offset = rng.choice([-JUMP, -JUMP, JUMP, timedelta(0)])
    return f"server clock {clock.offset.total_seconds():+.0f} s from the chains"


def _heads(world: World) -> dict[str, datetime]:
    devnet = world.devnet
    assert devnet is not None
    return {"ton": datetime.fromtimestamp(devnet.ton.head.gen_utime, UTC),
            "tron": datetime.fromtimestamp(devnet.tron.head.timestamp / 1000, UTC)}


async def sample_heads(world: World) -> None:
    """What the head-lag job records after a round: each chain's newest block time."""
    heads = _heads(world)
    sampled = _sampled.setdefault(world, {})
    for chain, at in heads.items():  # the newest ever: a reorganisation may lower the head
        sampled[chain] = max(sampled.get(chain, at), at)
    await chain_time.record(world.d, heads)


_seen: weakref.WeakKeyDictionary[World, dict[str, S]] = weakref.WeakKeyDictionary()
_sampled: weakref.WeakKeyDictionary[World, dict[str, datetime]] = weakref.WeakKeyDictionary()


def check_no_flips(world: World, d: Dump) -> None:
    before = _seen.setdefault(world, {})
    sampled = _sampled.get(world, {})
    # The newest block time of each sampled chain; a payment's own block (now on the chain)
    # may tell its ingest about a newer one before the next sample.
    heads = {chain: max(at, sampled[chain]) for chain, at in _heads(world).items() if chain in sampled}
    server_now = world.d.clock.now()
    for invoice_id, invoice in d.invoices.items():
        was, now = before.get(invoice_id), invoice.status
        before[invoice_id] = now
        if was is None or was is now:
            continue
        assert now in ALLOWED[was], f"{invoice_id} went from {was.value} to {now.value}"
        if now is S.EXPIRED:
            behind = {chain: at.isoformat() for chain, at in heads.items()
                      if chain in chain_time.invoice_chains(invoice) and at < invoice.expires_at}
            assert not behind, (f"{invoice_id} expired at chain time {behind}, before its "
                                f"expires_at {invoice.expires_at.isoformat()}")
            if was is S.PENDING:
                assert invoice.expires_at <= server_now, (
                    f"{invoice_id} expired at server time {server_now.isoformat()}, before its "
                    f"expires_at {invoice.expires_at.isoformat()}")
