"""An in-memory stand-in for app/shop.py's use cases (the ShopKit contract), installed over the
module's functions, for the web layer's tests while the shop's core is built beside them."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import pytest

from krypton.app import shop
from krypton.app.deps import Deps
from krypton.bootstrap import Container
from krypton.domain.errors import NotFound

PEOPLE = {"durov": ("Pavel Durov", "https://cdn.example/durov.jpg"), "ann_smith": ("Ann Smith", None)}
# 5.00 TON per 50 Stars as cost, 1 % fee: the 5.05 TON for 50 Stars.
NANOTON_PER_STAR = 100_000_000
NANOTON_PER_PREMIUM_MONTH = 800_000_000  # 2.4 TON for 3 months
MICRO_USDT_PER_STAR = 15_000


@dataclass
class FakeShop:
    minimum: int = 50
    maximum: int = 10_000
    orders: dict[str, shop.Order] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    met: dict[str, int] = field(default_factory=dict)  # usernames the Mini App signed in with
    users: None = None  # ShopKit.users: no store of usernames the bot met
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def install(self, monkeypatch: pytest.MonkeyPatch, container: Container) -> None:
        kit = cast(shop.ShopKit, self)  # the fakes below ignore the kit
        monkeypatch.setattr(container, "shop", lambda: kit, raising=False)
        for name in ("limits", "lookup_recipient", "quote", "create_order", "get_order", "orders_of",
                     "remember_user"):
            monkeypatch.setattr(shop, name, getattr(self, name))

    async def remember_user(self, deps: Deps, kit: shop.ShopKit, username: str | None,
                            user_id: int) -> None:
        if username:
            self.met[username.lower()] = user_id

    async def limits(self, deps: Deps, kit: shop.ShopKit) -> shop.Limits:
        return shop.Limits(self.minimum, self.maximum, (50, 100, 250, 500, 1000))

    async def lookup_recipient(self, deps: Deps, kit: shop.ShopKit, username: str) -> shop.Recipient:
        self.calls.append(f"lookup {username}")
        person = PEOPLE.get(username.lower())
        if person is None:
            raise NotFound(f"No Telegram user '@{username}'.", field="recipient")
        return shop.Recipient(username.lower(), *person)

    async def quote(self, deps: Deps, kit: shop.ShopKit, quantity: int, asset: str = "TON",
                    product: str = "stars", recipient: str | None = None) -> shop.Quote:
        kind = shop.Product(product)
        shop.check_quantity(kind, quantity, self.minimum, self.maximum)  # the core's own check
        per = NANOTON_PER_PREMIUM_MONTH if kind is shop.Product.PREMIUM else NANOTON_PER_STAR
        cost = quantity * (per if asset == "TON" else MICRO_USDT_PER_STAR)
        fee = cost // 100
        return shop.Quote(quantity, cost, fee, cost + fee, asset, "fragment",
                          deps.clock.now() + timedelta(seconds=30), kind)

    async def create_order(self, deps: Deps, kit: shop.ShopKit, *, buyer: str | None, recipient: str,
                           quantity: int, asset: str = "TON",
                           idempotency_key: str | None = None, product: str = "stars") -> shop.Order:
        if idempotency_key is not None and idempotency_key in self.keys:
            return self.orders[self.keys[idempotency_key]]
        await self.lookup_recipient(deps, kit, recipient)
        priced = await self.quote(deps, kit, quantity, asset, product)
        order_id = f"ord_{secrets.token_hex(8)}"
        now: datetime = deps.clock.now() + timedelta(seconds=next(self._ids))  # distinct times
        order = shop.Order(order_id, buyer, recipient, quantity, shop.OrderStatus.AWAITING_PAYMENT,
                           f"inv_{order_id[4:]}", asset, priced.total, priced.fee, now, None, None, None,
                           product=priced.product)
        self.orders[order_id] = order
        if idempotency_key is not None:
            self.keys[idempotency_key] = order_id
        return order

    async def get_order(self, deps: Deps, kit: shop.ShopKit, order_id: str) -> shop.Order:
        if order_id not in self.orders:
            raise NotFound(f"No order '{order_id}'.", field="id")
        return self.orders[order_id]

    async def orders_of(self, deps: Deps, kit: shop.ShopKit, buyer: str, *, limit: int = 20,
                        starting_after: str | None = None) -> tuple[list[shop.Order], bool]:
        mine = sorted((o for o in self.orders.values() if o.buyer == buyer),
                      key=lambda o: o.created_at, reverse=True)
        if starting_after is not None:
            ids = [o.id for o in mine]
            mine = mine[ids.index(starting_after) + 1:] if starting_after in ids else []
        return mine[:limit], len(mine) > limit
