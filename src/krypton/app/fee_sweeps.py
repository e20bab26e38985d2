"""Fee sweeps: the platform's fees on rails without the fee-collector contract (USDT on TON,
Telegram Stars) accumulate in `fees:<asset>` and leave for the owner once they reach the
asset's threshold (KRYPTON_FEE_SWEEP_THRESHOLDS), seed 001's policy, off chain.

- USDT on TON (and any asset the hot wallet sends): one `fee_sweep` entry (fees -> external,
  the entry the signer checks) and the sweep row in one transaction, then the signer pays
  the treasury (KRYPTON_TREASURY_ADDRESS, destination kind `treasury`, the only one a sweep
  may go to). Refused or not sent: `fee_sweep_failed` puts the fees back.
- Telegram Stars: no chain carries Stars, so the sweep is a ledger move to `owner:XTR`
  only; the owner withdraws Stars from the bot through Telegram (Fragment) themselves.

TON itself is not swept here: its fees stay in the fee-collector contracts, which flush them
on chain (`krypton contract`), so `krypton fees` shows their get_stats instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from krypton.app.deps import Deps
from krypton.app.ports import CollectorChain, SignerUnavailable, SignOutcome, SignRequest, UnitOfWork
from krypton.app.ports import Signer as SignerPort
from krypton.domain import ledger
from krypton.domain.collector import CollectorStats, CollectorStatus

OFF_CHAIN = frozenset({"XTR"})  # swept in the ledger only: no chain carries them
REPLAYED = "replayed_request"
# After a failed sweep, the asset's next one waits this long: a signer refusal (over its
# limits, a wrong treasury kind) would repeat every round otherwise.
RETRY_AFTER_FAILURE = timedelta(hours=1)


class SweepStatus(StrEnum):
    PENDING = "pending"  # booked, the signer not yet (or not yet successfully) asked
    SENT = "sent"  # signed and broadcast
    SWEPT = "swept"  # on chain (the wallet sent it), or moved in the ledger (Stars)
    FAILED = "failed"  # refused or not sent: the fees were put back


OPEN = (SweepStatus.PENDING, SweepStatus.SENT)


@dataclass
class Sweep:
    id: str
    asset: str
    amount: int
    destination: str | None  # the treasury address; None for a ledger-only sweep
    status: SweepStatus
    created_at: datetime
    updated_at: datetime
    failure: str | None = None


class SweepBook(Protocol):
    async def add(self, sweep: Sweep) -> None: ...
    async def save(self, sweep: Sweep) -> None: ...
    async def get(self, sweep_id: str) -> Sweep | None: ...
    async def in_status(self, statuses: Sequence[SweepStatus], limit: int) -> list[Sweep]: ...
    async def totals(self) -> dict[tuple[str, str], int]:
        """(asset, status) -> amount of the sweeps in that status."""
    async def entry_id(self, kind: str, reference: str) -> int | None: ...
    async def last_failed_at(self, asset: str) -> datetime | None:
        """When the asset's latest failed sweep failed."""


class SweepBooks(Protocol):
    def __call__(self, uow: UnitOfWork) -> SweepBook: ...


@dataclass(frozen=True, slots=True)
class SweepKit:
    books: SweepBooks
    signer: SignerPort | None
    thresholds: Mapping[str, int]  # asset -> smallest units at which fees are swept
    treasury: str | None  # the owner's wallet (TON address) for on-chain sweeps


@dataclass(frozen=True, slots=True)
class FeeLine:
    """One asset's fees for `krypton fees`: all in smallest units."""

    asset: str
    accumulated: int  # ever booked to fees:<asset> (held + swept + pending)
    held: int  # in fees:<asset> now, not yet swept
    swept: int
    pending: int  # booked for a sweep, not yet on chain
    threshold: int | None


async def sweep_due(deps: Deps, kit: SweepKit) -> int:
    """Book a sweep for every asset at its threshold, send the pending ones and follow the
    sent ones; how many sweeps changed."""
    changed = 0
    for asset, threshold in sorted(kit.thresholds.items()):
        changed += await _book(deps, kit, asset, threshold)
    return changed + await _send_pending(deps, kit) + await _follow(deps, kit)


async def _book(deps: Deps, kit: SweepKit, asset: str, threshold: int) -> int:
    on_chain = asset not in OFF_CHAIN
    if on_chain and (kit.signer is None or kit.treasury is None):
        return 0  # nowhere to send it from or to: the fees wait in the ledger
    now = deps.clock.now()
    async with deps.uow() as uow:
        book = kit.books(uow)
        if any(s.asset == asset for s in await book.in_status(OPEN, 1000)):
            return 0  # one sweep per asset at a time: its amount is what the signer checks
        failed_at = await book.last_failed_at(asset)
        if failed_at is not None and now - failed_at < RETRY_AFTER_FAILURE:
            return 0  # a refusal (a limit, say) would only repeat: wait, the fees stay booked
        account = ledger.fees(asset)
        held = (await uow.ledger.balances(account)).get((account, asset), 0)
        if held < threshold or held <= 0:
            return 0
        sweep = Sweep(deps.ids.new("swp"), asset, held, kit.treasury if on_chain else None,
                      SweepStatus.PENDING if on_chain else SweepStatus.SWEPT, now, now)
        await book.add(sweep)
        await uow.ledger.post(ledger.fee_sweep(sweep.id, asset, held, on_chain=on_chain), now)
        await uow.commit()
    return 1


async def _send_pending(deps: Deps, kit: SweepKit) -> int:
    if kit.signer is None:
        return 0
    async with deps.uow(write=False) as uow:
        book = kit.books(uow)
        pending = await book.in_status([SweepStatus.PENDING], 50)
        requests = []
        for sweep in pending:
            entry = await book.entry_id(ledger.FEE_SWEEP, sweep.id)
            assert entry is not None and sweep.destination is not None
            requests.append(SignRequest(sweep.id, "fee_sweep", sweep.asset, sweep.amount,
                                        sweep.destination, "treasury", entry))
    if not requests:
        return 0
    try:
        outcomes = await kit.signer.transfer(requests)
    except SignerUnavailable:
        return 0
    changed = 0
    for sweep, outcome in zip(pending, outcomes, strict=True):
        if outcome.refusal == REPLAYED:
            known = await _status(kit.signer, sweep.id)
            if known is None:
                continue
            outcome = known
        changed += await _record(deps, kit, sweep.id, outcome)
    return changed


async def _follow(deps: Deps, kit: SweepKit) -> int:
    if kit.signer is None:
        return 0
    async with deps.uow(write=False) as uow:
        sent = await kit.books(uow).in_status([SweepStatus.SENT], 50)
    changed = 0
    for sweep in sent:
        outcome = await _status(kit.signer, sweep.id)
        if outcome is not None:
            changed += await _record(deps, kit, sweep.id, outcome)
    return changed


async def _status(signer: SignerPort, request_id: str) -> SignOutcome | None:
    try:
        return await signer.status(request_id)
    except SignerUnavailable:
        return None


def _target(status: SweepStatus, outcome: SignOutcome) -> SweepStatus | None:
    if outcome.status == "refused" or outcome.status == "failed" or outcome.bounced:
        return SweepStatus.FAILED if status in OPEN else None
    if outcome.status == "confirmed":
        return SweepStatus.SWEPT if status in OPEN else None
    if outcome.status in ("recorded", "broadcast"):
        return SweepStatus.SENT if status is SweepStatus.PENDING else None
    return None


async def _record(deps: Deps, kit: SweepKit, sweep_id: str, outcome: SignOutcome) -> int:
    now = deps.clock.now()
    async with deps.uow() as uow:
        book = kit.books(uow)
        sweep = await book.get(sweep_id)
        assert sweep is not None
        target = _target(sweep.status, outcome)
        if target is None:
            return 0
        if target is SweepStatus.FAILED:
            await uow.ledger.post(ledger.fee_sweep_failed(sweep.id, sweep.asset, sweep.amount), now)
            why = outcome.reason or "the hot wallet did not send it"
            sweep.failure = (f"{outcome.refusal}: {why}" if outcome.refusal else why)[:500]
        sweep.status, sweep.updated_at = target, now
        await book.save(sweep)
        await uow.commit()
    return 1


async def report(deps: Deps, kit: SweepKit, assets: Sequence[str]) -> list[FeeLine]:
    """Per asset: accumulated, held, swept and pending (for `krypton fees`)."""
    async with deps.uow(write=False) as uow:
        balances = await uow.ledger.balances("fees:")
        totals = await kit.books(uow).totals()
    lines = []
    for asset in assets:
        held = balances.get((ledger.fees(asset), asset), 0)
        swept = totals.get((asset, SweepStatus.SWEPT.value), 0)
        pending = sum(totals.get((asset, s.value), 0) for s in OPEN)
        lines.append(FeeLine(asset, held + swept + pending, held, swept, pending,
                             kit.thresholds.get(asset)))
    return lines


@dataclass(frozen=True, slots=True)
class CollectorLine:
    """One active fee-collector contract's get_stats (None: it could not be read)."""

    merchant_id: str
    address: str
    stats: CollectorStats | None
    error: str | None = None


async def collector_lines(deps: Deps, chain: CollectorChain) -> list[CollectorLine]:
    """TON's fees live in the merchants' fee-collector contracts: each active one's get_stats,
    shown beside the ledger's figures (a contract that cannot be read says why)."""
    async with deps.uow(write=False) as uow:
        found = [await uow.collectors.for_merchant(m.id) for m in await uow.merchants.list()]
    lines = []
    for collector in found:
        if collector is None or collector.status is not CollectorStatus.ACTIVE:
            continue
        try:
            lines.append(CollectorLine(collector.merchant_id, collector.address,
                                       await chain.stats(collector.address)))
        except Exception as exc:  # one unreadable contract must not hide the others
            lines.append(CollectorLine(collector.merchant_id, collector.address, None,
                                       str(exc) or type(exc).__name__))
    return lines
