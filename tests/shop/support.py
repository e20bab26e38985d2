"""Stand-ins for the shop's outside world: suppliers and a signer kept in memory, and a rig
that pays an order's invoice on the devnet and runs the chain loop and the orchestrator."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.app import fulfilment, invoices
from krypton.app.ports import (
    SignerUnavailable,
    SignOutcome,
    SignRequest,
    SupplierError,
    SupplierOrder,
    SupplierPayment,
    SupplierQuote,
    SupplierRecipient,
)
from krypton.app.shop import Order, ShopKit, get_order
from krypton.bootstrap import Container
from krypton.devnet.common import named
from krypton.workers.watch import ChainWatch
from tests.support.clock import ManualClock

TON = 10**9


class FakeSupplier:
    """A supplier paid in TON (like Fragment) or paying itself (like the bot's Stars)."""

    def __init__(self, name: str, nano_per_star: int, *, self_paid: bool = False) -> None:
        self.name = name
        self.nano_per_star = nano_per_star
        self.self_paid = self_paid
        self.address = TonAddress(0, named("tests", "supplier", name)).raw
        self.unknown_users: set[str] = set()
        self.down = False  # every call fails, retryably
        self.purchase_faults: list[SupplierError] = []  # raised by the next purchases
        self.rise_at_purchase = 0  # nanoton a Star more when the purchase is made
        self.orders: dict[str, SupplierOrder] = {}
        self.paid: dict[str, int] = {}  # order id -> nanoton received
        self.purchase_calls: list[str] = []

    def _check(self) -> None:
        if self.down:
            raise SupplierError(f"{self.name} is down (502)", retryable=True, code="unavailable")

    async def quote(self, quantity: int) -> SupplierQuote:
        self._check()
        cost = quantity * self.nano_per_star
        return SupplierQuote(self.name, quantity, "TON", cost, cost)

    async def lookup(self, username: str) -> SupplierRecipient:
        self._check()
        if username in self.unknown_users:
            raise SupplierError("no such user", retryable=False, code="recipient_not_found")
        return SupplierRecipient(username, username.title(), None, f"r-{username}")

    async def purchase(self, order_id: str, recipient: str, quantity: int,
                       quote: SupplierQuote) -> SupplierOrder:
        self._check()
        self.purchase_calls.append(order_id)
        if self.purchase_faults:
            raise self.purchase_faults.pop(0)
        if recipient in self.unknown_users:
            raise SupplierError("no such user", retryable=False, code="recipient_not_found")
        if order_id in self.orders:
            return self.orders[order_id]
        amount = quantity * (self.nano_per_star + self.rise_at_purchase)
        if self.self_paid:
            order = SupplierOrder(order_id, "delivered", f"{self.name}-{order_id}")
        else:
            order = SupplierOrder(order_id, "pending_payment", f"{self.name}-{order_id}",
                                  SupplierPayment(self.address, amount, order_id))
        self.orders[order_id] = order
        return order

    async def status(self, order_id: str, ref: str | None = None) -> SupplierOrder:
        self._check()
        order = self.orders.get(order_id)
        if order is None:
            return SupplierOrder(order_id, "unknown")
        if order.payment is not None and self.paid.get(order_id, 0) >= order.payment.amount:
            return dataclasses.replace(order, status="delivered", payment=None)
        return order

    async def balance(self) -> int | None:
        return None


@dataclass
class FakeSigner:
    """Signs each request id once (a replay is refused as such) and 'sends' at once."""

    suppliers: Sequence[FakeSupplier]
    requests: dict[str, SignRequest] = field(default_factory=dict)
    sent: list[SignRequest] = field(default_factory=list)
    unavailable: int = 0  # the next calls fail as if the socket were down
    crash_after_record: bool = False  # records the next request, then "dies" before sending

    async def transfer(self, requests: Sequence[SignRequest]) -> list[SignOutcome]:
        if self.unavailable:
            self.unavailable -= 1
            raise SignerUnavailable("cannot reach the signer")
        outcomes = []
        for request in requests:
            if request.request_id in self.requests:
                outcomes.append(SignOutcome(request.request_id, "refused", "replayed_request",
                                            "already signed"))
                continue
            self.requests[request.request_id] = request
            if self.crash_after_record:
                self.crash_after_record = False
                raise SignerUnavailable("the signer died after recording")
            self._send(request)
            outcomes.append(SignOutcome(request.request_id, "broadcast",
                                        message_hash=f"h-{request.request_id}"))
        return outcomes

    def recover(self) -> None:
        """The restarted signer broadcasts what it recorded and never sent."""
        for request in self.requests.values():
            if request not in self.sent:
                self._send(request)

    def _send(self, request: SignRequest) -> None:
        self.sent.append(request)
        for supplier in self.suppliers:
            if request.destination == supplier.address:
                supplier.paid[request.request_id] = supplier.paid.get(request.request_id, 0) + request.amount

    async def status(self, request_id: str) -> SignOutcome | None:
        request = self.requests.get(request_id)
        if request is None:
            return None
        state = "confirmed" if request in self.sent else "recorded"
        return SignOutcome(request_id, state, message_hash=f"h-{request_id}", tx_hash=f"tx-{request_id}")


@dataclass
class ShopRig:
    container: Container
    kit: ShopKit
    watch: ChainWatch

    @property
    def deps(self):  # type: ignore[no-untyped-def]
        return self.container.deps

    async def pay(self, order: Order, payer: str = "alice", amount: int | None = None) -> None:
        """The payer pays the order's invoice from a devnet wallet; the chain loop sees it."""
        devnet = self.container.devnet
        assert devnet is not None and order.invoice_id is not None
        invoice = await invoices.get_invoice(self.deps, None, order.invoice_id)
        to = parse(invoice.ton_collector or invoice.ton_address or "", network="testnet")
        devnet.ton.pay_ton(payer, to, order.total if amount is None else amount, comment=invoice.memo,
                           bounceable=invoice.ton_collector is not None)
        await self.poll()

    async def poll(self) -> None:
        devnet = self.container.devnet
        assert devnet is not None
        devnet.produce("ton")
        self.watch.next_collector_check = 0.0
        await self.watch.poll()

    async def run(self, rounds: int = 1) -> None:
        """Rounds of the worker's shop job, a minute of the manual clock after each (the
        retries' back-off is at most that)."""
        for _ in range(rounds):
            await fulfilment.run_round(self.deps, self.kit)
            self.clock.advance(seconds=60)

    @property
    def clock(self) -> ManualClock:
        clock = self.deps.clock
        assert isinstance(clock, ManualClock)
        return clock

    async def order(self, order_id: str) -> Order:
        return await get_order(self.deps, self.kit, order_id)

    async def events(self, order_id: str) -> list[str]:
        async with self.deps.uow(write=False) as uow:
            stored = await uow.events.read((0, 0), 10_000)
        return [e.type for e in stored if e.subject_id == order_id]

    async def balances(self) -> dict[tuple[str, str], int]:
        async with self.deps.uow(write=False) as uow:
            balances = await uow.ledger.balances()
        for asset in {a for _, a in balances}:
            assert sum(v for (_, a), v in balances.items() if a == asset) == 0
        return balances
