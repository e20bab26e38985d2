"""Each invariant earns its place: a deliberately injected bug, and a seed on which the
simulator finds it (the first failing seed of a small range, with the message of the
invariant that must catch it). SQLite only: the bugs are in Python, not in the database."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from krypton.adapters.db import read_models, repositories
from krypton.adapters.db.connection import write
from krypton.app import chain_time, ingest
from krypton.domain import ledger
from krypton.domain import webhooks as wh
from krypton.domain.invoice import Invoice
from krypton.domain.ledger import JournalEntry
from tests.simulation.runner import STEPS, run_steps
from tests.simulation.world import plan

SEEDS = 40  # each bug below is found well inside this many seeds


async def _post_entry(self: Any, entry: JournalEntry, now: datetime, extra: int, skim: bool) -> None:
    """LedgerRepo.post with a bug: the first posting booked `extra` off, or (skim) one unit of
    every entry moved from the outside into the fees account, balanced."""
    [(entry_id,)] = await write(self.conn, repositories._INSERT_JOURNAL, {
        "kind": entry.kind, "reference": entry.reference, "created_at": now})
    rows = [{"entry_id": entry_id, "account": p.account, "asset": p.asset, "amount": p.amount}
            for p in entry.postings]
    rows[0]["amount"] += extra
    if skim:
        asset = entry.postings[0].asset
        rows += [{"entry_id": entry_id, "account": ledger.fees(asset), "asset": asset, "amount": 1},
                 {"entry_id": entry_id, "account": ledger.external(asset), "asset": asset, "amount": -1}]
    await write(self.conn, repositories._INSERT_POSTING, rows)


def one_unit_less(mp: pytest.MonkeyPatch) -> None:
    async def post(self: Any, entry: JournalEntry, now: datetime) -> None:
        await _post_entry(self, entry, now, -1, False)
    mp.setattr(repositories.LedgerRepo, "post", post)


def skimmed(mp: pytest.MonkeyPatch) -> None:
    async def post(self: Any, entry: JournalEntry, now: datetime) -> None:
        await _post_entry(self, entry, now, 0, True)
    mp.setattr(repositories.LedgerRepo, "post", post)


def credited_twice(mp: pytest.MonkeyPatch) -> None:
    """Every confirmed payment is received into the ledger twice. Under the same reference the
    database refuses it (uq on kind, reference); under another one only the invariant sees it."""
    original = repositories.LedgerRepo.post

    async def post(self: Any, entry: JournalEntry, now: datetime) -> None:
        await original(self, entry, now)
        if entry.kind == "payment_received":
            await original(self, JournalEntry(entry.kind, f"{entry.reference}/again", entry.postings), now)
    mp.setattr(repositories.LedgerRepo, "post", post)


def invoice_off_by_one(mp: pytest.MonkeyPatch) -> None:
    """The invoice's fold counts one unit more than its payments once anything is detected."""
    original = Invoice.apply

    def apply(self: Invoice, payments: Any, now: datetime, sent_at: datetime | None = None) -> None:
        original(self, payments, now, sent_at)
        if self.amount_detected:
            self.amount_detected += 1
    mp.setattr(Invoice, "apply", apply)


def unmatched_dropped(mp: pytest.MonkeyPatch) -> None:
    """A transfer nobody's invoice takes is forgotten instead of kept as unmatched."""
    async def add(self: Any, *args: Any, **kwargs: Any) -> None:
        return None
    mp.setattr(repositories.UnmatchedRepo, "add", add)


def relay_skips_an_event(mp: pytest.MonkeyPatch) -> None:
    """The webhook relay never queues invoice.created for anyone."""
    original = wh.wants
    mp.setattr(wh, "wants", lambda wanted, event_type: event_type != "invoice.created"
               and original(wanted, event_type))


def webhook_id_unstable(mp: pytest.MonkeyPatch) -> None:
    """Each attempt is sent with a new webhook-id: a retry looks like another event."""
    original, numbers = wh.headers, itertools.count()

    def headers(secrets: Any, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        return original(secrets, f"{msg_id}-{next(numbers)}", timestamp, body)
    mp.setattr(wh, "headers", headers)


def projection_skips_small_batches(mp: pytest.MonkeyPatch) -> None:
    """The live projections drop an event read in a batch of one; a rebuild reads big batches."""
    original = read_models.ReadModels.apply_batch

    async def apply_batch(self: Any, stored: Any) -> None:
        await original(self, stored[1:] if len(stored) == 1 else stored)
    mp.setattr(read_models.ReadModels, "apply_batch", apply_batch)


def payment_amount_lies(mp: pytest.MonkeyPatch) -> None:
    """A payment is recorded one unit larger than the chain shows (a parser or provider bug)."""
    original = ingest._first_sighting

    async def lying(deps: Any, uow: Any, transfer: Any, *args: Any, **kwargs: Any) -> Any:
        return await original(deps, uow, dataclasses.replace(transfer, amount=transfer.amount + 1),
                              *args, **kwargs)
    mp.setattr(ingest, "_first_sighting", lying)


def expiry_by_the_server_clock_alone(mp: pytest.MonkeyPatch) -> None:
    """Expiry ignores the chains' time: a server clock ahead of a chain expires early."""
    mp.setattr(chain_time, "expiry_now", lambda now, times, chains: now)


# bug -> (how to inject it, the invariant that must catch it, what its message says)
BUGS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], str, str]] = {
    # ledger balances per asset: every entry balances, every asset sums to zero
    "ledger_books_one_unit_less": (one_unit_less, "ledger", r"journal entry .* does not balance"),
    # balances equal a replay of what was received and settled
    "ledger_skims_a_unit": (skimmed, "ledger", r"assert \{.*fees:"),
    # no payment credited twice
    "payment_credited_twice": (credited_twice, "ledger", r"/again"),
    # every invoice equals the fold of its payments
    "invoice_fold_off_by_one": (invoice_off_by_one, "invoice fold", r"Invoice\(id="),
    # no transfer to a watched address unaccounted for
    "unmatched_transfer_dropped": (unmatched_dropped, "accounted",
                                   r"neither a payment nor unmatched|unaccounted"),
    # nothing credited other than the chain shows
    "credited_amount_differs_from_chain": (payment_amount_lies, "transfers", r"the transfer was"),
    # every committed event delivered to every endpoint at least once
    "relay_skips_an_event": (relay_skips_an_event, "delivered", r"never got \['invoice.created"),
    # ... with a stable webhook id
    "webhook_id_changes_between_attempts": (webhook_id_unstable, "webhooks", r"got a webhook-id"),
    # read models equal a rebuild
    "projection_skips_an_event": (projection_skips_small_batches, "read models", r"rebuild"),
    # nothing expires before its expires_at by chain time (issue 19 §2)
    "expiry_by_the_server_clock_alone": (expiry_by_the_server_clock_alone, "clock",
                                         r"expired at chain time .* before its expires_at"),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from krypton.adapters.db import migrate
    from krypton.adapters.db.database import Database

    path = tmp_path_factory.mktemp("bug-template") / "template.sqlite3"
    db = Database.open(f"sqlite:///{path}")

    async def prepare() -> None:
        await migrate.upgrade(db)
        await db.dispose()
    asyncio.run(prepare())
    yield path


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_the_simulator_finds_an_injected_bug(bug: str, template: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    install, caught_by, expected = BUGS[bug]
    install(monkeypatch)

    def sqlite(tmp: Path) -> tuple[str, Callable[[], None]]:
        shutil.copyfile(template, tmp / "krypton.sqlite3")
        return f"sqlite:///{tmp / 'krypton.sqlite3'}", lambda: None

    for seed in range(SEEDS):
        outcome = asyncio.run(run_steps(seed, plan(seed, STEPS), sqlite))
        if outcome.error is not None:
            message = f"{type(outcome.error).__name__}: {outcome.error}"
            assert message.startswith(f"AssertionError: [{caught_by}]") and re.search(
                expected, message, re.S), f"seed {seed} failed for another reason: {message}"
            print(f"{bug}: found by seed {seed} at step {outcome.failed_at}")  # shown with -s
            return
    pytest.fail(f"no seed in 0..{SEEDS - 1} found the bug {bug!r}")
