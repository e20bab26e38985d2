"""A merchant's fee collector end to end on the devnet: prepared, deployed, activated by the
chain loop, paid, settled on chain, and its statistics read through runGetMethod."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.collector_chain import TonCenterCollectors
from krypton.app import collectors, invoices, merchants
from krypton.app.ports import CollectorPlan
from krypton.bootstrap import Container
from krypton.domain.collector import CollectorStatus
from krypton.domain.errors import Conflict, DomainError, NotFound
from krypton.domain.invoice import Invoice
from krypton.web.api.instructions import pay_to
from krypton.workers.watch import ChainWatch
from tests.support.clock import ManualClock
from tests.support.devnet_rig import DevnetRig

TON = 10**9
USDT = 10**6
WALLET = TonAddress(0, bytes([0x22]) * 32)  # the merchant's own wallet


class Rig(DevnetRig):
    @property
    def chain(self) -> TonCenterCollectors:
        return self.watchers.chains.collectors

    async def poll(self) -> int:
        self.devnet.produce("ton")
        self.watchers.next_collector_check = 0.0  # look at pending collectors on every poll
        return await self.watchers.poll()

    async def deploy(self, min_withdrawal: int = 1 * TON) -> CollectorPlan:
        _, plan = await collectors.prepare(self.container.deps, self.merchant_id,
                                           destination=WALLET.friendly(bounceable=False, testnet=False),
                                           min_withdrawal=min_withdrawal)
        self.devnet.ton.deploy_collector(Cell.one_from_boc(base64.b64decode(plan.state_init)),
                                         plan.deploy_amount)
        await self.poll()
        return plan

    async def status(self, invoice: Invoice) -> str:
        return (await invoices.get_invoice(self.container.deps, self.merchant_id, invoice.id)).status.value


@pytest.fixture
async def rig(container: Container, clock: ManualClock) -> AsyncIterator[Rig]:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop", fee_bps=250)
    assert container.devnet is not None
    chains = container.chains()
    yield Rig(container, container.devnet, ChainWatch(container.deps, chains), merchant.id)
    await chains.aclose()


def _at(raw: str) -> TonAddress:
    return parse(raw, network="testnet")


async def test_collector_is_used_only_once_deployed(rig: Rig) -> None:
    collector, plan = await collectors.prepare(rig.container.deps, rig.merchant_id,
                                               destination=WALLET.raw)
    assert collector.status is CollectorStatus.PENDING and plan.fee_bps == 250
    assert plan.deploy_link.startswith(f"ton://transfer/{plan.address_friendly}?amount=60000000&init=")
    with pytest.raises(Conflict, match="Nothing is deployed"):
        await collectors.activate(rig.container.deps, rig.chain, rig.merchant_id)
    await rig.poll()
    invoice = await rig.invoice("1", "TON", ["ton"])
    assert invoice.ton_collector is None  # still paid at the platform address

    rig.devnet.ton.deploy_collector(Cell.one_from_boc(base64.b64decode(plan.state_init)),
                                    plan.deploy_amount)
    await rig.poll()  # the chain loop finds it and activates it
    async with rig.container.deps.uow(write=False) as uow:
        stored = await uow.collectors.for_merchant(rig.merchant_id)
        merchant = await uow.merchants.get(rig.merchant_id)
        events = [e.type for e in await uow.events.read((0, 0), 100)]
        unmatched = await uow.unmatched.list(10)
    assert stored is not None and stored.status is CollectorStatus.ACTIVE
    assert merchant is not None and merchant.ton_collector == plan.address
    assert "fee_collector.activated" in events
    assert unmatched == []  # the deploy's top_up is not a payment

    invoice = await rig.invoice("5", "USD", ["ton", "usdt_ton"])
    assert invoice.ton_collector == plan.address
    ton_option, usdt_option = invoice.options
    assert pay_to(invoice, ton_option, testnet=False)["address"] == plan.address_friendly  # EQ…
    usdt_to = pay_to(invoice, usdt_option, testnet=False)["address"]
    assert _at(usdt_to) == _at(invoice.ton_address or "")  # jettons: the platform address


async def test_payment_through_the_collector_settles_on_chain(rig: Rig) -> None:
    plan = await rig.deploy(min_withdrawal=1 * TON)
    invoice = await rig.invoice("5.05", "TON", ["ton"])
    wallet_before = rig.devnet.ton.balance(WALLET)
    rig.devnet.ton.pay_ton("alice", _at(plan.address), 5_050_000_000, comment=invoice.memo,
                           bounceable=True)
    assert await rig.poll() == 1
    assert await rig.status(invoice) == "paid"

    fee, net = 126_250_000, 4_923_750_000  # the sandbox vector for 5.05 TON at 2.5 %
    assert rig.devnet.ton.balance(WALLET) - wallet_before == net  # devnet: no gas
    async with rig.container.deps.uow(write=False) as uow:
        (settlement,) = await uow.settlements.for_invoice(invoice.id)
    assert (settlement.gross, settlement.fee, settlement.net) == (5_050_000_000, fee, net)
    assert (settlement.payout.value, settlement.forwarded, settlement.collector_fee) == ("on_chain", net, fee)
    assert settlement.collector_address == plan.address
    balances = await rig.balances()
    assert balances.get((f"merchant:{rig.merchant_id}:TON", "TON"), 0) == 0  # not custodial
    assert balances[(f"collector_fees:{rig.merchant_id}:TON", "TON")] == fee
    assert balances.get(("fees:TON", "TON"), 0) == 0

    stats = await rig.chain.stats(plan.address)
    assert (stats.accumulated, stats.total_collected, stats.total_withdrawn, stats.payment_count) == (
        fee, fee, 0, 1)
    report = await collectors.report(rig.container.deps, rig.chain, rig.merchant_id)
    assert (report.ledger_fees, report.ledger_forwarded) == (stats.total_collected, net)


async def test_partial_payments_are_split_one_by_one_like_the_contract(rig: Rig) -> None:
    plan = await rig.deploy(min_withdrawal=0)  # flush on every payment
    invoice = await rig.invoice("3", "TON", ["ton"])
    for part in (1_000_000_001, 1_999_999_999):
        rig.devnet.ton.pay_ton("alice", _at(plan.address), part, comment=invoice.memo, bounceable=True)
        await rig.poll()
    assert await rig.status(invoice) == "paid"
    async with rig.container.deps.uow(write=False) as uow:
        (settlement,) = await uow.settlements.for_invoice(invoice.id)
    per_payment = 1_000_000_001 * 250 // 10_000 + 1_999_999_999 * 250 // 10_000
    assert settlement.fee == per_payment == 74_999_999  # one floor of the sum would be 75_000_000
    stats = await rig.chain.stats(plan.address)
    assert (stats.total_collected, stats.total_withdrawn, stats.accumulated) == (per_payment, per_payment, 0)


async def test_a_payment_the_collector_refuses_is_not_credited(rig: Rig) -> None:
    plan = await rig.deploy()
    invoice = await rig.invoice("1", "TON", ["ton"])
    for bounceable in (True, False):  # bounced back, or kept by an aborted transaction
        rig.devnet.ton.pay_ton("alice", _at(plan.address), 10_000_000, comment=invoice.memo,
                               bounceable=bounceable)
        await rig.poll()
    async with rig.container.deps.uow(write=False) as uow:
        assert await uow.payments.for_invoice(invoice.id) == []
        assert await uow.unmatched.list(10) == []
    assert (await rig.chain.stats(plan.address)).payment_count == 0


async def test_usdt_on_ton_still_settles_to_the_balance(rig: Rig) -> None:
    await rig.deploy()
    invoice = await rig.invoice("25", "USDT", ["usdt_ton"])
    assert invoice.ton_collector is None
    rig.devnet.ton.pay_jetton("alice", _at(invoice.ton_address or ""), 25 * USDT, comment=invoice.memo)
    await rig.poll()
    async with rig.container.deps.uow(write=False) as uow:
        (settlement,) = await uow.settlements.for_invoice(invoice.id)
    assert settlement.payout.value == "balance"


async def test_a_tiny_ton_invoice_stays_at_the_platform_address(rig: Rig) -> None:
    await rig.deploy()
    invoice = await rig.invoice("0.01", "TON", ["ton"])  # below the contract's 0.010256410 TON minimum
    assert invoice.ton_collector is None


async def test_prepare_refuses_bad_input_and_never_replaces_an_active_collector(rig: Rig) -> None:
    deps = rig.container.deps
    with pytest.raises(NotFound):
        await collectors.prepare(deps, "mer_nope", destination=WALLET.raw)
    with pytest.raises(DomainError, match="destination"):
        await collectors.prepare(deps, rig.merchant_id, destination=None)
    with pytest.raises(DomainError):
        await collectors.prepare(deps, rig.merchant_id, destination="not an address")
    plan = await rig.deploy()
    again, same = await collectors.prepare(deps, rig.merchant_id, destination=None)
    assert (again.status, same.address) == (CollectorStatus.ACTIVE, plan.address)
    with pytest.raises(Conflict, match="already has an active fee collector"):
        await collectors.prepare(deps, rig.merchant_id, destination=TonAddress(0, bytes(32)).raw)
