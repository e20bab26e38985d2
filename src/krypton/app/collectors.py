"""A merchant's fee-collector contract: planned, deployed by its owner, read back, used.

1. `prepare` computes the contract for a merchant (owner = the platform, destination = the
   merchant's wallet, the merchant's fee) and records it as pending; the operator deploys
   it with the deploy link.
2. `activate` (run by the chain loop, or on demand) reads the contract's configuration back
   from the chain; once it answers, new invoices offer TON at the contract.
3. `report` puts the contract's get_stats next to what the ledger recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from krypton.app.deps import Deps
from krypton.app.ports import CollectorChain, CollectorPlan
from krypton.domain import events, ledger
from krypton.domain.assets import TON
from krypton.domain.collector import CollectorStats, CollectorStatus, FeeCollector
from krypton.domain.errors import Conflict, DomainError, NotFound

DEFAULT_MIN_WITHDRAWAL = 10 * 10**TON.decimals
DEFAULT_DEPLOY_AMOUNT = 60_000_000  # 0.06 TON: the contract's 0.05 storage floor plus deploy gas


async def prepare(deps: Deps, merchant_id: str, *, destination: str | None,
                  min_withdrawal: int | None = None,
                  deploy_amount: int = DEFAULT_DEPLOY_AMOUNT) -> tuple[FeeCollector, CollectorPlan]:
    """The merchant's collector and how to deploy it; records it as pending.

    `destination` (the merchant's wallet, as typed) and `min_withdrawal` (nanoton, default
    10 TON) may be left out once a collector was prepared: the same one is shown again. A
    pending collector is replaced when the destination or threshold changes; an active one
    never changes."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        merchant = await uow.merchants.get(merchant_id)
        if merchant is None:
            raise NotFound(f"No merchant '{merchant_id}'.", field="merchant")
        current = await uow.collectors.for_merchant(merchant_id)
        if destination is None:
            if current is None:
                raise DomainError("Give --destination: the merchant's TON wallet that receives "
                                  "the payments minus the fee.", field="destination")
            target = current.destination
        else:
            target = deps.rails.canonical_ton_address(destination)
        if min_withdrawal is None:
            min_withdrawal = current.min_withdrawal if current else DEFAULT_MIN_WITHDRAWAL
        fee_bps = current.fee_bps if current and current.status is CollectorStatus.ACTIVE \
            else merchant.fee_bps
        plan = deps.rails.fee_collector(target, fee_bps, min_withdrawal, deploy_amount)
        if current is not None and current.status is CollectorStatus.ACTIVE:
            if current.address != plan.address:
                raise Conflict(f"Merchant {merchant_id} already has an active fee collector at "
                               f"{current.address}; it cannot be replaced.", field="merchant")
            return current, plan
        collector = FeeCollector(merchant_id, plan.address, plan.owner, plan.destination,
                                 plan.fee_bps, plan.min_withdrawal, CollectorStatus.PENDING, now)
        if current is None or current.address != collector.address:
            if await uow.collectors.by_address(collector.address) is not None:
                raise Conflict("Another merchant already uses a fee collector with this exact "
                               "configuration; use a different destination.", field="destination")
            await uow.collectors.put(collector)
            await uow.commit()
        else:
            collector = current
    return collector, plan


async def activate(deps: Deps, chain: CollectorChain, merchant_id: str) -> FeeCollector:
    """Activate the merchant's collector if the chain shows it deployed as planned."""
    async with deps.uow(write=False) as uow:
        collector = await uow.collectors.for_merchant(merchant_id)
    if collector is None:
        raise NotFound(f"Merchant '{merchant_id}' has no fee collector; run "
                       "`krypton contract deploy-info` first.", field="merchant")
    if collector.status is CollectorStatus.ACTIVE:
        return collector
    deployed = await chain.deployed(collector.address)
    if deployed is None:
        raise Conflict(f"Nothing is deployed at {collector.address} yet: open the deploy link in "
                       "the owner's wallet, wait for the transaction, then try again.",
                       field="merchant")
    # The address is the hash of code and initial data, so only our contract can be there;
    # the threshold may have been changed since by the owner (set_min_withdrawal).
    if (deployed.owner, deployed.destination, deployed.fee_bps) != (
            collector.owner, collector.destination, collector.fee_bps):
        raise Conflict(f"The contract at {collector.address} is not the one planned.", field="merchant")
    return await _activate(deps, collector)


async def activate_deployed(deps: Deps, chain: CollectorChain) -> int:
    """Activate every pending collector the chain now shows deployed; returns how many."""
    async with deps.uow(write=False) as uow:
        pending = await uow.collectors.pending()
    activated = 0
    for collector in pending:
        try:
            await activate(deps, chain, collector.merchant_id)
        except Conflict:
            continue
        activated += 1
    return activated


async def _activate(deps: Deps, collector: FeeCollector) -> FeeCollector:
    now = deps.clock.now()
    async with deps.uow() as uow:
        fresh = await uow.collectors.for_merchant(collector.merchant_id)
        if fresh is None or fresh.address != collector.address:
            raise Conflict("The merchant's fee collector changed meanwhile; try again.",
                           field="merchant")
        if fresh.status is CollectorStatus.ACTIVE:
            return fresh
        fresh.activate(now)
        # Another process may be activating it at this moment: the update checks it is still
        # pending, so exactly one of them goes on to write the event.
        if not await uow.collectors.activate(fresh):
            # It was, or was replaced, meanwhile: a new statement sees what the other committed.
            now_stored = await uow.collectors.for_merchant(collector.merchant_id)
            if now_stored is None or now_stored.address != collector.address or \
                    now_stored.status is not CollectorStatus.ACTIVE:
                raise Conflict("The merchant's fee collector changed meanwhile; try again.",
                               field="merchant")
            return now_stored
        await uow.merchants.set_ton_collector(fresh.merchant_id, fresh.address)
        await uow.events.append(events.Event(
            events.FEE_COLLECTOR_ACTIVATED, fresh.merchant_id, fresh.address, {
                "address": fresh.address, "destination": fresh.destination,
                "fee_bps": fresh.fee_bps, "min_withdrawal": str(fresh.min_withdrawal)}), now)
        await uow.commit()
    return fresh


@dataclass(frozen=True, slots=True)
class CollectorReport:
    collector: FeeCollector
    stats: CollectorStats
    ledger_fees: int  # fees the ledger booked as kept by this contract
    ledger_forwarded: int  # net the ledger booked as forwarded on chain


async def report(deps: Deps, chain: CollectorChain, merchant_id: str) -> CollectorReport:
    async with deps.uow(write=False) as uow:
        collector = await uow.collectors.for_merchant(merchant_id)
        if collector is None:
            raise NotFound(f"Merchant '{merchant_id}' has no fee collector.", field="merchant")
        balances = await uow.ledger.balances(ledger.collector_fees(merchant_id, TON.code))
        forwarded = await uow.settlements.forwarded_total(merchant_id, TON.code)
    stats = await chain.stats(collector.address)
    fees_booked = balances.get((ledger.collector_fees(merchant_id, TON.code), TON.code), 0)
    return CollectorReport(collector, stats, fees_booked, forwarded)
