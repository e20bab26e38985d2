"""Payouts: a merchant withdraws its available balance to an address, through the signer.

1. `request_payout`: in ONE transaction, under the merchant's lock (PostgreSQL: its row
   FOR UPDATE; SQLite: the one writer), the available balance is read, checked and debited
   to `payouts_pending` with the payout row and `payout.requested`. Fifty concurrent
   requests against a balance covering ten give ten payouts and forty refusals: none can
   read a balance another has already spent.
2. `dispatch_due` (the worker, every N seconds or as soon as M are waiting): books each
   payout's `payout` entry (pending -> external, the entry the signer checks), moves it to
   `queued` and commits; then ONE signer call for the batch (up to the wallet's message
   limit); then records each outcome: `sent`, or `failed` and credited back when refused.
   A crash after the commit leaves `queued` payouts: the next round asks again with the same
   request ids, and the signer, which never signs a request id twice, says which it holds.
3. `track`: sent payouts are asked of the signer until final: `confirmed`, or `failed`
   (the wallet did not send it, or the destination bounced it) and credited back.
4. A bounce can still come after `confirmed` (a USDT payout's second hop, the recipient's
   jetton wallet, runs later than ours; an indexer may show the destination's transaction
   before its bounce): a confirmed payout whose message could bounce (`may_bounce`) is
   watched. Its confirmation sets `bounce_check_at` (due at once); each round asks the
   signer about the payouts whose check is due, the longest due first (an index, a limit:
   nothing starves, a backlog drains). An answer with the destination's transaction moves
   the next check out on a backoff; no answer (signer or chain provider down) retries soon
   without counting; the first answer BOUNCE_WATCH or more after the confirmation ends the
   watch, so an outage longer than the window delays its end instead of skipping it (the
   schedule: domain/payout.py). A bounce fails the payout and credits the amount back
   (`payout_failed`: external -> available; the network fee stays booked: the chain did
   charge it), once: under the payout's lock, and the journal's (kind, reference) is unique.

Who pays the network fee: the platform (see domain/ledger.payout_network_fee).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from krypton.app.deps import Deps
from krypton.app.invoices import IdempotencyMismatch
from krypton.app.ports import (
    IdempotencyClash,
    SignerUnavailable,
    SignOutcome,
    SignRequest,
    UnitOfWork,
)
from krypton.app.ports import (
    Signer as SignerPort,
)
from krypton.domain import events, ledger
from krypton.domain import payout as rules
from krypton.domain.errors import Conflict, NotFound
from krypton.domain.payout import Payout, PayoutStatus

DESCRIPTION_MAX = 200
# The signer's refusal of a request id it holds already: ours, from a round that crashed
# before it could record the answer.
REPLAYED = "replayed_request"
SIGNED = frozenset({"recorded", "broadcast", "confirmed", "failed"})
# How long after its confirmation a payout that could bounce is watched (domain/payout.py).
BOUNCE_WATCH = rules.BOUNCE_WATCH
# How many due bounce checks one tracking round makes: each costs the signer up to three
# chain provider lookups (a USDT payout's two hops and the wallet's transaction), so at
# most 30 a round (6 a second at the worker's 5 s), under TON Center's 10 rps for an API key
# with room for the signer's own seqno/send/find calls. A larger backlog waits its turn in
# due order (a late check is still a check: the watch ends only on an answer).
BOUNCE_CHECKS_PER_ROUND = 10
# Assets sent as a jetton transfer (a bounceable message to our own jetton wallet, then a
# second hop to the recipient's): they may bounce whatever the destination's form.
JETTON_ASSETS = frozenset({"USDT_TON"})


class PayoutBook(Protocol):
    """The payouts table in one unit of work's transaction (adapters/db/payouts.py)."""

    async def lock_merchant(self, merchant_id: str) -> None:
        """Serialise the merchant's balance-changing requests until the transaction ends."""
    async def add(self, payout: Payout, idempotency_key: str | None,
                  request_hash: str | None) -> None:
        """IdempotencyClash if the merchant's key holds a payout already."""
    async def save(self, payout: Payout) -> None: ...
    async def get(self, payout_id: str, *, for_update: bool = False) -> Payout | None: ...
    async def by_key(self, merchant_id: str, key: str) -> tuple[Payout, str | None] | None: ...
    async def page(self, merchant_id: str, *, limit: int,
                   starting_after: str | None) -> tuple[list[Payout], bool]: ...
    async def in_status(self, statuses: Sequence[PayoutStatus], limit: int) -> list[Payout]:
        """Oldest first."""
    async def bounce_checks_due(self, now: datetime, limit: int) -> list[Payout]:
        """Confirmed payouts with bounce_check_at <= now, the longest due first."""
    async def entry_id(self, kind: str, reference: str) -> int | None:
        """The journal entry's id (what a signer request names)."""


class PayoutBooks(Protocol):
    def __call__(self, uow: UnitOfWork) -> PayoutBook: ...


@dataclass(frozen=True, slots=True)
class PayoutKit:
    books: PayoutBooks
    signer: SignerPort | None  # None: no signer here; requests are taken, nothing is sent


@dataclass(frozen=True, slots=True)
class PayoutRequest:
    asset: str
    amount: int
    destination: str  # validated and normalised by the caller (the web layer)
    description: str | None = None

    def fingerprint(self) -> str:
        body = json.dumps({"asset": self.asset, "amount": self.amount,
                           "destination": self.destination,
                           "description": self.description}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


# --- requests ----------------------------------------------------------------------------

async def request_payout(deps: Deps, kit: PayoutKit, merchant_id: str, req: PayoutRequest, *,
                         idempotency_key: str | None = None) -> tuple[Payout, bool]:
    """The payout, and whether it was created now (False: the key's earlier payout)."""
    rules.check_asset(req.asset)
    description = (req.description or "").strip()[:DESCRIPTION_MAX] or None
    fingerprint = req.fingerprint()
    if idempotency_key is not None:
        replay = await _by_key(deps, kit, merchant_id, idempotency_key, fingerprint)
        if replay is not None:
            return replay, False
    now = deps.clock.now()
    payout = Payout(id=deps.ids.new("po"), merchant_id=merchant_id, asset=req.asset,
                    amount=req.amount, destination=req.destination, created_at=now,
                    updated_at=now, description=description)
    async with deps.uow() as uow:
        book = kit.books(uow)
        await book.lock_merchant(merchant_id)
        available = await _available(uow, merchant_id, req.asset)
        if not rules.covers(available, req.amount):
            raise Conflict(f"The available {req.asset} balance ({available}) does not cover this "
                           f"payout of {req.amount}; {req.amount - available} more is needed.",
                           code="insufficient_balance", field="amount")
        try:
            await book.add(payout, idempotency_key, fingerprint if idempotency_key else None)
        except IdempotencyClash:
            clash = True
        else:
            clash = False
            await uow.ledger.post(ledger.payout_requested(payout.id, merchant_id, req.asset,
                                                          req.amount), now)
            await uow.events.append(_event(payout, PayoutStatus.REQUESTED), now)
            await uow.commit()
    if clash:  # the same key raced us and won: answer with its payout
        assert idempotency_key is not None
        replay = await _by_key(deps, kit, merchant_id, idempotency_key, fingerprint)
        if replay is None:
            raise Conflict("A payout with this Idempotency-Key is being created; retry shortly.")
        return replay, False
    return payout, True


async def _available(uow: UnitOfWork, merchant_id: str, asset: str) -> int:
    account = ledger.merchant_account(merchant_id, asset)
    return (await uow.ledger.balances(account)).get((account, asset), 0)


async def _by_key(deps: Deps, kit: PayoutKit, merchant_id: str, key: str,
                  fingerprint: str) -> Payout | None:
    async with deps.uow(write=False) as uow:
        found = await kit.books(uow).by_key(merchant_id, key)
    if found is None:
        return None
    payout, stored = found
    if stored != fingerprint:
        raise IdempotencyMismatch(
            "This Idempotency-Key was already used with a different payout request; use a new "
            "key for a new payout.", field="Idempotency-Key")
    return payout


async def get_payout(deps: Deps, kit: PayoutKit, merchant_id: str, payout_id: str) -> Payout:
    async with deps.uow(write=False) as uow:
        payout = await kit.books(uow).get(payout_id)
    if payout is None or payout.merchant_id != merchant_id:
        raise NotFound(f"No payout '{payout_id}'.", field="payout_id")
    return payout


async def list_payouts(deps: Deps, kit: PayoutKit, merchant_id: str, *, limit: int,
                       starting_after: str | None = None) -> tuple[list[Payout], bool]:
    async with deps.uow(write=False) as uow:
        return await kit.books(uow).page(merchant_id, limit=limit, starting_after=starting_after)


# --- the worker: batches to the signer ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class Batching:
    """Send every `every` seconds, or at once when `size` are waiting (the worker's loop
    calls `dispatch_due` often; it sends only when one of the two holds)."""

    every: float
    size: int  # also the most one signer call carries: the wallet's message limit


async def dispatch_due(deps: Deps, kit: PayoutKit, batching: Batching,
                       last_sent: datetime | None) -> int:
    """Send the waiting payouts when a batch is due; how many were handed to the signer."""
    if kit.signer is None:
        return 0
    async with deps.uow(write=False) as uow:
        book = kit.books(uow)
        stuck = await book.in_status([PayoutStatus.QUEUED], batching.size)
        waiting = await book.in_status([PayoutStatus.REQUESTED], batching.size)
    due = last_sent is None or (deps.clock.now() - last_sent).total_seconds() >= batching.every
    if not stuck and (not waiting or (len(waiting) < batching.size and not due)):
        return 0
    batch = [*stuck, *await _queue(deps, kit, waiting[:batching.size - len(stuck)])]
    if not batch:
        return 0
    return len(batch) if await _send(deps, kit, kit.signer, batch) else 0


async def _queue(deps: Deps, kit: PayoutKit, payouts: list[Payout]) -> list[Payout]:
    """Book each payout's `payout` entry and move it to queued, in one transaction."""
    now = deps.clock.now()
    queued: list[Payout] = []
    async with deps.uow() as uow:
        book = kit.books(uow)
        for candidate in payouts:
            payout = await book.get(candidate.id, for_update=True)
            if payout is None or payout.status is not PayoutStatus.REQUESTED:
                continue  # another dispatcher took it
            await uow.ledger.post(ledger.payout_sent(payout.id, payout.merchant_id, payout.asset,
                                                     payout.amount), now)
            await _move(uow, book, payout, PayoutStatus.QUEUED, now)
            queued.append(payout)
        await uow.commit()
    return queued


async def _send(deps: Deps, kit: PayoutKit, signer: SignerPort, batch: list[Payout]) -> bool:
    """One signer call for the batch, then each outcome recorded; False if the signer could
    not be asked."""
    async with deps.uow(write=False) as uow:
        book = kit.books(uow)
        requests = []
        for payout in batch:
            entry = await book.entry_id(ledger.PAYOUT, payout.id)
            assert entry is not None, "a queued payout has its ledger entry"
            requests.append(SignRequest(payout.id, "payout", payout.asset, payout.amount,
                                        payout.destination, "merchant_wallet", entry))
    try:
        outcomes = await signer.transfer(requests)
    except SignerUnavailable:
        return False  # nothing known: the payouts stay queued and are asked again next round
    for payout, outcome in zip(batch, outcomes, strict=True):
        if outcome.refusal == REPLAYED:
            known = await _status(signer, payout.id)
            if known is None:
                continue
            outcome = known
        await _record(deps, kit, payout.id, outcome)
    return True


async def _status(signer: SignerPort, request_id: str) -> SignOutcome | None:
    try:
        return await signer.status(request_id)
    except SignerUnavailable:
        return None


# --- tracking --------------------------------------------------------------------------

async def track(deps: Deps, kit: PayoutKit, limit: int = 200, *,
                checks: int = BOUNCE_CHECKS_PER_ROUND) -> int:
    """Ask the signer about sent payouts until each is final (confirmed once the
    destination's transaction took it, failed if it bounced), and about at most `checks`
    confirmed ones whose bounce check is due (see the module doc, 4); how many changed."""
    if kit.signer is None:
        return 0
    async with deps.uow(write=False) as uow:
        book = kit.books(uow)
        open_ = await book.in_status([PayoutStatus.SENT], limit)
        due = await book.bounce_checks_due(deps.clock.now(), checks)
    changed = 0
    for payout in open_:
        outcome = await _status(kit.signer, payout.id)
        # Nothing new: no write transaction. Something new is applied under the payout's
        # lock, where it is judged again.
        if outcome is None or _target(payout, outcome) is None:
            continue
        if await _record(deps, kit, payout.id, outcome):
            changed += 1
    for payout in due:
        try:
            outcome = await kit.signer.status(payout.id)
        except SignerUnavailable:
            break  # the rest stay due and are asked next round; nothing was learnt
        if outcome is not None and _target(payout, outcome) is not None:
            if await _record(deps, kit, payout.id, outcome):  # a bounce: fails it, credits it
                changed += 1
        else:
            # Answered: the signer saw the destination's transaction (it took the payout);
            # otherwise (the chain provider down, the delivery not on chain yet) ask again soon.
            answered = outcome is not None and outcome.delivered is not None
            await _checked(deps, kit, payout, answered)
    return changed


async def _checked(deps: Deps, kit: PayoutKit, seen: Payout, answered: bool) -> None:
    """Schedule a watched payout's next bounce check, under its lock; unless another tracker
    checked it (or a bounce failed it) since `seen` was read: then its schedule stands."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        book = kit.books(uow)
        payout = await book.get(seen.id, for_update=True)
        if (payout is None or payout.status is not PayoutStatus.CONFIRMED
                or payout.bounce_check_at != seen.bounce_check_at):
            return
        payout.bounce_checked(now, answered=answered)
        await book.save(payout)
        await uow.commit()


async def _record(deps: Deps, kit: PayoutKit, payout_id: str, outcome: SignOutcome) -> bool:
    """Apply what the signer said, once (under the payout's lock); whether it changed."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        book = kit.books(uow)
        payout = await book.get(payout_id, for_update=True)
        assert payout is not None
        target = _target(payout, outcome)
        if target is None:
            return False
        payout.message_hash = outcome.message_hash or payout.message_hash
        payout.tx_hash = outcome.tx_hash or payout.tx_hash
        if target is PayoutStatus.FAILED:
            # The `payout` entry was booked before the signer was asked: back from external.
            await uow.ledger.post(ledger.payout_failed(payout.id, payout.merchant_id, payout.asset,
                                                       payout.amount, sent=True), now)
            payout.failure = _why(outcome)
        if outcome.network_fee and not payout.network_fee and target is not PayoutStatus.SENT:
            # Once, when the wallet's transaction is known (the journal's (kind, reference)
            # is unique): the platform pays the chain's fee (ledger.payout_network_fee).
            payout.network_fee = outcome.network_fee
            await uow.ledger.post(ledger.payout_network_fee(payout.id, outcome.network_fee), now)
        if payout.status is PayoutStatus.QUEUED and target is not PayoutStatus.FAILED:
            await _move(uow, book, payout, PayoutStatus.SENT, now)
        if target is not PayoutStatus.SENT:
            await _move(uow, book, payout, target, now)
        if target is PayoutStatus.CONFIRMED and may_bounce(payout):
            payout.watch_bounces(now)  # its first check is due next round; a failure ends it
            await book.save(payout)
        await uow.commit()
    return True


def may_bounce(payout: Payout) -> bool:
    """Whether the payout's message can come back: a jetton transfer always can; TON goes
    bounceable only to a contract's bounceable form (EQ…/kQ…, the signer's rule in
    adapters/signer/server.py), and a non-bounceable message is never sent back."""
    return payout.asset in JETTON_ASSETS or payout.destination.startswith(("EQ", "kQ"))


def _target(payout: Payout, outcome: SignOutcome) -> PayoutStatus | None:
    """Where the signer's outcome takes the payout; None when nothing changes."""
    if outcome.status == "refused":
        return PayoutStatus.FAILED if payout.status is PayoutStatus.QUEUED else None
    if outcome.bounced or outcome.status == "failed":
        return PayoutStatus.FAILED if payout.status is not PayoutStatus.FAILED else None
    if outcome.status == "confirmed" and outcome.delivered:
        return PayoutStatus.CONFIRMED if payout.status in (PayoutStatus.QUEUED,
                                                           PayoutStatus.SENT) else None
    if outcome.status in SIGNED:
        return PayoutStatus.SENT if payout.status is PayoutStatus.QUEUED else None
    return None


def _why(outcome: SignOutcome) -> str:
    if outcome.bounced:
        return "The destination bounced the payout back (an uninitialised or refusing contract)."
    if outcome.status == "refused":
        return f"The signer refused it ({outcome.refusal}): {outcome.reason}"
    return outcome.reason or "The hot wallet did not send it."


async def _move(uow: UnitOfWork, book: PayoutBook, payout: Payout, to: PayoutStatus,
                now: datetime) -> None:
    payout.move(to, now)
    await book.save(payout)
    await uow.events.append(_event(payout, to), now)


def _event(payout: Payout, status: PayoutStatus) -> events.Event:
    data: dict[str, Any] = {"asset": payout.asset, "amount": str(payout.amount),
                            "destination": payout.destination, "status": status.value}
    if payout.failure:
        data["failure"] = payout.failure
    if payout.tx_hash:
        data["tx_hash"] = payout.tx_hash
    return events.Event(events.payout_status_event(status.value), payout.merchant_id, payout.id,
                        data)
