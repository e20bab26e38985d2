"""Chain refunds (app/refunds.py) end to end on the devnet with a real in-process signer on
its Unix socket, on SQLite and PostgreSQL: to the payment's source, through a claim link,
refusals, the worker's resolver and 20 refunds in parallel."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from krypton.adapters.chains.ton.address import parse
from krypton.adapters.db import tables as t
from krypton.adapters.db.crypto_refunds import chain_refund_book
from krypton.adapters.signer.chain import WalletChain
from krypton.adapters.signer.client import SignerClient
from krypton.adapters.signer.outbox import Outbox
from krypton.adapters.signer.refunds import SignerRefunds
from krypton.adapters.signer.server import Signer, SocketServer
from krypton.adapters.signer.wallet import HotWallet, WalletVersion
from krypton.app import ingest, invoices, merchants, refunds
from krypton.app.refunds import ChainRail, ClaimGone, ClaimNotFound, RefundKit, RefundRequest
from krypton.bootstrap import Container
from krypton.devnet import Devnet, create_devnet_app
from krypton.devnet.ton import payer_address
from krypton.domain import ledger
from krypton.domain.assets import Chain
from krypton.domain.errors import Conflict, DomainError
from krypton.domain.invoice import Invoice
from krypton.domain.payment import ObservedTransfer, Payment
from krypton.domain.refund import CLAIM_VALID_FOR, NETWORK_FEES, RefundStatus, claim_token
from krypton.workers.watch import ChainWatch
from tests.support.clock import ManualClock

TON = 10**9
USDT = 10**6
FEE = NETWORK_FEES["TON"]
SEED = bytes(range(32))
ALICE, BOB = payer_address("alice"), payer_address("bob")
KEY = b"k" * 32


class DevnetSources:
    """Where a payment came from, read from the devnet's transaction (`to: source`)."""

    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet

    async def source_of(self, payment: Payment) -> str | None:
        for tx in self.devnet.ton.transactions(parse(payment.destination, network="testnet")):
            if tx.hash == payment.tx_id and tx.in_msg.source is not None:
                return tx.in_msg.source.raw
        return None


@dataclasses.dataclass
class World:
    container: Container
    devnet: Devnet
    signer: Signer
    kit: RefundKit
    merchant_id: str
    watch: ChainWatch

    async def paid(self, amount: int, payer: str = "alice") -> Invoice:
        body = (await invoices.create_invoice(
            self.container.deps, self.merchant_id,
            invoices.InvoiceRequest(amount=str(amount // TON), currency="TON", methods=["ton"]),
            view=lambda i: {"id": i.id})).view
        invoice = await invoices.get_invoice(self.container.deps, self.merchant_id, body["id"])
        assert invoice.ton_address is not None and invoice.memo is not None
        self.devnet.ton.pay_ton(payer, parse(invoice.ton_address, network="testnet"), amount,
                                comment=invoice.memo)
        self.devnet.produce("ton")
        assert await self.watch.poll() >= 1
        invoice = await invoices.get_invoice(self.container.deps, self.merchant_id, invoice.id)
        assert invoice.status.value == "paid"
        return invoice

    async def balance(self, account: str) -> int:
        async with self.container.deps.uow(write=False) as uow:
            balances = await uow.ledger.balances()
        for asset in {a for _, a in balances}:  # the ledger balances per asset
            assert sum(v for (_, a), v in balances.items() if a == asset) == 0
        return balances.get((account, "TON"), 0)

    async def merchant(self) -> int:
        return await self.balance(ledger.merchant_account(self.merchant_id, "TON"))

    async def land(self) -> None:
        """A block takes the signer's external; the signer sees it landed."""
        self.devnet.produce("ton")
        assert await self.signer.reconcile()

    async def events(self) -> list[str]:
        async with self.container.db.reader.connect() as conn:
            types = (await conn.execute(sa.select(t.events.c.type).order_by(t.events.c.seq))).scalars()
            return [e for e in types if e.startswith("refund.")]


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kr", dir="/tmp"))  # a socket path must stay short
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclasses.dataclass
class RunningSigner:
    """A signer on its Unix socket in this process, sending whatever is queued."""

    signer: Signer
    server: SocketServer
    http: httpx.AsyncClient
    sender: asyncio.Task[None]

    async def close(self) -> None:
        self.sender.cancel()
        await self.server.close()
        await self.http.aclose()


async def start_signer(container: Container, devnet: Devnet, path: Path) -> RunningSigner:
    from krypton.domain.signer_policy import Limits, Policy

    hot = HotWallet(SEED, WalletVersion.V5R1, network="devnet")
    devnet.ton.fund(hot.address, 1_000 * TON)
    devnet.ton.fund_jetton(hot.address, 100 * USDT)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_devnet_app(devnet)),
                             base_url="http://devnet")
    signer = Signer(hot, WalletChain(http, "http://devnet/toncenter/api/v3"),
                    Outbox(container.db, hot.address.raw),
                    Policy({"TON": Limits(per_transfer=50 * TON, per_day=100 * TON),
                            "USDT_TON": Limits(per_transfer=1_000 * USDT, per_day=5_000 * USDT)}),
                    container.deps.clock, container.deps.ids.new, network="devnet", poll_seconds=0.01)
    server = SocketServer(signer, path)
    await server.start()
    return RunningSigner(signer, server, http, asyncio.create_task(_send_forever(signer)))


@pytest.fixture
async def world(container: Container, clock: ManualClock, socket_dir: Path) -> AsyncIterator[World]:
    devnet = container.devnet
    assert devnet is not None
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    running = await start_signer(container, devnet, socket_dir / "signer.sock")
    rail = ChainRail(chain_refund_book, SignerRefunds(SignerClient(socket_dir / "signer.sock")), KEY,
                     "https://pay.example", frozenset({"TON", "USDT_TON"}), DevnetSources(devnet))
    kit = RefundKit(container.stars_books(), None, None, rail)
    chains = container.chains()
    yield World(container, devnet, running.signer, kit, merchant.id, ChainWatch(container.deps, chains))
    await running.close()
    await chains.aclose()


async def _send_forever(signer: Signer) -> None:
    """The signer's sender, sending whatever is queued (no reconcile: the tests land blocks)."""
    while True:
        await signer.send_batch()
        await asyncio.sleep(0.005)


async def _payment(world: World, invoice: Invoice) -> Payment:
    async with world.container.deps.uow(write=False) as uow:
        [payment] = await uow.payments.for_invoice(invoice.id)
    return payment


async def test_a_ton_refund_to_the_source_reaches_the_payer_less_the_network_fee(world: World) -> None:
    invoice = await world.paid(10 * TON)
    net = await world.merchant()  # 10 TON less the platform fee
    before = world.devnet.ton.balance(ALICE)

    refund = await refunds.refund_invoice(world.container.deps, world.kit, world.merchant_id,
                                          invoice.id, RefundRequest(amount="4", to="source"))
    assert refund.status is RefundStatus.PENDING and refund.destination == ALICE.raw
    assert (refund.amount, refund.fee) == (4 * TON, FEE)
    assert await world.merchant() == net - 4 * TON  # taken at once: nothing can spend it twice
    assert await world.balance(ledger.external("TON")) < 0

    await world.land()
    assert await refunds.resolve_chain(world.container.deps, world.kit) == 1
    [done] = await refunds.list_refunds(world.container.deps, world.kit, world.merchant_id, invoice.id)
    assert done.status is RefundStatus.SUCCEEDED
    assert world.devnet.ton.balance(ALICE) - before == 4 * TON - FEE  # the payer's wallet
    assert await world.merchant() == net - 4 * TON
    assert await world.balance(ledger.network_fees("TON")) == FEE
    assert await world.balance(ledger.refund_pending(world.merchant_id, "TON")) == 0
    assert await world.events() == ["refund.created", "refund.succeeded"]
    payment = await _payment(world, invoice)
    assert payment.status.value == "confirmed"  # a partial refund leaves the payment paid


async def test_refunds_never_exceed_the_payment(world: World) -> None:
    invoice = await world.paid(10 * TON)
    await world.paid(30 * TON, payer="bob")  # more balance than the payment
    deps, kit = world.container.deps, world.kit
    await refunds.refund_invoice(deps, kit, world.merchant_id, invoice.id, RefundRequest(amount="7"))
    with pytest.raises(DomainError, match="At most 3 TON of this payment is left") as over:
        await refunds.refund_invoice(deps, kit, world.merchant_id, invoice.id, RefundRequest(amount="4"))
    assert over.value.field == "amount"
    with pytest.raises(DomainError, match=r"more than the network fee of 0\.01 TON"):
        await refunds.refund_invoice(deps, kit, world.merchant_id, invoice.id,
                                     RefundRequest(amount="0.01"))
    with pytest.raises(DomainError, match="not overpaid"):
        await refunds.refund_invoice(deps, kit, world.merchant_id, invoice.id,
                                     RefundRequest(amount="overpaid"))
    rest = await refunds.refund_invoice(deps, kit, world.merchant_id, invoice.id, RefundRequest())
    assert rest.amount == 3 * TON  # nothing asked: what is left of the payment
    with pytest.raises(Conflict, match="refunded in full"):
        await refunds.refund_invoice(deps, kit, world.merchant_id, invoice.id, RefundRequest())


async def test_an_overpaid_surplus_is_refunded_alone(world: World) -> None:
    body = (await invoices.create_invoice(
        world.container.deps, world.merchant_id,
        invoices.InvoiceRequest(amount="5", currency="TON", methods=["ton"]),
        view=lambda i: {"id": i.id})).view
    invoice = await invoices.get_invoice(world.container.deps, world.merchant_id, body["id"])
    assert invoice.ton_address is not None
    world.devnet.ton.pay_ton("alice", parse(invoice.ton_address, network="testnet"), 8 * TON,
                             comment=invoice.memo)
    before = world.devnet.ton.balance(ALICE)
    world.devnet.produce("ton")
    await world.watch.poll()
    refund = await refunds.refund_invoice(world.container.deps, world.kit, world.merchant_id,
                                          invoice.id, RefundRequest(amount="overpaid", to="source"))
    assert refund.amount == 3 * TON and refund.destination == ALICE.raw, refund
    await world.land()
    await refunds.resolve_chain(world.container.deps, world.kit)
    [done] = await refunds.list_refunds(world.container.deps, world.kit, world.merchant_id, invoice.id)
    assert done.status is RefundStatus.SUCCEEDED, done
    assert world.devnet.ton.balance(ALICE) - before == 3 * TON - FEE


async def test_a_claim_link_sends_to_the_address_the_payer_gives_once(world: World) -> None:
    invoice = await world.paid(10 * TON)
    deps, kit = world.container.deps, world.kit
    refund = await refunds.refund_invoice(deps, kit, world.merchant_id, invoice.id,
                                          RefundRequest(amount="2", to="claim"))
    url = await refunds.link(deps, kit, refund)
    assert url is not None and url.startswith("https://pay.example/refund/ref_")
    token = url.rsplit("/", 1)[1]
    shown = await refunds.open_claim(deps, kit, token)
    assert (shown.id, shown.amount, shown.destination) == (refund.id, 2 * TON, None)

    with pytest.raises(DomainError):  # not an address: nothing changes, the link still works
        await refunds.claim_refund(deps, kit, token, "not an address")
    before = world.devnet.ton.balance(BOB)
    claimed = await refunds.claim_refund(deps, kit, token, BOB.raw)
    assert claimed.destination == BOB.raw and claimed.status is RefundStatus.PENDING
    with pytest.raises(ClaimGone, match="used already"):  # single use
        await refunds.claim_refund(deps, kit, token, ALICE.raw)
    assert await refunds.link(deps, kit, claimed) is None  # the link is spent

    await world.land()
    await refunds.resolve_chain(deps, kit)
    assert world.devnet.ton.balance(BOB) - before == 2 * TON - FEE
    assert await world.events() == ["refund.created", "refund.claimed", "refund.succeeded"]


async def test_forged_and_foreign_tokens_change_nothing(world: World) -> None:
    invoice = await world.paid(10 * TON)
    deps, kit = world.container.deps, world.kit
    refund = await refunds.refund_invoice(deps, kit, world.merchant_id, invoice.id,
                                          RefundRequest(amount="2"))
    url = await refunds.link(deps, kit, refund)
    assert url is not None
    token = url.rsplit("/", 1)[1]
    rid, nonce, expires, _ = token.split(".")
    forged = [token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
              f"{rid}.{nonce}.{int(expires) + 10**6}.{token.split('.')[3]}",  # a longer life
              claim_token(b"x" * 32, rid, nonce, deps.clock.now() + CLAIM_VALID_FOR),  # another key
              claim_token(KEY, rid, "0" * 32, deps.clock.now() + CLAIM_VALID_FOR),  # another nonce
              "garbage"]
    for bad in forged:
        with pytest.raises(ClaimNotFound):
            await refunds.claim_refund(deps, kit, bad, BOB.raw)
    assert (await refunds.open_claim(deps, kit, token)).destination is None


async def test_an_expired_claim_fails_the_refund_and_gives_the_money_back(
        world: World, clock: ManualClock) -> None:
    invoice = await world.paid(10 * TON)
    deps, kit = world.container.deps, world.kit
    net = await world.merchant()
    refund = await refunds.refund_invoice(deps, kit, world.merchant_id, invoice.id,
                                          RefundRequest(amount="2"))
    token = (await refunds.link(deps, kit, refund) or "").rsplit("/", 1)[1]
    clock.advance(seconds=int(CLAIM_VALID_FOR.total_seconds()) + 1)
    with pytest.raises(ClaimGone, match="expired"):
        await refunds.claim_refund(deps, kit, token, BOB.raw)
    assert await refunds.resolve_chain(deps, kit) == 1
    [failed] = await refunds.list_refunds(deps, kit, world.merchant_id, invoice.id)
    assert failed.status is RefundStatus.FAILED and "expired" in (failed.failure or "")
    assert await world.merchant() == net  # reversed
    assert await world.events() == ["refund.created", "refund.failed"]


async def test_a_refund_the_signer_refuses_fails_and_is_reversed(world: World) -> None:
    invoice = await world.paid(100 * TON)
    net = await world.merchant()
    refund = await refunds.refund_invoice(world.container.deps, world.kit, world.merchant_id,
                                          invoice.id, RefundRequest(amount="60", to="source"))
    assert refund.status is RefundStatus.FAILED
    assert "per-transfer limit" in (refund.failure or "")
    assert await world.merchant() == net
    assert await world.balance(ledger.network_fees("TON")) == 0


async def test_a_tron_payment_is_refused_with_a_sentence(world: World) -> None:
    container = world.container
    body = (await invoices.create_invoice(
        container.deps, world.merchant_id,
        invoices.InvoiceRequest(amount="10", currency="USDT", methods=["usdt_trc20"]),
        view=lambda i: {"id": i.id})).view
    invoice = await invoices.get_invoice(container.deps, world.merchant_id, body["id"])
    assert invoice.tron_address is not None
    await ingest.ingest_transfer(container.deps, ObservedTransfer(
        chain=Chain.TRON, tx_id="t" * 64, index=0, asset="USDT_TRC20", amount=10 * 10**6,
        destination=invoice.tron_address, memo=None, block=1, confirmations=30), invoice.id)
    with pytest.raises(Conflict, match="USDT on Tron cannot be refunded: Krypton has no Tron "
                       "signer") as refused:
        await refunds.refund_invoice(container.deps, world.kit, world.merchant_id, invoice.id,
                                     RefundRequest())
    assert refused.value.code == "refund_unsupported"


async def test_twenty_parallel_refunds_exceed_neither_the_payment_nor_the_balance(world: World) -> None:
    deps, kit = world.container.deps, world.kit

    async def ask(invoice: Invoice, amount: str) -> str:
        try:
            await refunds.refund_invoice(deps, kit, world.merchant_id, invoice.id,
                                         RefundRequest(amount=amount))
        except Conflict as exc:
            return exc.code
        except DomainError:
            return "over_payment"
        return "created"

    # The balance binds: two payments of 10 TON leave 19.8 TON (the platform kept its fee);
    # 20 refunds of 1 TON at once, 10 on each invoice, fit both payments but not the balance.
    one, two = await world.paid(10 * TON), await world.paid(10 * TON, payer="bob")
    results = await asyncio.gather(*(ask(one if i % 2 else two, "1") for i in range(20)))
    assert sorted(results) == ["created"] * 19 + ["insufficient_balance"]
    assert await world.merchant() == 19_800_000_000 - 19 * TON

    # The payment binds: a large balance, 20 refunds of 1.5 TON of one 10 TON payment.
    await world.paid(100 * TON, payer="bob")
    small = await world.paid(10 * TON)
    before = await world.merchant()
    results = await asyncio.gather(*(ask(small, "1.5") for _ in range(20)))
    assert sorted(results) == ["created"] * 6 + ["over_payment"] * 14
    assert await world.merchant() == before - 9 * TON
    assert await world.balance(ledger.refund_pending(world.merchant_id, "TON")) == 19 * TON + 9 * TON




# --- the rules (domain/refund.py) -------------------------------------------------------

def test_a_claim_token_is_bound_to_its_refund_key_and_expiry() -> None:
    from datetime import UTC, datetime, timedelta

    from krypton.domain.refund import ClaimExpired, ClaimInvalid, read_claim_token

    now = datetime(2026, 12, 7, tzinfo=UTC)
    token = claim_token(KEY, "ref_1", "n1", now + timedelta(hours=1))
    claim = read_claim_token(KEY, token, now)
    assert (claim.refund_id, claim.nonce) == ("ref_1", "n1")
    rid, nonce, expires, sig = token.split(".")
    for bad in (f"ref_2.{nonce}.{expires}.{sig}", f"{rid}.n2.{expires}.{sig}",
                f"{rid}.{nonce}.{int(expires) + 1}.{sig}", f"{rid}.{nonce}.{expires}.{sig[:-1]}",
                token + ".x", "", "a.b.c.d"):
        with pytest.raises(ClaimInvalid):
            read_claim_token(KEY, bad, now)
    with pytest.raises(ClaimInvalid):
        read_claim_token(b"other" * 7, token, now)
    with pytest.raises(ClaimExpired):
        read_claim_token(KEY, token, now + timedelta(hours=1))


@pytest.mark.parametrize(("asked", "surplus", "refunded", "overpaid", "expected"), [
    (None, False, 0, 0, 10 * TON),  # the whole payment
    (None, False, 4 * TON, 0, 6 * TON),  # what is left of it
    (None, True, 0, 2 * TON, 2 * TON),  # the surplus
    (None, True, 9 * TON, 2 * TON, TON),  # the surplus, capped by what is left
    (3 * TON, False, 0, 0, 3 * TON),
])
def test_what_a_chain_refund_takes(asked: int | None, surplus: bool, refunded: int, overpaid: int,
                                   expected: int) -> None:
    from krypton.domain.refund import chain_amount

    plan = chain_amount(asked, surplus=surplus, payment=10 * TON, refunded=refunded,
                        overpaid=overpaid, fee=FEE, asset="TON", decimals=9)
    assert (plan.amount, plan.fee, plan.net) == (expected, FEE, expected - FEE)


class StaleStatus:
    """The real signer, but its first status answer is stale ("never seen"), as for a resolver
    that asked just before another one sent the same refund."""

    def __init__(self, real: refunds.RefundSigner) -> None:
        self.real, self.asked = real, 0

    async def send(self, request_id: str, asset: str, amount: int, destination: str,
                   ledger_entry_id: int) -> refunds.Sent:
        return await self.real.send(request_id, asset, amount, destination, ledger_entry_id)

    async def status(self, request_id: str) -> refunds.Sent | None:
        self.asked += 1
        return None if self.asked == 1 else await self.real.status(request_id)


async def test_two_resolvers_of_one_refund_send_it_once(world: World) -> None:
    invoice = await world.paid(10 * TON)
    deps = world.container.deps
    before = world.devnet.ton.balance(ALICE)
    sent = await refunds.refund_invoice(deps, world.kit, world.merchant_id, invoice.id,
                                        RefundRequest(amount="2", to="source"))
    assert world.kit.chain is not None and world.kit.chain.signer is not None
    racing = dataclasses.replace(world.kit, chain=dataclasses.replace(
        world.kit.chain, signer=StaleStatus(world.kit.chain.signer)))
    assert await refunds.resolve_chain(deps, racing) == 0  # refused as a replay: still pending
    [still] = await refunds.list_refunds(deps, world.kit, world.merchant_id, invoice.id)
    assert (still.id, still.status) == (sent.id, RefundStatus.PENDING)
    await world.land()
    assert await refunds.resolve_chain(deps, world.kit) == 1
    assert world.devnet.ton.balance(ALICE) - before == 2 * TON - FEE  # once


async def test_a_usdt_on_ton_refund_is_a_jetton_transfer_to_the_claimed_address(world: World) -> None:
    deps, kit = world.container.deps, world.kit
    body = (await invoices.create_invoice(
        deps, world.merchant_id, invoices.InvoiceRequest(amount="20", currency="USDT",
                                                          methods=["usdt_ton"]),
        view=lambda i: {"id": i.id})).view
    invoice = await invoices.get_invoice(deps, world.merchant_id, body["id"])
    assert invoice.ton_address is not None
    world.devnet.ton.pay_jetton("alice", parse(invoice.ton_address, network="testnet"), 20 * USDT,
                                comment=invoice.memo)
    world.devnet.produce("ton")
    await world.watch.poll()
    refund = await refunds.refund_invoice(deps, kit, world.merchant_id, invoice.id,
                                          RefundRequest(amount="5"))
    assert (refund.amount, refund.fee) == (5 * USDT, NETWORK_FEES["USDT_TON"])
    token = (await refunds.link(deps, kit, refund) or "").rsplit("/", 1)[1]
    before = world.devnet.ton.jetton_balance(ALICE)
    await refunds.claim_refund(deps, kit, token, ALICE.raw)
    await world.land()
    assert await refunds.resolve_chain(deps, kit) == 1
    [done] = await refunds.list_refunds(deps, kit, world.merchant_id, invoice.id)
    assert done.status is RefundStatus.SUCCEEDED
    assert world.devnet.ton.jetton_balance(ALICE) - before == 5 * USDT - NETWORK_FEES["USDT_TON"]
    assert await world.balance(ledger.network_fees("TON")) == 0
