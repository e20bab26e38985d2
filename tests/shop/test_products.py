"""domain/order.py's products: Stars or Premium, their quantities, their words, and a gift's
ledger entry (the platform's own Stars spent)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from krypton.domain import ledger
from krypton.domain.errors import DomainError
from krypton.domain.order import (
    PREMIUM_GIFT_STARS,
    PREMIUM_MONTHS,
    Order,
    OrderStatus,
    Product,
    check_quantity,
    describe,
    parse_product,
    stars_spent,
)


def test_products_parse_and_a_wrong_one_names_both() -> None:
    assert parse_product("premium") is Product.PREMIUM and parse_product("stars") is Product.STARS
    with pytest.raises(DomainError) as wrong:
        parse_product("nft")
    assert wrong.value.field == "product" and "'stars' or 'premium'" in str(wrong.value)


@pytest.mark.parametrize("months", PREMIUM_MONTHS)
def test_premium_is_sold_for_its_periods_only(months: int) -> None:
    check_quantity(Product.PREMIUM, months, 50, 10_000)  # the Stars limits do not apply
    assert PREMIUM_GIFT_STARS[months] in (1000, 1500, 2500)


@pytest.mark.parametrize("quantity", [0, 1, 2, 4, 5, 7, 11, 13, 24, 50, True])
def test_any_other_period_is_refused(quantity: int) -> None:
    with pytest.raises(DomainError) as wrong:
        check_quantity(Product.PREMIUM, quantity, 50, 10_000)
    assert wrong.value.field == "quantity" and "3, 6 or 12 months" in str(wrong.value)


@pytest.mark.parametrize(("quantity", "ok"), [(49, False), (50, True), (10_000, True), (10_001, False),
                                              (True, False)])
def test_stars_keep_the_shops_limits(quantity: int, ok: bool) -> None:
    if ok:
        check_quantity(Product.STARS, quantity, 50, 10_000)
    else:
        with pytest.raises(DomainError, match="Buy between 50 and 10000 Stars"):
            check_quantity(Product.STARS, quantity, 50, 10_000)


def test_words() -> None:
    assert describe(Product.STARS, 50) == "50 Telegram Stars"
    assert describe(Product.PREMIUM, 6) == "Telegram Premium for 6 months"
    assert describe(Product.PREMIUM, 12, brand=False) == "Premium for 12 months"
    assert describe(Product.STARS, 100, brand=False) == "100 Stars"


def test_an_order_from_storage_gets_its_product_back_as_the_enum() -> None:
    order = Order("ord_1", None, "durov", 3, OrderStatus.CREATED, None, "TON", 10, 1,
                  datetime(2026, 12, 7, tzinfo=UTC), product="premium")  # type: ignore[arg-type]
    assert order.product is Product.PREMIUM
    assert Order("ord_2", None, "durov", 50, OrderStatus.CREATED, None, "TON", 10, 1,
                 datetime(2026, 12, 7, tzinfo=UTC)).product is Product.STARS  # the default


def test_a_gift_spends_the_platforms_own_stars() -> None:
    entry = stars_spent("ord_1", 1500)
    assert entry.kind == "premium_gift" and entry.reference == "ord_1"
    assert ledger.balances(entry.postings) == {("owner:XTR", "XTR"): -1500, ("external:XTR", "XTR"): 1500}
