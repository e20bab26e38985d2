"""app/shop.py: limits, recipient lookup, quotes from every supplier, orders with their
checkout invoice, idempotency and a buyer's history (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest

from krypton.app import invoices, shop
from krypton.domain.errors import Conflict, DomainError, NotFound
from krypton.domain.order import OrderStatus
from tests.shop.conftest import CHEAP, DEAR
from tests.shop.support import FakeSupplier, ShopRig


async def test_limits_and_presets(rig: ShopRig) -> None:
    limits = await shop.limits(rig.deps, rig.kit)
    assert (limits.minimum, limits.maximum) == (50, 1_000_000)
    assert limits.presets[0] == 50 and all(50 <= p <= 1_000_000 for p in limits.presets)


async def test_the_quote_is_the_cheapest_supplier_plus_the_fee(rig: ShopRig, clock: object) -> None:
    quote = await shop.quote(rig.deps, rig.kit, 100)
    assert (quote.supplier, quote.cost, quote.asset) == ("cheap", 100 * CHEAP, "TON")
    assert quote.total == quote.cost + quote.fee + (quote.total - quote.cost - quote.fee)
    assert quote.total - quote.total * 100 // 10_000 >= quote.cost  # the contract covers the cost
    assert quote.expires_at == rig.deps.clock.now() + rig.kit.quote_ttl


async def test_a_supplier_down_is_left_out_and_all_down_is_unavailable(
        rig: ShopRig, cheap: FakeSupplier, dear: FakeSupplier) -> None:
    cheap.down = True
    assert (await shop.quote(rig.deps, rig.kit, 50)).cost == 50 * DEAR
    dear.down = True
    with pytest.raises(shop.ShopUnavailable, match="No Stars supplier"):
        await shop.quote(rig.deps, rig.kit, 50)
    with pytest.raises(shop.ShopUnavailable):
        await shop.lookup_recipient(rig.deps, rig.kit, "durov")


@pytest.mark.parametrize("quantity", [0, 49, 1_000_001, True])
async def test_quantities_outside_the_limits_are_refused(rig: ShopRig, quantity: int) -> None:
    with pytest.raises(DomainError, match="Buy between 50 and 1000000 Stars") as err:
        await shop.quote(rig.deps, rig.kit, quantity)
    assert err.value.field == "quantity"


async def test_only_ton_for_now(rig: ShopRig) -> None:
    with pytest.raises(DomainError, match="paid in TON for now, not USDT"):
        await shop.quote(rig.deps, rig.kit, 50, "USDT")


async def test_recipient_lookup(rig: ShopRig, cheap: FakeSupplier, dear: FakeSupplier) -> None:
    found = await shop.lookup_recipient(rig.deps, rig.kit, "@Durov_Fan")
    assert (found.username, found.name) == ("durov_fan", "Durov_Fan")
    cheap.unknown_users.add("nobody_here")
    dear.unknown_users.add("nobody_here")
    with pytest.raises(NotFound, match="Telegram has no user @nobody_here"):
        await shop.lookup_recipient(rig.deps, rig.kit, "nobody_here")
    for bad in ("ab", "has space", "1starts_with_digit", "x" * 33):
        with pytest.raises(DomainError, match="is not a Telegram username"):
            await shop.lookup_recipient(rig.deps, rig.kit, bad)


async def test_an_order_has_its_checkout_invoice_for_the_total(rig: ShopRig) -> None:
    order = await shop.create_order(rig.deps, rig.kit, buyer="tg:42", recipient="@durov_fan", quantity=50)
    assert (order.status, order.recipient, order.quantity, order.asset) == (
        OrderStatus.AWAITING_PAYMENT, "durov_fan", 50, "TON")
    assert order.id.startswith("ord_") and order.cost == 50 * CHEAP
    invoice = await invoices.get_invoice(rig.deps, rig.kit.merchant_id, order.invoice_id or "")
    assert (invoice.price_currency, invoice.price_amount, invoice.order_id) == ("TON", order.total, order.id)
    assert invoice.description == "50 Telegram Stars for @durov_fan"
    assert await shop.get_order(rig.deps, rig.kit, order.id) == order
    assert await rig.events(order.id) == ["order.created", "order.awaiting_payment"]
    with pytest.raises(NotFound):
        await shop.get_order(rig.deps, rig.kit, "ord_missing")


async def test_an_unknown_recipient_gets_no_order(rig: ShopRig, cheap: FakeSupplier,
                                                   dear: FakeSupplier) -> None:
    cheap.unknown_users.add("ghost_user")
    dear.unknown_users.add("ghost_user")
    with pytest.raises(NotFound):
        await shop.create_order(rig.deps, rig.kit, buyer=None, recipient="ghost_user", quantity=50)


async def test_the_same_idempotency_key_gives_the_same_order(rig: ShopRig) -> None:
    make = dict(buyer="ton:0:" + "ab" * 32, recipient="durov_fan", quantity=75, idempotency_key="k1")
    first, again = await asyncio.gather(shop.create_order(rig.deps, rig.kit, **make),  # type: ignore[arg-type]
                                        shop.create_order(rig.deps, rig.kit, **make))  # type: ignore[arg-type]
    assert first.id == again.id
    with pytest.raises(Conflict, match="used for another order"):
        await shop.create_order(rig.deps, rig.kit, **{**make, "quantity": 80})  # type: ignore[arg-type]
    other = await shop.create_order(rig.deps, rig.kit, **{**make, "buyer": "tg:7"})  # type: ignore[arg-type]
    assert other.id != first.id  # keys are per buyer


async def test_a_buyers_orders_newest_first_paginated(rig: ShopRig) -> None:
    made = []
    for quantity in (50, 60, 70):
        made.append(await shop.create_order(rig.deps, rig.kit, buyer="tg:9", recipient="durov_fan",
                                            quantity=quantity))
        rig.clock.advance(seconds=1)
    await shop.create_order(rig.deps, rig.kit, buyer="tg:10", recipient="durov_fan", quantity=50)
    page, more = await shop.orders_of(rig.deps, rig.kit, "tg:9", limit=2)
    assert [o.quantity for o in page] == [70, 60] and more
    rest, more = await shop.orders_of(rig.deps, rig.kit, "tg:9", limit=2, starting_after=page[-1].id)
    assert [o.quantity for o in rest] == [50] and not more
    with pytest.raises(DomainError, match="buyer"):
        await shop.orders_of(rig.deps, rig.kit, "someone")
    with pytest.raises(DomainError, match="limit"):
        await shop.orders_of(rig.deps, rig.kit, "tg:9", limit=0)
