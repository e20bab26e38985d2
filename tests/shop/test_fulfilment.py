"""The orchestrator over in-memory suppliers and signer, with real payments on the devnet
and the real database (both engines): delivered, fallback, refunds, never paying twice."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from krypton.adapters.chains.ton.address import parse
from krypton.adapters.db import tables as t
from krypton.app import fulfilment, shop
from krypton.app.ports import SupplierError
from krypton.devnet.ton import payer_address
from krypton.domain.order import OrderStatus, forwarded, hot_wallet
from krypton.domain.payment import Payment
from tests.shop.conftest import CHEAP
from tests.shop.support import FakeSigner, FakeSupplier, ShopRig
from tests.support.clock import ManualClock

ALICE = payer_address("alice")


async def _paid_order(rig: ShopRig, quantity: int = 50, recipient: str = "durov_fan") -> shop.Order:
    order = await shop.create_order(rig.deps, rig.kit, buyer="tg:42", recipient=recipient,
                                    quantity=quantity)
    await rig.pay(order)
    return order


async def test_a_paid_order_is_delivered_by_the_cheapest_supplier(
        rig: ShopRig, cheap: FakeSupplier, dear: FakeSupplier, signer: FakeSigner) -> None:
    order = await _paid_order(rig)
    assert (order.status, order.supplier) == (OrderStatus.AWAITING_PAYMENT, "cheap")
    await rig.run()  # paid -> fulfilling -> the supplier asks for its TON, the signer sends it
    await rig.run()  # the supplier saw the payment: delivered
    done = await rig.order(order.id)
    assert done.status is OrderStatus.DELIVERED and done.delivered_at is not None
    assert [r.request_id for r in signer.sent] == [order.id]  # the order id is the request id
    (request,) = signer.sent
    assert (request.kind, request.amount, request.destination, request.destination_kind) == (
        "supplier_payment", 50 * CHEAP, cheap.address, "supplier")
    assert dear.purchase_calls == [] and cheap.purchase_calls == [order.id]
    assert await rig.events(order.id) == ["order.created", "order.awaiting_payment", "order.paid",
                                          "order.fulfilling", "order.delivered"]
    balances = await rig.balances()
    # The hot wallet got the cost and paid the supplier the same: nothing left over.
    assert balances.get((hot_wallet("TON"), "TON"), 0) == forwarded(order.total, rig.kit.fee_bps) - 50 * CHEAP
    assert balances[("fees:TON", "TON")] == order.fee  # no collector here: the fee is the platform's


async def test_falls_back_to_the_next_supplier_when_the_cheapest_fails(
        rig: ShopRig, cheap: FakeSupplier, dear: FakeSupplier, signer: FakeSigner) -> None:
    order = await _paid_order(rig)
    cheap.purchase_faults.append(SupplierError("502 from upstream", retryable=True))
    dear.nano_per_star = CHEAP  # equal price now: still within the order's budget
    await rig.run(2)
    done = await rig.order(order.id)
    assert (done.status, done.supplier) == (OrderStatus.DELIVERED, "dear")
    assert [r.destination for r in signer.sent] == [dear.address]


async def test_a_supplier_down_is_retried_then_refunded_after_the_deadline(
        rig: ShopRig, cheap: FakeSupplier, dear: FakeSupplier, signer: FakeSigner,
        clock: ManualClock) -> None:
    order = await _paid_order(rig)
    cheap.down = dear.down = True
    await rig.run()
    waiting = await rig.order(order.id)
    assert waiting.status is OrderStatus.FULFILLING and waiting.attempts == 1
    assert "no supplier could quote" in (waiting.failure or "")
    assert "order.attempt_failed" in await rig.events(order.id)
    clock.advance(seconds=rig.kit.deadline.total_seconds() + 1)
    await rig.run()
    refunded = await rig.order(order.id)
    assert refunded.status is OrderStatus.REFUNDED
    assert "No supplier could deliver within 15 minutes" in (refunded.failure or "")
    (refund,) = signer.sent
    assert (refund.kind, refund.destination, refund.destination_kind) == ("refund", ALICE.raw, "payer_wallet")
    assert refund.amount == order.total - rig.kit.network_fee  # minus the network fee
    assert refunded.refund_tx == f"h-{order.id}.refund"
    assert (await rig.events(order.id))[-2:] == ["order.failed", "order.refunded"]
    assert cheap.purchase_calls == [] and dear.purchase_calls == []  # nobody was paid


async def test_an_unknown_username_at_purchase_refunds_at_once(
        rig: ShopRig, cheap: FakeSupplier, signer: FakeSigner) -> None:
    order = await _paid_order(rig, recipient="gone_user")
    cheap.unknown_users.add("gone_user")  # the account was deleted after the order was made
    await rig.run()
    done = await rig.order(order.id)
    assert done.status is OrderStatus.REFUNDED
    assert done.failure == "Telegram has no user @gone_user, so the Stars cannot be delivered."
    assert [r.kind for r in signer.sent] == ["refund"]


async def test_a_price_rise_between_quote_and_purchase_moves_to_the_next_supplier_or_fails(
        rig: ShopRig, cheap: FakeSupplier, dear: FakeSupplier, signer: FakeSigner) -> None:
    order = await _paid_order(rig)
    cheap.rise_at_purchase = CHEAP // 5  # 20 % dearer when buying: above the 1 % tolerance
    dear.nano_per_star = CHEAP * 2
    await rig.run()
    done = await rig.order(order.id)
    assert done.status is OrderStatus.REFUNDED
    assert "The price of 50 Stars rose after the order was made" in (done.failure or "")
    assert "cheap asked 0.9 TON at purchase, the order was priced at 0.75 TON" in (done.failure or "")
    assert [r.kind for r in signer.sent] == ["refund"]  # the supplier was never paid


async def test_a_small_price_rise_is_absorbed(rig: ShopRig, cheap: FakeSupplier,
                                              signer: FakeSigner) -> None:
    order = await _paid_order(rig)
    cheap.rise_at_purchase = CHEAP // 200  # 0.5 %: within the tolerance
    await rig.run(2)
    assert (await rig.order(order.id)).status is OrderStatus.DELIVERED
    assert signer.sent[0].amount == 50 * (CHEAP + CHEAP // 200)


async def test_a_signer_crash_after_recording_pays_the_supplier_exactly_once(
        rig: ShopRig, cheap: FakeSupplier, signer: FakeSigner) -> None:
    order = await _paid_order(rig)
    signer.crash_after_record = True
    await rig.run()  # committed to "cheap", the signer recorded the request and died
    assert (await rig.order(order.id)).status is OrderStatus.FULFILLING
    assert signer.sent == [] and list(signer.requests) == [order.id]
    await rig.run()  # next round: the signer's status says recorded, so nothing is re-sent
    signer.recover()  # the restarted signer broadcasts what it recorded
    await rig.run()
    assert (await rig.order(order.id)).status is OrderStatus.DELIVERED
    assert [r.request_id for r in signer.sent] == [order.id] and cheap.paid == {order.id: 50 * CHEAP}
    assert cheap.purchase_calls == [order.id]  # and bought once


async def test_a_signer_down_before_recording_is_asked_again_with_the_same_request(
        rig: ShopRig, cheap: FakeSupplier, signer: FakeSigner) -> None:
    order = await _paid_order(rig)
    signer.unavailable = 1
    await rig.run()
    assert signer.requests == {}
    await rig.run(2)  # the signer never recorded it: the same request (id, entry) again
    assert (await rig.order(order.id)).status is OrderStatus.DELIVERED
    assert [r.request_id for r in signer.sent] == [order.id]
    assert cheap.purchase_calls == [order.id]


async def test_rounds_are_idempotent(rig: ShopRig, cheap: FakeSupplier, signer: FakeSigner) -> None:
    order = await _paid_order(rig)
    for _ in range(3):  # at one instant: the first round pays, the others find nothing due
        await fulfilment.run_round(rig.deps, rig.kit)
    assert len(signer.sent) == 1
    await rig.run(4)
    assert (await rig.order(order.id)).status is OrderStatus.DELIVERED
    assert len(signer.sent) == 1 and cheap.purchase_calls == [order.id]
    assert (await rig.events(order.id)).count("order.delivered") == 1


async def test_an_unpaid_order_expires_with_its_invoice(rig: ShopRig, clock: ManualClock) -> None:
    from krypton.app import invoices

    order = await shop.create_order(rig.deps, rig.kit, buyer=None, recipient="durov_fan", quantity=100)
    clock.advance(seconds=rig.kit.quote_ttl.total_seconds() + 1)
    await invoices.expire_due(rig.deps)
    await rig.run()
    assert (await rig.order(order.id)).status is OrderStatus.EXPIRED


async def test_a_self_paying_supplier_needs_no_signer(rig: ShopRig, signer: FakeSigner) -> None:
    bot = FakeSupplier("bot", CHEAP - 1, self_paid=True)  # paid from its own Stars balance
    rig.kit.suppliers = [bot]
    order = await _paid_order(rig)
    await rig.run()
    done = await rig.order(order.id)
    assert (done.status, done.supplier) == (OrderStatus.DELIVERED, "bot")
    assert signer.sent == []


def test_refund_destination_is_the_paying_wallet() -> None:
    assert parse(ALICE.raw, network="testnet") == ALICE
    assert timedelta(minutes=15).total_seconds() == 900


class _Senders:
    """The chain asked where a payment came from (the shop's refund): counted; `allowed`
    False makes asking an error (the payment knows its sender)."""

    def __init__(self, allowed: bool) -> None:
        self.allowed, self.asked = allowed, 0

    async def sender_of(self, payment: Payment) -> str | None:
        assert self.allowed, f"asked the chain for the sender of {payment.id}"
        self.asked += 1
        return ALICE.raw


@pytest.mark.parametrize("stored", [True, False])
async def test_a_refund_goes_to_the_stored_sender_and_asks_the_chain_only_for_older_payments(
        rig: ShopRig, cheap: FakeSupplier, dear: FakeSupplier, signer: FakeSigner,
        clock: ManualClock, stored: bool) -> None:
    senders = _Senders(allowed=not stored)
    rig.kit = dataclasses.replace(rig.kit, senders=senders)
    order = await _paid_order(rig)
    if not stored:  # as migration 0020 left the payments stored before it
        async with rig.container.db.writer.connect() as conn:
            await conn.begin()
            await conn.execute(t.payments.update().values(sender=None))
            await conn.commit()
    cheap.down = dear.down = True
    await rig.run()
    clock.advance(seconds=rig.kit.deadline.total_seconds() + 1)
    await rig.run()
    assert (await rig.order(order.id)).status is OrderStatus.REFUNDED
    (refund,) = signer.sent
    assert (refund.kind, refund.destination) == ("refund", ALICE.raw)
    assert senders.asked == (0 if stored else 1)
