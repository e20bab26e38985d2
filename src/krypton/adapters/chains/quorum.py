"""Provider agreement: several independent providers of one chain, and a transfer final only
when a quorum of the healthy ones reports it the same (issue 19 §1).

Discovery is one provider's (the primary's) `read`, from the stored cursor as with a single
provider. Every transfer it reports (and every one it reports failed or rejects) is then
looked up by its transaction id at each other provider (`Lookup`: recheck-style, never a
scan), and what each provider says is reduced to its `Facts` (everything ingest keeps:
success, asset, amount, destination, memo, sender, block, block time) and whether it calls
the transfer final. The facts that most non-demoted providers report win if at least
`quorum` of them report them (`verdict`); the transfer is then reported with those facts
(the honest amount, asset, payer and time even when the primary lied), and final only when
`quorum` of them also call it final. Facts without a quorum are not reported at all (nothing
of them is stored, so a liar's amount can never become a payment); a reader that re-reads
from its cursor instead of rechecking (TON) keeps its cursor where it was until they are
settled. A rejection (counterfeit, unsupported: stored as unmatched for good) stands only
where a quorum sees no credit either; a quorum that sees the credit gets it reported. A
transfer only the primary calls a credit, where the quorum sees none, is not reported.

A provider that reports other facts than the verdict's, omits a transfer a quorum calls
final, does not call it final yet (lags), or calls final one a quorum does not have at all
(phantom), is logged and counted in
`krypton_provider_disagreements_total{chain, provider, kind}` (once per transfer and kind),
and after `Policy.demote_after` disagreements within `Policy.window` it is demoted: it is
still asked, but its word no longer counts toward a quorum and it is not primary, until it
has agreed `Policy.restore_after` times in a row. When fewer non-demoted providers remain
than the quorum, nothing is made final (`Agreement.quorum_met`, shown on /healthz) until a
demoted provider has earned its way back, calling final what every healthy one does.
"omitted" and "lag" wait `Policy.lag_grace` earlier verdicts (a provider a poll behind is
not a liar); a primary that alone holds the cursor back (`Policy.hold_after` reads in a row
by the same transfer: one only it has, or a stale head) hands discovery to the next provider
and is counted ("held") on each such read until it is demoted.

A primary that omits transfers would hide them from everyone (and move the cursor past
them): every `Policy.audit_every`-th read of a reader is an audit, another provider reading
from where the previous audit ended (a cursor of its own, `<cursor>:audit`, so a restart
loses nothing; an audit that had to withhold something reads that stretch again), so an
omission is found, ingested and counted. The chain's head (`agreed_head`) is the
`quorum`-th highest of the healthy providers', not the first provider's word.

Demotion is kept in memory, not in the database: it protects liveness, not money. Safety is
the quorum's (one provider alone never makes anything final), and after a restart a provider
that still lies is demoted again after `demote_after` disagreements; the audits find a lying
primary within `audit_every` reads. A quorum of half the providers or less lets a lying
primary win while its honest peers are down: bootstrap logs it at start-up, `krypton doctor`
flags it.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import NamedTuple, Protocol

import structlog
from prometheus_client import Counter, Gauge

from krypton.adapters.chains.heads import ton_head, tron_head
from krypton.adapters.chains.provider import Priority, ProviderError
from krypton.adapters.chains.ton import toncenter
from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.client import TonCenterClient
from krypton.adapters.chains.ton.reader import TonReader
from krypton.adapters.chains.tron.client import TronGridClient
from krypton.adapters.chains.tron.reader import TronReader
from krypton.app.chain_time import ChainHead
from krypton.app.ports import (
    ChainRead,
    ChainReader,
    Clock,
    ProviderSnapshot,
    TransferKey,
    UnitOfWorkFactory,
    Watch,
)
from krypton.domain import finality
from krypton.domain.payment import ObservedTransfer

log = structlog.get_logger()

# Everything ingest keeps of a transfer is agreed on: the asset (the same integer is 0.1 TON or
# 100 USDT), the sender (where a refund "to source" goes) and the block's time (lateness).
FACT_KINDS = ("success", "asset", "amount", "destination", "memo", "sender", "block", "block_time")
# What a disagreement can be: a fact that differs, a transfer left out, not final yet, called
# final where a quorum does not have it at all, or a primary holding the cursor (`hold_after`).
KINDS = ("omitted", *FACT_KINDS, "lag", "phantom", "held")
DISAGREEMENTS = Counter(
    "krypton_provider_disagreements",
    "Transfers a chain provider reported otherwise than the quorum of its peers, by kind "
    "(omitted, success, asset, amount, destination, memo, sender, block, block_time, lag, "
    "phantom; held: a read whose cursor the primary alone held); once per transfer and kind",
    ["chain", "provider", "kind"])
DEMOTED = Gauge("krypton_provider_demoted",
                "1 while a chain provider is demoted for disagreeing with its peers", ["chain", "provider"])
QUORUM_MET = Gauge("krypton_provider_quorum_met",
                   "1 while enough non-demoted providers remain for a chain's quorum (else nothing "
                   "is made final)", ["chain"])
# Disagreements already counted (provider, transfer, kind), so a provider slow on one transfer
# is counted once for it, not on every round; past this many the memory starts afresh.
RECORDED_KEPT = 10_000
Lookup = Callable[[Sequence[TransferKey]], Awaitable[dict[TransferKey, "Sighting"]]]


class Facts(NamedTuple):
    """What providers must agree on; a failed transaction is only `success=False`."""

    success: bool
    amount: int | None = None
    destination: str | None = None
    memo: str | None = None
    block: int | None = None
    asset: str | None = None
    sender: str | None = None
    block_time: datetime | None = None


FAILED = Facts(False)


@dataclass(frozen=True, slots=True)
class Sighting:
    """One provider's answer about one transfer: its facts (None: it does not have it)."""

    facts: Facts | None
    final: bool = False
    transfer: ObservedTransfer | None = None

    @classmethod
    def seen(cls, transfer: ObservedTransfer) -> Sighting:
        facts = Facts(True, transfer.amount, transfer.destination, transfer.memo, transfer.block,
                      transfer.asset, transfer.sender, transfer.block_time)
        return cls(facts, transfer.final, transfer)


ABSENT = Sighting(None)


@dataclass(frozen=True, slots=True)
class Policy:
    quorum: int = 1
    demote_after: int = 5  # disagreements within `window` that demote a provider
    window: timedelta = timedelta(minutes=10)
    restore_after: int = 10  # agreements in a row that bring a demoted provider back
    audit_every: int = 10  # every n-th read discovers through another provider
    # Earlier verdicts a transfer needs (having it; final, for "lag") before a provider not
    # there yet is counted: an honest provider a poll behind is not a liar. Audits do not wait.
    lag_grace: int = 1
    # Reads in a row whose cursor the primary alone held (a transfer only it has, a head only
    # it has not passed) before discovery goes to the next provider, each such read counted.
    hold_after: int = 30

    def __post_init__(self) -> None:
        if min(self.quorum, self.demote_after, self.restore_after, self.audit_every, self.hold_after) < 1:
            raise ValueError("the quorum policy's counts must be 1 or more")
        if self.lag_grace < 0:
            raise ValueError("the quorum policy's lag_grace must be 0 or more")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a quorum says of one transfer; `facts` None with `decided`: a quorum lacks it."""

    decided: bool
    facts: Facts | None = None
    final: bool = False
    transfer: ObservedTransfer | None = None


@dataclass(slots=True)
class _Standing:
    disagreements: deque[datetime] = field(default_factory=deque)
    demoted: bool = False
    agreed_in_a_row: int = 0


class Agreement:
    """One chain's record of its providers' agreement: who is demoted, who is primary.

    Shared by every quorum reader of the chain (the platform's account, merchants' accounts,
    the Tron sweep), so a provider's disagreements anywhere count together."""

    def __init__(self, chain: str, names: Sequence[str], policy: Policy, clock: Clock) -> None:
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"{chain} providers need distinct names, at least one")
        if not 1 <= policy.quorum <= len(names):
            raise ValueError(f"the {chain} quorum must be from 1 to {len(names)} (the number of "
                             f"providers), not {policy.quorum}")
        self.chain = chain
        self.names = list(names)
        self.policy = policy
        self.clock = clock
        self._standing = {name: _Standing() for name in names}
        self._recorded: OrderedDict[tuple[str, TransferKey, str], None] = OrderedDict()
        # Per transfer: earlier verdicts that had it, and that called it final (`lag_grace`).
        self._history: OrderedDict[TransferKey, tuple[int, int]] = OrderedDict()
        self.reads = 0
        for name in names:
            DEMOTED.labels(chain, name).set(0)
        QUORUM_MET.labels(chain).set(1)

    def healthy(self) -> list[str]:
        """The providers whose word counts, in configured order."""
        return [n for n in self.names if not self._standing[n].demoted]

    def demoted(self, name: str) -> bool:
        return self._standing[name].demoted

    @property
    def quorum_met(self) -> bool:
        return len(self.healthy()) >= self.policy.quorum

    def primary(self) -> str:
        """The first provider not demoted (the first of all when every one is)."""
        return next(iter(self.healthy()), self.names[0])

    def auditor(self, reads: int) -> str | None:
        """Who audits a reader's `reads`-th read: every `audit_every`-th, the healthy providers
        after the primary in turn; None: the primary reads."""
        healthy = self.healthy()
        if len(healthy) < 2 or reads % self.policy.audit_every:
            return None
        turn = reads // self.policy.audit_every - 1  # the first audit: the second provider
        return healthy[turn % (len(healthy) - 1) + 1]

    def _first(self, name: str, key: TransferKey, kind: str) -> bool:
        """Whether this is the first time (name, key, kind) is recorded."""
        marker = (name, key, kind)
        if marker in self._recorded:
            return False
        self._recorded[marker] = None
        if len(self._recorded) > RECORDED_KEPT:
            self._recorded.popitem(last=False)
        return True

    def disagreed(self, name: str, key: TransferKey, kind: str) -> None:
        if not self._first(name, key, kind):
            return
        DISAGREEMENTS.labels(self.chain, name, kind).inc()
        log.warning("provider_disagreement", chain=self.chain, provider=name, tx=key[0],
                    index=key[1], kind=kind)
        standing = self._standing[name]
        now = self.clock.now()
        standing.agreed_in_a_row = 0
        standing.disagreements.append(now)
        while standing.disagreements and now - standing.disagreements[0] > self.policy.window:
            standing.disagreements.popleft()
        if not standing.demoted and len(standing.disagreements) >= self.policy.demote_after:
            standing.demoted = True
            DEMOTED.labels(self.chain, name).set(1)
            log.error("provider_demoted", chain=self.chain, provider=name,
                      disagreements=len(standing.disagreements), quorum_met=self.quorum_met)
            self._quorum_changed()

    def verdicts(self, key: TransferKey, *, final: bool) -> tuple[int, int]:
        """How many earlier verdicts had `key`, and how many called it final; counts this one."""
        had, finals = self._history.pop(key, (0, 0))
        self._history[key] = (had + 1, finals + final)
        if len(self._history) > RECORDED_KEPT:
            self._history.popitem(last=False)
        return had, finals

    def agreed(self, name: str, key: TransferKey) -> None:
        """`name` reported a final transfer as the quorum did (counted once a transfer)."""
        if not self._first(name, key, "agreed"):
            return
        standing = self._standing[name]
        standing.agreed_in_a_row += 1
        if standing.demoted and standing.agreed_in_a_row >= self.policy.restore_after:
            standing.demoted = False
            standing.disagreements.clear()
            DEMOTED.labels(self.chain, name).set(0)
            log.warning("provider_restored", chain=self.chain, provider=name)
            self._quorum_changed()

    def snapshot(self) -> ProviderSnapshot:
        """The quorum's state as a provider report (name "<chain api>-quorum"), so /healthz in
        any process sees it: state "quorum_unmet" while too few providers remain."""
        api = {"ton": "toncenter", "tron": "trongrid"}.get(self.chain, self.chain)
        demoted = [n for n in self.names if self._standing[n].demoted]
        note = (f"{len(self.healthy())} of {len(self.names)} providers healthy, quorum "
                f"{self.policy.quorum}" + (f"; demoted: {', '.join(demoted)}" if demoted else ""))
        return ProviderSnapshot(
            name=f"{api}-quorum", host=f"primary {self.primary()}",
            state="closed" if self.quorum_met else "quorum_unmet", success_rate=1.0, latency_ms=0.0,
            failures=0, throttled=0, consecutive_failures=0, last_error=note if demoted else None,
            last_error_age_s=0 if demoted else None)

    def _quorum_changed(self) -> None:
        QUORUM_MET.labels(self.chain).set(1 if self.quorum_met else 0)
        if not self.quorum_met:
            log.error("provider_quorum_unmet", chain=self.chain, healthy=len(self.healthy()),
                      quorum=self.policy.quorum)


def verdict(sightings: Mapping[str, Sighting], counted: Sequence[str], quorum: int,
            prefer: str) -> Verdict:
    """The facts most of the `counted` providers report, if at least `quorum` do (ties go to
    `prefer`'s, except between two versions each with a quorum of two or more: then none);
    final when `quorum` of those call it final. The rule, tested alone."""
    groups: dict[Facts | None, list[str]] = {}
    for name in counted:
        if name in sightings:
            groups.setdefault(sightings[name].facts, []).append(name)
    if not groups:
        return Verdict(False)

    def weight(item: tuple[Facts | None, list[str]]) -> tuple[int, bool]:
        return len(item[1]), prefer in item[1]
    facts, names = max(groups.items(), key=weight)
    if len(names) < quorum:
        return Verdict(False)
    if quorum > 1 and any(other != facts and len(backers) == len(names) for other, backers in groups.items()):
        # Two versions, each with a quorum and as many backers (a quorum of half or less):
        # nobody's word. A quorum of one trusts the discovering provider on a tie.
        log.error("provider_quorum_conflict", quorum=quorum, backers=len(names))
        return Verdict(False)
    finals = [n for n in names if sightings[n].final]
    final = len(finals) >= quorum and facts is not None
    # The transfer reported: `prefer`'s if it is of the quorum (and final when the quorum
    # says so), else the one furthest along, so its confirmation count goes with it.
    mine = prefer in names and (sightings[prefer].final or not final)
    source = prefer if mine else max(names, key=lambda n: _progress(sightings[n]))
    return Verdict(True, facts, final, sightings[source].transfer)


def _progress(sighting: Sighting) -> tuple[bool, int]:
    transfer = sighting.transfer
    return sighting.final, transfer.confirmations if transfer is not None else 0


def _credits(sighting: Sighting) -> bool:
    return sighting.facts is not None and sighting.facts.success


def disagreement(sighting: Sighting, decided: Verdict) -> str | None:
    """How one provider's answer differs from a decided verdict (None: it agrees)."""
    if sighting.facts is None:
        return None if decided.facts is None else ("omitted" if decided.final else None)
    if decided.facts is None:
        # A quorum lacks it: one that merely has it may be ahead, one that calls it final
        # invents it (or holds on to a reorganised block).
        return "phantom" if sighting.final else None
    for kind in FACT_KINDS:
        if getattr(sighting.facts, kind) != getattr(decided.facts, kind):
            return kind
    return "lag" if decided.final and not sighting.final else None


@dataclass(frozen=True, slots=True)
class Member:
    """One provider of the chain: its own reader (own client) and its lookup by tx id."""

    name: str
    reader: ChainReader
    lookup: Lookup


class Positions(Protocol):
    """Where a reader's audits have read to, kept apart from its cursor (`<cursor>:audit`)."""

    async def get(self, name: str) -> str | None: ...

    async def set(self, name: str, value: str) -> None: ...


class MemoryPositions:
    """Audit positions kept in memory: a reader without a database (tests, benchmarks)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, name: str) -> str | None:
        return self.values.get(name)

    async def set(self, name: str, value: str) -> None:
        self.values[name] = value


class StoredPositions:
    """Audit positions in the cursors table, so what a primary skipped just before a restart
    (a deploy, a crash, the watcher lease moving) is still audited after it."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self.uow = uow

    async def get(self, name: str) -> str | None:
        async with self.uow(write=False) as uow:
            return await uow.cursors.get(name)

    async def set(self, name: str, value: str) -> None:
        async with self.uow() as uow:
            await uow.cursors.set(name, value)
            await uow.commit()


@dataclass(slots=True)
class _Agreed:
    """`_agree`'s answer: the read to ingest, and the transfers by which the source's own word
    (a transfer only it has, or one it does not call final where the quorum does) held its
    cursor (empty when the cursor moved)."""

    read: ChainRead
    held_by: frozenset[TransferKey] = frozenset()


class QuorumReader:
    """A ChainReader over several providers of one chain (see the module's docstring)."""

    def __init__(self, members: Sequence[Member], book: Agreement,
                 positions: Positions | None = None) -> None:
        if [m.name for m in members] != book.names:
            raise ValueError("the quorum reader's members must be the agreement's providers, in order")
        self.members = {m.name: m for m in members}
        self.book = book
        first = members[0].reader
        self.chain = first.chain
        self.cursor_name = first.cursor_name
        self.rechecks = first.rechecks
        self.last: ChainReader = first  # the reader of the latest read
        self.reads = 0
        # Where the next audit reads from: the stored cursor as the previous audit ended (or
        # as the first read found it), kept as a cursor of its own so a restart loses nothing.
        self.positions: Positions = positions if positions is not None else MemoryPositions()
        self.audit_name = f"{self.cursor_name}:audit"
        self._audit_from: str | None = None
        self._audit_known = False
        # Reads in a row whose cursor the primary (`_holder`) alone held (Policy.hold_after),
        # by a transfer that held it on the read before too: a primary a poll ahead of its
        # peers on a busy account holds each new transfer for a read or two, never the same.
        self._holder: str | None = None
        self._held = 0
        self._held_by: frozenset[TransferKey] = frozenset()

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        self.reads += 1
        await self._load_audit(cursor)
        auditor = self.book.auditor(self.reads)
        if auditor is not None:
            return await self._audit(auditor, cursor, watch)
        name = self.book.primary()
        if name != self._holder:
            self._holder, self._held, self._held_by = name, 0, frozenset()
        handed = self._held >= self.book.policy.hold_after
        others = [n for n in self.book.healthy() if n != name]
        if handed and others:
            # The primary alone has held the cursor for `hold_after` reads: the next provider
            # discovers (the quorum still decides every fact), and the primary is counted once
            # a read until it is demoted or reads on by itself again.
            self.book.disagreed(name, (f"{self.cursor_name}:held", self.reads), "held")
            order = [*others, name]
        else:
            order = [name, *others]
        error: Exception | None = None
        for candidate in order:  # a provider that fails: the next discovers
            member = self.members[candidate]
            try:
                read = await member.reader.read(cursor, watch)
            except (ProviderError, ValueError) as exc:  # ValueError: an answer that does not parse
                log.warning("provider_discovery_failed", chain=self.chain, provider=candidate,
                            error=type(exc).__name__, detail=str(exc)[:200])
                error = error or exc
                continue
            self.last = member.reader
            agreed = await self._agree(read, candidate)
            if candidate == name:
                again = agreed.held_by & self._held_by
                self._held, self._held_by = (self._held + 1 if again else 0), agreed.held_by
            return agreed.read
        assert error is not None
        raise error

    async def _load_audit(self, cursor: str | None) -> None:
        """The first read learns where audits stand: as stored, else the stored cursor now."""
        if self._audit_known:
            return
        stored = await self.positions.get(self.audit_name)
        self._audit_from, self._audit_known = (stored if stored is not None else cursor), True
        if stored is None and cursor is not None:
            await self.positions.set(self.audit_name, cursor)

    async def _move_audit(self, position: str | None) -> None:
        if position == self._audit_from:
            return
        self._audit_from = position
        if position is not None:
            await self.positions.set(self.audit_name, position)

    async def _audit(self, name: str, cursor: str | None, watch: Watch) -> ChainRead:
        """Another provider reads from where the last audit ended: a transfer the primary
        left out (and moved the cursor past) is found, ingested and the primary counted. An
        audit never moves the stored cursor; a long way is covered a page per audit. What an
        audit had to withhold (no quorum yet) keeps the audit where it was: read again."""
        try:
            read = await self.members[name].reader.read(self._audit_from, watch)
        except (ProviderError, ValueError) as exc:
            log.warning("provider_audit_failed", chain=self.chain, provider=name,
                        error=type(exc).__name__, detail=str(exc)[:200])
            return ChainRead()
        agreed = (await self._agree(read, name, audit=True)).read
        # Held: the quorum kept the auditor's cursor back, or the auditor stopped at what it
        # found itself (TON: a transaction not final to it) and read no further.
        held = agreed.cursor is None and (read.cursor is not None or bool(read.seen))
        if not held:
            await self._move_audit(read.cursor if read.more and read.cursor is not None else cursor)
        return dataclasses.replace(agreed, cursor=None, more=False)

    async def recheck(self, unfinished: Sequence[TransferKey]) -> ChainRead:
        if not unfinished:
            return ChainRead()
        answers = await self._ask(list(self.members), list(unfinished))
        seen: list[ObservedTransfer] = []
        failed: list[TransferKey] = []
        vanished: list[TransferKey] = []
        for key in unfinished:
            decided = self._decide(key, answers, self.book.primary())
            if not decided.decided:
                continue
            if decided.facts is None:
                vanished.append(key)
            elif not decided.facts.success:
                failed.append(key)
            elif decided.transfer is not None:
                seen.append(dataclasses.replace(decided.transfer, final=decided.final))
        return ChainRead(seen=seen, failed=failed, vanished=vanished)

    async def _agree(self, read: ChainRead, source: str, *, audit: bool = False) -> _Agreed:
        """`read` (by `source`) as the quorum has it: every transfer, failure and rejection in
        it is looked up at the others; only what a quorum says is reported, with its facts."""
        failed = set(read.failed)
        own: dict[TransferKey, Sighting] = {}
        for t in read.seen:
            own[(t.tx_id, t.index)] = FAILED_SIGHTING if (t.tx_id, t.index) in failed else Sighting.seen(t)
        for key in failed:
            own.setdefault(key, FAILED_SIGHTING)
        # A rejection (counterfeit, unsupported) is the source saying "this credits nothing".
        rejected = {(t.tx_id, t.index): (t, reason) for t, reason in read.rejected}
        for key in rejected:
            own.setdefault(key, FAILED_SIGHTING)
        if not own:
            return _Agreed(read)
        others = [n for n in self.members if n != source]
        answers = await self._ask(others, list(own))
        for key, sighting in own.items():
            answers.setdefault(source, {})[key] = sighting
        seen: list[ObservedTransfer] = []
        kept_failed: list[TransferKey] = []
        kept_rejected: list[tuple[ObservedTransfer, str]] = []
        withheld = unsettled = False
        blamed: set[TransferKey] = set()
        for t in read.seen:
            key = (t.tx_id, t.index)
            decided = self._decide(key, answers, source, audit=audit)
            if not decided.decided or decided.facts is None:
                withheld = True  # no quorum for its facts: reported once there is one
                if self._outvoted(answers, decided):
                    blamed.add(key)
                continue
            if not decided.facts.success:
                if key in failed:  # the source says so too: the payment exists, to fail
                    seen.append(dataclasses.replace(t, final=False))
                    kept_failed.append(key)
                # else the source alone says it credits: no payment at all, nothing recorded
                continue
            if decided.final and not own[key].final:
                blamed.add(key)
            unsettled = unsettled or (t.final and not decided.final)
            seen.append(dataclasses.replace(decided.transfer or t, final=decided.final))
        seen_keys = {(t.tx_id, t.index) for t in read.seen}
        for key in read.failed:
            if key not in seen_keys:
                withheld = True  # a failure without its transfer: nothing to fail
        for key, (t, reason) in rejected.items():
            if key in seen_keys:
                continue
            decided = self._rejection(key, answers, source, audit=audit)
            if not decided.decided:
                withheld = True  # neither a quorum without a credit nor one with: read again
            elif decided.facts is None or not decided.facts.success:
                kept_rejected.append((t, reason))  # a quorum sees no credit either
            elif decided.transfer is not None:
                # A quorum sees it credited (the source's "success" was counted against it).
                unsettled = unsettled or (t.final and not decided.final)
                seen.append(dataclasses.replace(decided.transfer, final=decided.final))
            else:
                withheld = True
        agreed = dataclasses.replace(read, seen=seen, failed=kept_failed, rejected=kept_rejected)
        # What was withheld must be read again, and so must what was not made final by a
        # reader that re-reads from its cursor instead of rechecking (TON): the cursor stays.
        if withheld or (unsettled and not self.rechecks):
            return _Agreed(dataclasses.replace(agreed, cursor=None, more=False), frozenset(blamed))
        return _Agreed(agreed, frozenset(blamed) if read.cursor is None else frozenset())

    def _outvoted(self, answers: Mapping[str, Mapping[TransferKey, Sighting]], decided: Verdict) -> bool:
        """Whether a transfer was withheld because a quorum has it otherwise (or not at all),
        not merely because too few providers answered."""
        if decided.decided:
            return True
        return sum(1 for n in self.book.healthy() if n in answers) >= self.book.policy.quorum

    def _rejection(self, key: TransferKey, answers: Mapping[str, Mapping[TransferKey, Sighting]],
                   source: str, *, audit: bool) -> Verdict:
        """What a quorum says of a transaction the source rejected: no credit (absent, or
        crediting nothing: the rejection stands), credited (decided as any transfer, the
        source's "no credit" counted against it), or undecided."""
        sightings = {name: found.get(key, ABSENT) for name, found in answers.items()}
        no_credit = {name: FAILED_SIGHTING if s.facts is None or not s.facts.success else s
                     for name, s in sightings.items()}
        healthy, quorum = self.book.healthy(), self.book.policy.quorum
        decided = verdict(no_credit, healthy, quorum, source)
        if not decided.decided:
            return decided
        if decided.facts is not None and decided.facts.success:
            return self._decide(key, answers, source, audit=audit)
        # Stored, a rejection is for good (ingest answers "unchanged" for an unmatched key). A
        # healthy provider that sees a credit is outvoted by explicit "credits nothing" answers
        # at once, but by providers merely without the transaction (a peer a poll behind, or
        # Tron's answer for a counterfeit log) only after `lag_grace` earlier verdicts.
        crediting = [n for n in healthy if n in sightings and _credits(sightings[n])]
        if not crediting:
            return decided
        explicit = sum(1 for n in healthy if n in sightings and sightings[n].facts == FAILED)
        had, _ = self.book.verdicts(key, final=False)
        if explicit < quorum and had < self.book.policy.lag_grace and not audit:
            return Verdict(False)
        for name in crediting:
            self.book.disagreed(name, key, "success")
        return decided

    async def _ask(self, names: Sequence[str], keys: list[TransferKey],
                   ) -> dict[str, dict[TransferKey, Sighting]]:
        """Each provider's sightings of `keys`; one that fails to answer is left out."""
        answers: dict[str, dict[TransferKey, Sighting]] = {}
        for name in names:
            try:
                answers[name] = await self.members[name].lookup(keys)
            except (ProviderError, ValueError) as exc:
                log.warning("provider_lookup_failed", chain=self.chain, provider=name,
                            error=type(exc).__name__, detail=str(exc)[:200])
        return answers

    def _decide(self, key: TransferKey, answers: Mapping[str, Mapping[TransferKey, Sighting]],
                prefer: str, *, audit: bool = False) -> Verdict:
        sightings = {name: found.get(key, ABSENT) for name, found in answers.items()}
        if not self.book.quorum_met:
            self._earn_back(key, sightings)
        decided = verdict(sightings, self.book.healthy(), self.book.policy.quorum, prefer)
        if not decided.decided:
            return decided
        had, finals = (self.book.verdicts(key, final=decided.final) if decided.facts is not None
                       else (0, 0))
        grace = self.book.policy.lag_grace
        for name, sighting in sightings.items():
            kind = disagreement(sighting, decided)
            # A provider not there yet is counted once the quorum has had the transfer (final,
            # for "lag") for `lag_grace` earlier verdicts; an audit reads behind the primary.
            if kind == "omitted" and had < grace and not audit:
                continue
            if kind == "lag" and finals < grace and not audit:
                continue
            if kind is not None:
                self.book.disagreed(name, key, kind)
            elif decided.final and sighting.final and sighting.facts == decided.facts:
                self.book.agreed(name, key)
        return decided

    def _earn_back(self, key: TransferKey, sightings: Mapping[str, Sighting]) -> None:
        """Too few healthy providers for a quorum: nothing is decided, so a demoted provider
        earns its way back by calling final what every healthy one that answered (one at
        least) calls final the same; without this nothing would be final until a restart."""
        healthy = [sightings[n] for n in self.book.healthy() if n in sightings]
        if not healthy or any(not s.final or s.facts is None for s in healthy):
            return
        facts = healthy[0].facts
        if any(s.facts != facts for s in healthy):
            return
        for name, sighting in sightings.items():
            if self.book.demoted(name) and sighting.final and sighting.facts == facts:
                self.book.agreed(name, key)


FAILED_SIGHTING = Sighting(FAILED)


class QuorumTonReader(QuorumReader):
    """The TON quorum reader, with what the chain worker asks of a TON reader."""

    def __init__(self, members: Sequence[Member], book: Agreement, primary: TonReader,
                 positions: Positions | None = None) -> None:
        super().__init__(members, book, positions)
        self.account = primary.account
        self.masters = primary.masters


class QuorumTronReader(QuorumReader):
    """The Tron quorum reader, with what the chain worker asks of a Tron reader: whether it
    scans, its policy, a client for the head, and the account sweep (under quorum too)."""

    def __init__(self, members: Sequence[Member], book: Agreement, readers: Mapping[str, TronReader],
                 positions: Positions | None = None) -> None:
        super().__init__(members, book, positions)
        self.readers = dict(readers)
        first = self.readers[book.names[0]]
        self.policy = first.policy
        self.sweep = QuorumReader([Member(m.name, self.readers[m.name].sweep, m.lookup) for m in members],
                                  book, self.positions)

    @property
    def scanning(self) -> bool:
        last = self.last
        return last.scanning if isinstance(last, TronReader) else False

    @property
    def client(self) -> TronGridClient:
        return self.readers[self.book.primary()].client

    async def head(self) -> ChainHead:
        """The Tron head as the healthy providers have it (`agreed_head`)."""
        heads = {name: partial(tron_head, reader.client) for name, reader in self.readers.items()}
        return await agreed_head(self.book, heads)


def tron_lookup(reader: TronReader) -> Lookup:
    """Sightings through the Tron reader's recheck: receipts by transaction id."""
    async def lookup(keys: Sequence[TransferKey]) -> dict[TransferKey, Sighting]:
        read = await reader.recheck(keys)
        found: dict[TransferKey, Sighting] = {key: FAILED_SIGHTING for key in read.failed}
        for t in read.seen:
            found[(t.tx_id, t.index)] = Sighting.seen(t)
        return found  # vanished, or no transfer at that index: absent
    return lookup


def ton_lookup(reader: TonReader) -> Lookup:
    """Sightings of TON transactions of the reader's account, each asked for by its hash
    (TON Center v3 /transactions?hash=), judged final against this provider's own head."""
    async def lookup(keys: Sequence[TransferKey]) -> dict[TransferKey, Sighting]:
        await reader.learn_jetton_wallets()
        head: int | None = None
        found: dict[TransferKey, Sighting] = {}
        for tx_id, index in keys:
            payload = await reader.client.provider.get_json(
                "/transactions", params={"account": reader.account.raw, "hash": tx_id, "limit": 1},
                priority=Priority.CONFIRM)
            if not isinstance(payload, dict):
                raise toncenter.PayloadError("/transactions did not answer with an object")
            page = toncenter.parse_transactions(payload, our_address=reader.account,
                                                jetton_wallets=reader.jetton_wallets,
                                                fee_collector=reader.fee_collector)
            tx = next((t for t in page if t.hash == tx_id), None)
            if tx is None:
                continue
            if not tx.credited:
                found[(tx_id, index)] = FAILED_SIGHTING
                continue
            if head is None:
                head = await reader.client.masterchain_seqno()
            judged = finality.ton(head, tx.mc_block_seqno)
            found[(tx_id, index)] = Sighting.seen(tx.observed(judged.confirmations, final=judged.final))
        return found
    return lookup


class TonQuorum:
    """The TON providers' clients and agreement: a quorum reader for any account (the
    platform's, and merchants' own as the worker finds them), all sharing one book."""

    def __init__(self, clients: Mapping[str, TonCenterClient], policy: Policy, clock: Clock,
                 positions: Positions | None = None) -> None:
        self.clients = dict(clients)
        self.book = Agreement("ton", list(clients), policy, clock)
        self.positions = positions

    def reader(self, account: TonAddress, masters: Mapping[TonAddress, str], *,
               fee_collector: bool = False) -> QuorumTonReader:
        readers = {name: TonReader(client, account, masters, fee_collector=fee_collector)
                   for name, client in self.clients.items()}
        members = [Member(name, r, ton_lookup(r)) for name, r in readers.items()]
        return QuorumTonReader(members, self.book, readers[self.book.names[0]], self.positions)

    async def head(self) -> ChainHead:
        """The TON head as the healthy providers have it (`agreed_head`)."""
        return await agreed_head(self.book, {n: partial(ton_head, c) for n, c in self.clients.items()})


def tron_quorum(readers: Mapping[str, TronReader], policy: Policy, clock: Clock,
                positions: Positions | None = None) -> QuorumTronReader:
    """One quorum reader over each Tron provider's own reader."""
    book = Agreement("tron", list(readers), policy, clock)
    return QuorumTronReader([Member(n, r, tron_lookup(r)) for n, r in readers.items()], book, readers,
                            positions)


async def agreed_head(book: Agreement, heads: Mapping[str, Callable[[], Awaitable[ChainHead]]]) -> ChainHead:
    """The chain's head as the healthy providers have it: the `quorum`-th highest of those that
    answer, so no fewer than `quorum` of them have reached it (a head one provider makes up or
    holds back moves nothing alone: it feeds chain time, hence expiry); with fewer answers,
    the primary's. Raises the primary's error when even it does not answer."""
    found: dict[str, ChainHead] = {}
    error: Exception | None = None
    for name in book.healthy() or [book.primary()]:
        try:
            found[name] = await heads[name]()
        except Exception as exc:  # a provider that fails to answer is left out, as in _ask
            log.debug("provider_head_unknown", chain=book.chain, provider=name, error=type(exc).__name__)
            error = error if name != book.primary() else exc
    ranked = sorted(found.values(), key=lambda head: head.number, reverse=True)
    quorum = book.policy.quorum
    if len(ranked) >= quorum:
        return ranked[quorum - 1]
    primary = found.get(book.primary())
    if primary is not None:
        return primary
    raise error or LookupError(f"no healthy {book.chain} provider gave its head")
