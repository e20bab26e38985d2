"""domain/order.py: the transition table, the totals the fee collector splits exactly, and
the ledger entries the signer checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krypton.domain.errors import IllegalTransition
from krypton.domain.order import (
    TRANSITIONS,
    Order,
    OrderStatus,
    forwarded,
    received,
    refund_amount,
    refunded,
    supplier_paid,
    totals,
)

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _order(status: OrderStatus = OrderStatus.CREATED) -> Order:
    return Order("ord_1", None, "durov", 50, status, "inv_1", "TON", 1_000, 10, NOW)


def test_the_happy_path_and_its_changes() -> None:
    order = _order()
    for target in (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAID, OrderStatus.FULFILLING,
                   OrderStatus.DELIVERED):
        order.to(target)
    assert order.changes[-1] == (OrderStatus.FULFILLING, OrderStatus.DELIVERED)
    assert len(order.changes) == 4


@pytest.mark.parametrize(("start", "target"), [
    (OrderStatus.DELIVERED, OrderStatus.REFUNDED),  # delivered is final: never refunded too
    (OrderStatus.REFUNDED, OrderStatus.FULFILLING),
    (OrderStatus.AWAITING_PAYMENT, OrderStatus.FULFILLING),  # not before the payment
    (OrderStatus.CREATED, OrderStatus.PAID),
    (OrderStatus.FULFILLING, OrderStatus.REFUNDED),  # only a failed order is refunded
])
def test_illegal_moves_are_refused(start: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(IllegalTransition, match="shop order"):
        _order(start).to(target)


def test_every_status_has_a_row_and_the_final_ones_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)
    assert TRANSITIONS[OrderStatus.DELIVERED] == TRANSITIONS[OrderStatus.REFUNDED] == frozenset()


def test_fail_keeps_the_reason_short() -> None:
    order = _order(OrderStatus.FULFILLING)
    order.fail("x" * 600)
    assert order.status is OrderStatus.FAILED and len(order.failure or "") == 500


def test_the_founding_example() -> None:
    # 5.00 TON of Stars at 1 %: the payer pays about 5.05, the contract forwards exactly 5.00.
    total, fee = totals(5_000_000_000, 100)
    assert (total, fee) == (5_050_505_050, 50_505_050)
    assert forwarded(total, 100) == 5_000_000_000


@given(st.integers(1, 10**15), st.integers(0, 2_000))
def test_the_collector_always_forwards_at_least_the_cost(cost: int, bps: int) -> None:
    total, fee = totals(cost, bps)
    assert forwarded(total, bps) >= cost and total - fee == forwarded(total, bps)
    assert total == cost or forwarded(total - 1, bps) < cost  # and the total is the smallest


def test_entries_send_exactly_what_the_signer_is_asked_for() -> None:
    paid = supplier_paid("ord_1", "TON", 750_000_000)
    assert (paid.kind, paid.reference) == ("supplier_payment", "ord_1")
    assert {p.account: p.amount for p in paid.postings} == {"hot_wallet:TON": -750_000_000,
                                                             "external:TON": 750_000_000}
    back = refunded("ord_1", "TON", refund_amount(757_575_757, 10_000_000))
    assert back.kind == "refund"
    assert {p.account: p.amount for p in back.postings}["external:TON"] == 747_575_757
    assert refund_amount(5_000_000, 10_000_000) == 0  # never negative
    mixed = received("ord_1", "mer_1", "TON", 700, 50)
    assert {p.account: p.amount for p in mixed.postings} == {
        "hot_wallet:TON": 750, "external:TON": -700, "merchant:mer_1:TON": -50}
