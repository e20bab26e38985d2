"""A server clock that jumps ±10 minutes flips no decision already taken and expires nothing
early (issue 19 §2), on every database: expiry waits for the chains' own time, lateness is
the block's time, the transition tables forbid going back, webhook retries neither stall
nor run twice, and the job leases read no clock at all."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from krypton.adapters.db.leases import AdvisoryLeases, LocalLeases
from krypton.app import chain_time, ingest, invoices, merchants, webhooks
from krypton.app.deps import Deps
from krypton.bootstrap import Container
from krypton.domain import events
from krypton.domain.assets import Chain
from krypton.domain.errors import Conflict
from krypton.domain.invoice import TRANSITIONS, InvoiceStatus
from krypton.domain.payment import ObservedTransfer
from krypton.web.api.schemas import WebhookObjects
from tests.support.clock import ManualClock

TON = 1_000_000_000
USDT = 1_000_000
JUMP = timedelta(minutes=10)
EXPIRES_IN = timedelta(minutes=15)
EXPIRED_EVENT = events.invoice_status_event(InvoiceStatus.EXPIRED.value)
OBJECTS = WebhookObjects("http://127.0.0.1:8000", testnet=False)
_tx = iter(range(1, 1_000_000))


@dataclass
class Shop:
    deps: Deps
    merchant_id: str
    clock: ManualClock

    async def invoice(self, method: str = "ton") -> str:
        currency = "TON" if method == "ton" else "USDT"
        created = await invoices.create_invoice(
            self.deps, self.merchant_id, invoices.InvoiceRequest(
                amount="10", currency=currency, methods=[method],
                expires_in=int(EXPIRES_IN.total_seconds())))
        assert created.invoice is not None
        return created.invoice.id

    async def expires_at(self, invoice_id: str) -> datetime:
        return (await invoices.get_invoice(self.deps, None, invoice_id)).expires_at

    async def chain_at(self, **times: datetime) -> None:
        """What the watcher's head samples recorded as each chain's time."""
        await chain_time.record(self.deps, times)

    async def pay(self, invoice_id: str, *, sent: datetime | None, asset: str = "TON",
                  confirmations: int = 1, tx: str | None = None) -> ingest.IngestResult:
        chain, units = (Chain.TRON, 10 * USDT) if asset == "USDT_TRC20" else (Chain.TON, 10 * TON)
        transfer = ObservedTransfer(chain, tx or f"tx-{next(_tx)}", 0, asset, units, "dest", None,
                                    100, confirmations, block_time=sent)
        return await ingest.ingest_transfer(self.deps, transfer, invoice_id)

    async def state(self, invoice_id: str) -> tuple[str, str | None]:
        invoice = await invoices.get_invoice(self.deps, None, invoice_id)
        return invoice.status.value, invoice.exception.value if invoice.exception else None

    async def events(self, invoice_id: str) -> list[str]:
        async with self.deps.uow(write=False) as uow:
            return [e.type for e in await uow.events.read((0, 0), 1000) if e.subject_id == invoice_id]


@pytest.fixture
async def shop(container: Container, clock: ManualClock) -> Shop:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    return Shop(container.deps, merchant.id, clock)


# --- expiry ------------------------------------------------------------------------------------

async def test_a_server_clock_jumping_ahead_expires_nothing_the_chain_has_not_reached(shop: Shop) -> None:
    inv = await shop.invoice()
    expires_at = await shop.expires_at(inv)
    shop.clock.advance(minutes=6)
    await shop.chain_at(ton=shop.clock.now())
    shop.clock.current += JUMP  # 1 minute past the expiry by the server clock alone
    assert await invoices.expire_due(shop.deps) == 0
    assert await shop.state(inv) == ("pending", None)
    # The chain gets there a second after the expiry: now it is over, once.
    await shop.chain_at(ton=expires_at)
    assert await invoices.expire_due(shop.deps) == 1
    await shop.chain_at(ton=expires_at + timedelta(seconds=1))
    assert await invoices.expire_due(shop.deps) == 0
    assert await shop.state(inv) == ("expired", None)
    assert (await shop.events(inv)).count(EXPIRED_EVENT) == 1


async def test_a_chain_ahead_of_a_server_clock_behind_expires_nothing_either(shop: Shop) -> None:
    """Both clocks must pass the expiry: a server clock jumped back holds it too."""
    inv = await shop.invoice()
    expires_at = await shop.expires_at(inv)
    shop.clock.current = expires_at + timedelta(minutes=1)
    await shop.chain_at(ton=shop.clock.now())
    shop.clock.current -= JUMP
    assert await invoices.expire_due(shop.deps) == 0
    assert await shop.state(inv) == ("pending", None)


async def test_a_clock_jumping_back_unexpires_reopens_and_redelivers_nothing(shop: Shop) -> None:
    inv = await shop.invoice()
    expires_at = await shop.expires_at(inv)
    shop.clock.current = expires_at + timedelta(seconds=30)
    await shop.chain_at(ton=shop.clock.now())
    assert await invoices.expire_due(shop.deps) == 1
    seen = await shop.events(inv)
    shop.clock.current -= JUMP  # 9.5 minutes before the expiry again
    assert await invoices.expire_due(shop.deps) == 0
    with pytest.raises(Conflict, match="expired"):  # only a payment moves an expired invoice
        await invoices.cancel_invoice(shop.deps, shop.merchant_id, inv)
    assert await shop.state(inv) == ("expired", None)
    assert await shop.events(inv) == seen  # nothing new to deliver


async def test_without_a_chain_time_the_server_clock_decides_as_before(shop: Shop) -> None:
    inv = await shop.invoice()
    shop.clock.advance(seconds=EXPIRES_IN.total_seconds())
    assert await invoices.expire_due(shop.deps) == 1
    assert await shop.state(inv) == ("expired", None)


async def test_a_stalled_chain_holds_only_the_invoices_payable_on_it(shop: Shop) -> None:
    ton = await shop.invoice("ton")
    tron = await shop.invoice("usdt_trc20")
    expires_at = await shop.expires_at(tron)
    await shop.chain_at(ton=shop.clock.now())  # the TON watcher stopped here
    shop.clock.current = expires_at + JUMP
    await shop.chain_at(tron=shop.clock.now())
    assert await invoices.expire_due(shop.deps) == 1
    assert (await shop.state(ton), await shop.state(tron)) == (("pending", None), ("expired", None))


async def test_the_recorded_chain_time_never_goes_back(shop: Shop) -> None:
    later = shop.clock.now()
    await shop.chain_at(ton=later)
    await shop.chain_at(ton=later - JUMP)  # a lagging provider's older head
    async with shop.deps.uow(write=False) as uow:
        assert await chain_time.latest(uow) == {"ton": later}


# --- lateness ----------------------------------------------------------------------------------

@pytest.mark.parametrize("jump", [JUMP, -JUMP], ids=["ahead", "back"])
async def test_a_payment_sent_before_the_expiry_is_never_late_however_late_it_is_seen(
        shop: Shop, jump: timedelta) -> None:
    inv = await shop.invoice()
    expires_at = await shop.expires_at(inv)
    shop.clock.current = expires_at + timedelta(hours=1)
    await shop.chain_at(ton=shop.clock.now())
    assert await invoices.expire_due(shop.deps) == 1
    shop.clock.current += jump
    await shop.pay(inv, sent=expires_at - timedelta(seconds=1))
    assert await shop.state(inv) == ("paid", None)


@pytest.mark.parametrize("jump", [JUMP, -JUMP], ids=["ahead", "back"])
async def test_a_payment_sent_after_the_expiry_is_late_whatever_the_server_clock_says(
        shop: Shop, jump: timedelta) -> None:
    inv = await shop.invoice()
    expires_at = await shop.expires_at(inv)
    shop.clock.current = expires_at + timedelta(minutes=1)
    await shop.chain_at(ton=shop.clock.now())
    assert await invoices.expire_due(shop.deps) == 1
    shop.clock.current += jump  # back: 9 minutes before the expiry by the server clock
    await shop.pay(inv, sent=expires_at)
    assert await shop.state(inv) == ("paid", "paid_late")


async def test_a_payment_seen_while_the_server_clock_is_ahead_does_not_expire_its_invoice_first(
        shop: Shop) -> None:
    """The payment's ingest judges a due invoice too: not by the jumped clock."""
    inv = await shop.invoice()
    shop.clock.advance(minutes=6)
    await shop.chain_at(ton=shop.clock.now())
    sent = shop.clock.advance(minutes=1)
    shop.clock.current += JUMP
    await shop.pay(inv, sent=sent)
    assert await shop.state(inv) == ("paid", None)
    assert EXPIRED_EVENT not in await shop.events(inv)


async def test_a_lost_payment_leaves_its_invoice_pending_until_the_chain_passes_the_expiry(
        shop: Shop) -> None:
    inv = await shop.invoice()
    sent = shop.clock.advance(minutes=6)
    await shop.chain_at(ton=sent)
    await shop.pay(inv, sent=sent, confirmations=0, tx="tx-lost")
    assert await shop.state(inv) == ("confirming", None)
    shop.clock.current += JUMP
    await ingest.fail_transfer(shop.deps, "ton", "tx-lost", 0)  # its receipt: it did not pay
    assert await shop.state(inv) == ("pending", None)
    assert EXPIRED_EVENT not in await shop.events(inv)


async def test_a_lost_payment_after_a_jump_back_reopens_no_expired_invoice(shop: Shop) -> None:
    inv = await shop.invoice()
    expires_at = await shop.expires_at(inv)
    shop.clock.current = expires_at + timedelta(minutes=1)
    await shop.chain_at(ton=shop.clock.now())
    assert await invoices.expire_due(shop.deps) == 1
    await shop.pay(inv, sent=expires_at - timedelta(seconds=5), confirmations=0, tx="tx-lost")
    assert await shop.state(inv) == ("confirming", None)  # on time: sent before the expiry
    shop.clock.current -= JUMP
    await ingest.fail_transfer(shop.deps, "ton", "tx-lost", 0)
    assert await shop.state(inv) == ("expired", None)  # not pending again
    assert "invoice.pending" not in await shop.events(inv)


@dataclass
class AheadClock:
    """The server's clock, ahead of the chains' (the devnet's) by `offset`."""

    chains: ManualClock
    offset: timedelta

    def now(self) -> datetime:
        return self.chains.now() + self.offset


# Found by the simulator (seed 72, a server clock ten minutes ahead): a Tron deposit address
# was read from its invoice's created_at (server time) - 60 s, so a server clock more than a
# minute ahead of the chain hid a payment made in the invoice's first minutes.
async def test_a_server_clock_ahead_hides_no_tron_deposit(container: Container, clock: ManualClock) -> None:
    from krypton.workers.watch import ChainWatch

    assert container.devnet is not None
    deps = dataclasses.replace(container.deps, clock=AheadClock(clock, JUMP))
    merchant, _ = await merchants.create_merchant(deps, name="Shop")
    created = await invoices.create_invoice(deps, merchant.id, invoices.InvoiceRequest(
        amount="5", currency="USDT", methods=["usdt_trc20"]))
    assert created.invoice is not None and created.invoice.tron_address is not None
    chains = container.chains()
    try:
        clock.advance(seconds=5)
        container.devnet.tron.transfer("alice", created.invoice.tron_address, 5 * USDT)
        container.devnet.produce("tron", 25)
        await ChainWatch(deps, chains).poll()
    finally:
        await chains.aclose()
    invoice = await invoices.get_invoice(deps, None, created.invoice.id)
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, 5 * USDT)


# --- webhook retries ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int | None
    excerpt: str = ""
    duration_ms: int = 1
    error: str | None = None


@dataclass
class Receiver:
    failing: bool = True
    got: list[str] = field(default_factory=list)  # webhook-id of every request that came

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        self.got.append(headers["webhook-id"])
        return Answer(500, "down") if self.failing else Answer(200, "ok")


class AnyUrl:
    async def check(self, url: str) -> None:
        """Nothing to resolve: the receiver is in process."""


async def _failed_once(shop: Shop, container: Container) -> tuple[webhooks.Kit, Receiver, datetime]:
    """An event whose first delivery failed; returns the kit, the receiver and when the retry
    is due."""
    receiver = Receiver()
    kit = dataclasses.replace(container.webhook_kit(), urls=AnyUrl(), sender=receiver)
    await webhooks.create_endpoint(shop.deps, kit, shop.merchant_id, "https://shop.example/hook",
                                   (events.INVOICE_CREATED,))
    await shop.invoice()
    while await webhooks.relay(shop.deps, OBJECTS):
        pass
    assert await webhooks.deliver_due(shop.deps, kit) == 1
    receiver.failing = False
    return kit, receiver, shop.clock.now() + timedelta(seconds=6)  # 5 s, jitter up to 20 %


async def test_a_webhook_retry_after_a_jump_ahead_is_sent_once(shop: Shop, container: Container) -> None:
    kit, receiver, _ = await _failed_once(shop, container)
    shop.clock.current += JUMP
    assert await webhooks.deliver_due(shop.deps, kit) == 1
    shop.clock.current -= JUMP  # and straight back: nothing is sent again
    for _ in range(3):
        assert await webhooks.deliver_due(shop.deps, kit) == 0
        shop.clock.advance(minutes=30)
    assert len(receiver.got) == 2 and len(set(receiver.got)) == 1  # same webhook-id twice


async def test_a_webhook_retry_after_a_jump_back_waits_the_jump_and_no_longer(
        shop: Shop, container: Container) -> None:
    kit, receiver, due = await _failed_once(shop, container)
    shop.clock.current -= JUMP
    assert await webhooks.deliver_due(shop.deps, kit) == 0
    shop.clock.current = due + JUMP - timedelta(seconds=1)  # the clock catching up
    assert await webhooks.deliver_due(shop.deps, kit) == 1  # delayed by the jump at most
    assert await webhooks.deliver_due(shop.deps, kit) == 0
    assert len(receiver.got) == 2


# --- leases ------------------------------------------------------------------------------------

@pytest.mark.parametrize("jump", [JUMP, -JUMP], ids=["ahead", "back"])
async def test_job_leases_read_no_clock(db_url: str, jump: timedelta) -> None:
    """On PostgreSQL a lease is a session advisory lock: held while its connection lives,
    whatever either process's clock says, so a jump can neither free it for a second holder
    nor take it from the first. (SQLite runs one process: its leases are all its own.)"""
    before = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    if not db_url.startswith("postgresql"):
        local = LocalLeases()
        with time_machine.travel(before, tick=True):
            assert await local.try_acquire("expiry")
        with time_machine.travel(before + jump, tick=True):
            assert await local.try_acquire("expiry")
        return
    first, second = AdvisoryLeases(db_url), AdvisoryLeases(db_url)
    try:
        with time_machine.travel(before, tick=True):
            assert await first.try_acquire("expiry")
        with time_machine.travel(before + jump, tick=True):  # the process clocks jump
            assert not await second.try_acquire("expiry")
            assert await first.try_acquire("expiry")
            assert await second.running(["expiry"]) == {"expiry"}
            await first.release("expiry")
            assert await second.try_acquire("expiry")
            assert not await first.try_acquire("expiry")
    finally:
        await first.close()
        await second.close()


async def test_invoice_statuses_never_go_back() -> None:
    """What a jump back could undo if a rule read the clock backwards: the transition table
    has no way from expired back to pending or cancelled, nor from paid to anything but
    refunded."""
    assert TRANSITIONS[InvoiceStatus.EXPIRED] == {InvoiceStatus.CONFIRMING}
    assert TRANSITIONS[InvoiceStatus.PAID] == {InvoiceStatus.REFUNDED}
    assert TRANSITIONS[InvoiceStatus.CANCELLED] == frozenset()
