"""The chains' own clocks, for the decisions a server clock must not take alone.

A chain's head block carries the time its validators gave it (TON: the masterchain block's
`gen_utime`; Tron: the block header's `timestamp`). The watcher's process samples each
chain's head (workers/watch.py, `HeadLag`) and records the newest head time here, in the
cursors table under `chain_time:<chain>`, so every process (the expiry job may run in
another one) judges by the same chain clock. It only ever moves forward: a provider that
answers with an older head (a lagging endpoint, a fallback) never turns it back.

Why both clocks for expiry (`expiry_now`): an invoice is over when no payment sent on time
can still show up. A server clock that jumps ahead must not end it early (the chain has not
got there: a payer may still be sending), and a server clock behind must not keep it open
past its expiry either, so an invoice expires when the server clock AND the newest head
time of every chain it can be paid on have passed `expires_at`. A chain whose head was
never recorded here (its watcher is not configured, or never reached it) does not hold
expiry back: the server clock alone decides, as it did before chain time was recorded.
A chain whose watcher stopped holds expiry back until it moves again: while nothing is
read, Krypton cannot know that no payment arrived in time (`krypton_clock_skew_seconds`
and the watcher's lag alert say it stopped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from krypton.app.deps import Deps
from krypton.app.ports import UnitOfWork
from krypton.domain.assets import Chain
from krypton.domain.assets import asset as get_asset
from krypton.domain.invoice import Invoice

CURSOR_PREFIX = "chain_time:"
# The chains a head time is recorded for (Telegram Stars has no chain to read a head from).
CHAINS: tuple[Chain, ...] = (Chain.TON, Chain.TRON)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """A chain's newest block: its number (TON: masterchain seqno) and the chain's time."""

    number: int
    time: datetime


def cursor_name(chain: str) -> str:
    return f"{CURSOR_PREFIX}{chain}"


async def record(deps: Deps, times: Mapping[str, datetime]) -> dict[str, datetime]:
    """Store each chain's head time unless an equal or newer one is stored; returns the
    times stored afterwards (the newest known per chain, of those given)."""
    if not times:
        return {}
    stored: dict[str, datetime] = {}
    async with deps.uow() as uow:
        for chain in sorted(times):
            known = await _read(uow, chain)
            newest = times[chain] if known is None else max(known, times[chain])
            if newest != known:
                await uow.cursors.set(cursor_name(chain), newest.isoformat())
            stored[chain] = newest
        await uow.commit()
    return stored


async def latest(uow: UnitOfWork, chains: Iterable[str] = CHAINS) -> dict[str, datetime]:
    """The newest recorded head time of each chain that has one."""
    times = {}
    for chain in chains:
        known = await _read(uow, str(chain))
        if known is not None:
            times[str(chain)] = known
    return times


def invoice_chains(invoice: Invoice) -> set[str]:
    """The chains an invoice may still be paid on: the chosen asset's once a payment chose
    it, else every option's (Stars included: it has no head time, so it counts as absent)."""
    assets = [invoice.asset] if invoice.asset else [o.asset for o in invoice.options]
    return {get_asset(a).chain.value for a in assets}


def expiry_now(now: datetime, chain_times: Mapping[str, datetime], chains: Iterable[str]) -> datetime:
    """The time expiry is judged by: the server's `now`, held back to the newest head time of
    any of `chains` that is behind it (chains with no recorded time do not count)."""
    return min([now, *(chain_times[c] for c in chains if c in chain_times)])


async def _read(uow: UnitOfWork, chain: str) -> datetime | None:
    value = await uow.cursors.get(cursor_name(chain))
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:  # never written so by us: treated as unknown, the next sample replaces it
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
