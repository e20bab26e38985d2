"""Retention: the records Krypton keeps only for a while, pruned by a background job.

Money is never pruned: invoices, payments, settlements, the ledger and the event log stay
(the log is the history every read model is rebuilt from). What goes is bookkeeping about
talking to others, once it is finished and older than `keep` (KRYPTON_RETENTION_DAYS):
webhook deliveries with their attempts, bot notifications, idempotency keys (a request
replayed later than that is a new request); and, a day after they lapse, sign-in
payloads and bot link codes, which prove nothing once expired.

Each table is pruned in batches of `batch` rows, one short transaction each, so pruning a
backlog never holds a long transaction (on PostgreSQL one would hold back the event log's
read horizon) and a crash loses only the batch in flight, pruned again next time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from krypton.app.deps import Deps
from krypton.app.ports import UnitOfWork

# Lapsed sign-in payloads and link codes are kept this long past their expiry: enough to
# tell "expired" from "unknown" to someone who just tried one.
LAPSED_GRACE = timedelta(days=1)
# Batches per table per run: the job runs again soon, a backlog drains over a few runs.
MAX_BATCHES = 50


Kind = Literal["webhook_deliveries", "telegram_messages", "idempotency_keys",
               "shop_proof_payloads", "telegram_link_codes"]
KEPT: tuple[Kind, ...] = ("webhook_deliveries", "telegram_messages", "idempotency_keys")
LAPSED: tuple[Kind, ...] = ("shop_proof_payloads", "telegram_link_codes")


class Pruner(Protocol):
    async def prune(self, kind: Kind, before: datetime, limit: int) -> int:
        """Delete up to `limit` rows of `kind` finished (or lapsed) before `before`; how many."""


@dataclass(frozen=True, slots=True)
class Policy:
    keep: timedelta
    batch: int = 1000


async def prune(deps: Deps, pruner: Callable[[UnitOfWork], Pruner], policy: Policy) -> dict[str, int]:
    """One pass over every kind; returns how many rows of each were deleted."""
    now = deps.clock.now()
    cutoffs = {**{kind: now - policy.keep for kind in KEPT},
               **{kind: now - LAPSED_GRACE for kind in LAPSED}}
    deleted: dict[str, int] = {}
    for kind, before in cutoffs.items():
        deleted[kind] = 0
        for _ in range(MAX_BATCHES):
            async with deps.uow() as uow:
                n = await pruner(uow).prune(kind, before, policy.batch)
                await uow.commit()
            deleted[kind] += n
            if n < policy.batch:
                break
    return deleted
