"""A Telegram Premium order end to end on the devnet, on SQLite and PostgreSQL: priced by the
fake Fragment's Premium price, paid cost + fee to the shop's fee collector, the cost forwarded
to the hot wallet, the real signer paying Fragment's getGiftPremiumLink transfer (its payload
naming the order), Fragment delivering once it sees the payment; and the same order refunded
when Fragment asks more at purchase than the order was priced at."""

from __future__ import annotations

import dataclasses

from krypton.adapters.chains.ton.comments import text_comment
from krypton.app import shop
from krypton.devnet.fragment_api import FRAGMENT_WALLET, WALLET_FLOAT
from krypton.domain.order import OrderStatus, Product, forwarded
from tests.shop.test_end_to_end import ALICE, EndToEnd, _deliver
from tests.shop.test_end_to_end import e2e as e2e  # the fixture, shared


def _fragment_only(e2e: EndToEnd) -> None:
    # The Premium-gift strategy needs the Bot API and the platform's own Stars, which this
    # devnet has not: Fragment alone, so the test never depends on a local port.
    rig = e2e.rig
    rig.kit = dataclasses.replace(rig.kit, suppliers=[s for s in rig.kit.suppliers if s.name == "fragment"])


async def test_premium_for_3_months_through_fragment_and_the_signer(e2e: EndToEnd) -> None:
    _fragment_only(e2e)
    rig, devnet = e2e.rig, e2e.rig.container.devnet
    assert devnet is not None
    cost = e2e.fragment.premium_prices[3]
    order = await shop.create_order(rig.deps, rig.kit, buyer="tg:1001", recipient="@alice_tg", quantity=3,
                                    product="premium")
    assert (order.product, order.quantity, order.cost, order.supplier) == (
        Product.PREMIUM, 3, cost, "fragment")
    assert order.total - order.fee == forwarded(order.total, rig.kit.fee_bps) == cost
    hot_before = devnet.ton.balance(e2e.wallet.address)
    await rig.pay(order)
    assert devnet.ton.balance(e2e.wallet.address) - hot_before == cost  # forwarded at once
    done = await _deliver(e2e, order.id)
    assert done.status is OrderStatus.DELIVERED, done.failure
    assert done.supplier_ref is not None and done.supplier_ref.startswith("premium:")
    req_id = done.supplier_ref.removeprefix("premium:")
    assert e2e.fragment.delivered == [("alice_tg", req_id, 3)]
    assert e2e.fragment.purchases[req_id].product == "premium"
    assert devnet.ton.balance(FRAGMENT_WALLET) - WALLET_FLOAT == cost  # paid once, exactly
    [paid] = [tx for tx in devnet.ton.transactions(FRAGMENT_WALLET) if tx.in_msg.source == e2e.wallet.address]
    assert text_comment(paid.in_msg.body) == f"Telegram Premium for 3 months for @alice_tg\n\nRef#{order.id}"
    balances = await rig.balances()
    assert balances.get(("hot_wallet:TON", "TON"), 0) == 0  # received the cost, paid it on
    assert await rig.events(order.id) == ["order.created", "order.awaiting_payment", "order.paid",
                                          "order.fulfilling", "order.delivered"]


async def test_a_premium_price_rise_at_purchase_refunds_the_payer(e2e: EndToEnd) -> None:
    _fragment_only(e2e)
    rig, devnet = e2e.rig, e2e.rig.container.devnet
    assert devnet is not None
    order = await shop.create_order(rig.deps, rig.kit, buyer=None, recipient="durov", quantity=12,
                                    product="premium")
    alice_before = devnet.ton.balance(ALICE)
    await rig.pay(order)
    e2e.fragment.inject("price_change")  # 20 % dearer at initGiftPremiumRequest
    done = await _deliver(e2e, order.id)
    assert done.status is OrderStatus.REFUNDED, done.failure
    assert "The price of Premium for 12 months rose" in (done.failure or "")
    assert devnet.ton.balance(ALICE) - alice_before == -order.total + done.total - rig.kit.network_fee
    assert devnet.ton.balance(FRAGMENT_WALLET) - WALLET_FLOAT == 0  # never paid
