"""The founding use case end to end on the devnet (seed 001), on SQLite and PostgreSQL: a
payer pays cost + fee to the shop's fee-collector contract, the contract forwards the cost
to the signer's hot wallet and keeps the fee, the real signer pays the fake Fragment from
the hot wallet, Fragment sees the payment on chain and delivers. Then the same with the
supplier failing (refunded to the paying wallet, less the network fee), and with the signer
dying between recording and broadcasting (the supplier is paid exactly once)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx
import pytest

from krypton.adapters.chains.ton.address import parse
from krypton.adapters.chains.ton.comments import text_comment
from krypton.adapters.signer.chain import WalletChain
from krypton.adapters.signer.outbox import Outbox
from krypton.adapters.signer.server import Signer, parse_request
from krypton.adapters.signer.wallet import HotWallet, WalletVersion
from krypton.app import collectors, shop
from krypton.app.ports import SignerUnavailable, SignOutcome, SignRequest
from krypton.bootstrap import Container, build
from krypton.config import Settings
from krypton.devnet import create_devnet_app
from krypton.devnet.fragment_api import FRAGMENT_WALLET, WALLET_FLOAT, FakeFragment
from krypton.devnet.ton import payer_address
from krypton.domain.order import OrderStatus, forwarded
from krypton.domain.signer_policy import Limits, Policy
from krypton.workers.watch import ChainWatch
from tests.shop.support import ShopRig
from tests.support.clock import ManualClock

TON = 10**9
SEED = bytes(range(32))
ALICE = payer_address("alice")


class Crash(Exception):
    """The signer process dies here."""


@dataclass
class InProcessSigner:
    """The use cases' Signer port over a real Signer in this process: submit, then send the
    batch at once (what `krypton signer run` does as requests arrive)."""

    signer: Signer
    outbox: Outbox

    async def transfer(self, requests: Sequence[SignRequest]) -> list[SignOutcome]:
        parsed = [parse_request(dataclasses.asdict(r), "devnet") for r in requests]
        call = asyncio.ensure_future(self.signer.submit(parsed))
        await asyncio.sleep(0)
        for _ in range(200):
            if call.done() or self.signer._queue:
                break
            await asyncio.sleep(0.001)
        try:
            await self.signer.send_batch()
        except Crash:
            call.cancel()
            raise SignerUnavailable("the signer died") from None
        results = await call
        return [SignOutcome(r.request_id, r.status, r.refusal, r.reason, r.message_hash) for r in results]

    async def status(self, request_id: str) -> SignOutcome | None:
        found = await self.outbox.transfer(request_id)
        if found is None:
            return None
        return SignOutcome(request_id, found["status"], None, found["failure"], found["message_hash"],
                           found["tx_hash"])


@dataclass
class EndToEnd:
    rig: ShopRig
    fragment: FakeFragment
    wallet: HotWallet
    http: httpx.AsyncClient
    port: InProcessSigner

    def restart_signer(self) -> Signer:
        container = self.rig.container
        policy = Policy({"TON": Limits(per_transfer=100 * TON, per_day=1_000 * TON)})
        signer = Signer(self.wallet, WalletChain(self.http, "http://devnet/toncenter/api/v3"),
                        Outbox(container.db, self.wallet.address.raw), policy, container.deps.clock,
                        container.deps.ids.new, network="devnet")
        self.port.signer = signer
        return signer

    async def land(self) -> None:
        """A block: the signer's external lands, and the signer reconciles its outbox."""
        assert (await self.http.post("/control/blocks", json={"chain": "ton"})).status_code == 200
        await self.port.signer.reconcile()


@pytest.fixture
async def e2e(settings: Settings, clock: ManualClock) -> AsyncIterator[EndToEnd]:
    wallet = HotWallet(SEED, WalletVersion.V5R1, network="devnet")
    container: Container = await build(
        Settings(**{**settings.model_dump(), "signer_address": wallet.address.raw}), clock=clock)
    assert container.devnet is not None and container.fragment_fake is not None
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_devnet_app(container.devnet)),
                             base_url="http://devnet")
    kit = container.shop()
    assert kit is not None and kit.hot_wallet == wallet.address.raw
    port = InProcessSigner(None, Outbox(container.db, wallet.address.raw))  # type: ignore[arg-type]
    kit = dataclasses.replace(kit, signer=port)
    chains = container.chains()
    world = EndToEnd(ShopRig(container, kit, ChainWatch(container.deps, chains)), container.fragment_fake,
                     wallet, http, port)
    world.restart_signer()
    yield world
    await chains.aclose()
    await http.aclose()
    await container.close()


async def _deliver(e2e: EndToEnd, order_id: str) -> shop.Order:
    rig = e2e.rig
    for _ in range(6):
        await rig.run()
        await e2e.land()
        order = await rig.order(order_id)
        if order.status in (OrderStatus.DELIVERED, OrderStatus.REFUNDED):
            return order
    return await rig.order(order_id)


async def test_buy_50_stars_paid_through_the_fee_collector(e2e: EndToEnd) -> None:
    rig, devnet = e2e.rig, e2e.rig.container.devnet
    assert devnet is not None
    order = await shop.create_order(rig.deps, rig.kit, buyer="tg:1001", recipient="@durov", quantity=50)
    cost = 50 * e2e.fragment.nano_per_star  # 0.75 TON
    assert order.cost == cost and order.total - order.fee == forwarded(order.total, rig.kit.fee_bps) == cost
    async with rig.deps.uow(write=False) as uow:
        collector = await uow.collectors.for_merchant(rig.kit.merchant_id or "")
    assert collector is not None and collector.status.value == "active"
    assert parse(collector.destination, network="testnet") == e2e.wallet.address  # the hot wallet

    hot_before = devnet.ton.balance(e2e.wallet.address)
    await rig.pay(order)  # alice pays the total to the contract, with the invoice's memo
    assert devnet.ton.balance(e2e.wallet.address) - hot_before == cost  # forwarded at once

    done = await _deliver(e2e, order.id)
    assert done.status is OrderStatus.DELIVERED, done.failure
    assert e2e.fragment.delivered == [("durov", done.supplier_ref, 50)]
    assert devnet.ton.balance(FRAGMENT_WALLET) - WALLET_FLOAT == cost  # Fragment was paid once, exactly
    # The signer wrote the payload Fragment asked for: Fragment credits by its "Ref#…".
    [paid] = [tx for tx in devnet.ton.transactions(FRAGMENT_WALLET) if tx.in_msg.source == e2e.wallet.address]
    assert text_comment(paid.in_msg.body) == f"50 Telegram Stars for @durov\n\nRef#{order.id}"
    # The fee stays in the contract: get_stats and the ledger's collector_fees agree.
    report = await collectors.report(rig.deps, rig.kit.collector_chain, rig.kit.merchant_id or "")  # type: ignore[arg-type]
    assert report.ledger_fees == order.fee
    stats = await rig.kit.collector_chain.stats(collector.address)  # type: ignore[union-attr]
    assert (stats.total_collected, stats.payment_count) == (order.fee, 1)
    balances = await rig.balances()
    assert balances[(f"collector_fees:{rig.kit.merchant_id}:TON", "TON")] == order.fee
    assert balances.get(("hot_wallet:TON", "TON"), 0) == 0  # received the cost, paid it on
    assert await rig.events(order.id) == ["order.created", "order.awaiting_payment", "order.paid",
                                          "order.fulfilling", "order.delivered"]


async def test_the_supplier_failing_refunds_the_payer_less_the_network_fee(
        e2e: EndToEnd, clock: ManualClock) -> None:
    rig, devnet = e2e.rig, e2e.rig.container.devnet
    assert devnet is not None
    order = await shop.create_order(rig.deps, rig.kit, buyer="tg:1001", recipient="durov", quantity=50)
    alice_before = devnet.ton.balance(ALICE)
    await rig.pay(order)
    e2e.fragment.inject("5xx", 10_000)  # Fragment is down for good
    await rig.run()  # paid, then no supplier can quote: retried later
    assert (await rig.order(order.id)).status is OrderStatus.FULFILLING
    clock.advance(seconds=rig.kit.deadline.total_seconds())
    done = await _deliver(e2e, order.id)
    assert done.status is OrderStatus.REFUNDED
    assert "No supplier could deliver within 15 minutes" in (done.failure or "")
    refund = done.total - rig.kit.network_fee
    assert devnet.ton.balance(ALICE) - alice_before == -order.total + refund
    assert devnet.ton.balance(FRAGMENT_WALLET) - WALLET_FLOAT == 0


async def test_an_unknown_username_fails_before_anyone_pays(e2e: EndToEnd) -> None:
    with pytest.raises(shop.NotFound, match="Telegram has no user @no_such_user"):
        await shop.create_order(e2e.rig.deps, e2e.rig.kit, buyer=None, recipient="no_such_user", quantity=50)


async def test_a_signer_crash_between_recording_and_broadcasting_pays_fragment_once(
        e2e: EndToEnd) -> None:
    rig, devnet = e2e.rig, e2e.rig.container.devnet
    assert devnet is not None
    order = await shop.create_order(rig.deps, rig.kit, buyer=None, recipient="durov", quantity=50)
    await rig.pay(order)

    async def crash() -> None:
        raise Crash
    e2e.port.signer.after_record = crash
    await rig.run()  # committed, recorded by the signer, which died before broadcasting
    assert (await rig.order(order.id)).status is OrderStatus.FULFILLING
    assert devnet.ton.balance(FRAGMENT_WALLET) - WALLET_FLOAT == 0

    e2e.restart_signer()  # the same key, the same outbox: recovery broadcasts the SAME external
    done = await _deliver(e2e, order.id)
    assert done.status is OrderStatus.DELIVERED, done.failure
    assert devnet.ton.balance(FRAGMENT_WALLET) - WALLET_FLOAT == 50 * e2e.fragment.nano_per_star  # once
    externals = [tx for tx in devnet.ton.transactions(e2e.wallet.address) if tx.in_msg.source is None]
    assert len(externals) == 1


async def test_a_price_change_at_purchase_fails_clearly_and_refunds(e2e: EndToEnd) -> None:
    rig = e2e.rig
    order = await shop.create_order(rig.deps, rig.kit, buyer=None, recipient="durov", quantity=50)
    await rig.pay(order)
    e2e.fragment.inject("price_change")  # 20 % dearer between the quote and the purchase
    done = await _deliver(e2e, order.id)
    assert done.status is OrderStatus.REFUNDED
    assert "fragment asked 0.9 TON at purchase, the order was priced at 0.75 TON" in (done.failure or "")
