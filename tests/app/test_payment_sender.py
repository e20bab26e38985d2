"""The payer's address stored with each payment, on SQLite and PostgreSQL: TON (the source
wallet), USDT on TON (the jetton's original sender, not its jetton wallet) and Tron (`from`),
read by the chain watchers from the devnet; shown in the API's payment object; and used by a
refund "to the source", which asks the chain only for a payment stored before Krypton kept
the address."""

# ruff: noqa: F811 - the shared fixtures imported below are redefined as test arguments

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from krypton.adapters.chains.ton.address import parse
from krypton.adapters.db import tables as t
from krypton.app import ingest, invoices, refunds
from krypton.app.refunds import RefundRequest
from krypton.devnet import tron
from krypton.devnet.ton import jetton_wallet_address
from krypton.domain.assets import USDT_TON, Chain
from krypton.domain.errors import Conflict
from krypton.domain.invoice import Invoice
from krypton.domain.payment import ObservedTransfer, Payment
from krypton.web.api import schemas
from tests.app.test_crypto_refunds import (  # noqa: F401 - the refund world fixtures
    ALICE,
    BOB,
    TON,
    USDT,
    DevnetSources,
    World,
    socket_dir,
    world,
)


async def payment_of(world: World, invoice: Invoice) -> Payment:
    async with world.container.deps.uow(write=False) as uow:
        [payment] = await uow.payments.for_invoice(invoice.id)
    return payment


async def new_invoice(world: World, amount: str, currency: str, method: str) -> Invoice:
    body = (await invoices.create_invoice(
        world.container.deps, world.merchant_id,
        invoices.InvoiceRequest(amount=amount, currency=currency, methods=[method]),
        view=lambda i: {"id": i.id})).view
    return await invoices.get_invoice(world.container.deps, world.merchant_id, body["id"])


class NotAsked:
    """A chain that must not be asked: the payment knows its sender."""

    async def source_of(self, payment: Payment) -> str | None:
        raise AssertionError(f"asked the chain for the sender of {payment.id}")


class Counting(DevnetSources):
    asked = 0

    async def source_of(self, payment: Payment) -> str | None:
        self.asked += 1
        return await super().source_of(payment)


def with_sources(world: World, sources: object) -> refunds.RefundKit:
    assert world.kit.chain is not None
    rail = refunds.ChainRail(world.kit.chain.book, world.kit.chain.signer, world.kit.chain.claim_key,
                             world.kit.chain.public_url, world.kit.chain.assets, sources)  # type: ignore[arg-type]
    return refunds.RefundKit(world.kit.books, world.kit.bot, world.kit.payers, rail)


async def test_a_ton_payment_stores_its_sender_and_the_api_shows_it(world: World) -> None:
    invoice = await world.paid(10 * TON, payer="bob")
    payment = await payment_of(world, invoice)
    assert payment.sender == BOB.raw
    assert schemas.payment_body(payment)["sender"] == BOB.raw
    async with world.container.db.reader.connect() as conn:
        stored = (await conn.execute(sa.select(t.payments.c.sender))).scalar_one()
    assert stored == BOB.raw


async def test_a_usdt_on_ton_payment_stores_the_jettons_sender_not_its_jetton_wallet(world: World) -> None:
    invoice = await new_invoice(world, "20", "USDT", "usdt_ton")
    assert invoice.ton_address is not None
    world.devnet.ton.pay_jetton("alice", parse(invoice.ton_address, network="testnet"), 20 * USDT,
                                comment=invoice.memo)
    world.devnet.produce("ton")
    assert await world.watch.poll() >= 1
    payment = await payment_of(world, invoice)
    master = parse(USDT_TON.contract or "", network="mainnet")
    assert payment.sender == ALICE.raw
    assert payment.sender != jetton_wallet_address(ALICE, master).raw


async def test_a_tron_payment_stores_its_from_address(world: World) -> None:
    invoice = await new_invoice(world, "50", "USDT", "usdt_trc20")
    assert invoice.tron_address is not None
    world.devnet.tron.transfer("alice", invoice.tron_address, 50 * USDT)
    world.devnet.produce("tron")
    assert await world.watch.poll() >= 1
    payment = await payment_of(world, invoice)
    assert payment.sender == tron.payer_address("alice")
    assert schemas.payment_body(payment)["sender"] == tron.payer_address("alice")


async def test_a_refund_to_the_source_takes_the_stored_sender_without_asking_the_chain(
        world: World) -> None:
    invoice = await world.paid(10 * TON, payer="bob")
    refund = await refunds.refund_invoice(world.container.deps, with_sources(world, NotAsked()),
                                          world.merchant_id, invoice.id,
                                          RefundRequest(amount="4", to="source"))
    assert refund.destination == BOB.raw


async def test_a_payment_stored_before_the_column_asks_the_chain(world: World) -> None:
    invoice = await world.paid(10 * TON, payer="bob")
    async with world.container.db.writer.connect() as conn:  # as migration 0020 left older rows
        await conn.begin()
        await conn.execute(t.payments.update().values(sender=None))
        await conn.commit()
    assert (await payment_of(world, invoice)).sender is None
    sources = Counting(world.devnet)
    refund = await refunds.refund_invoice(world.container.deps, with_sources(world, sources),
                                          world.merchant_id, invoice.id,
                                          RefundRequest(amount="4", to="source"))
    assert (refund.destination, sources.asked) == (BOB.raw, 1)


async def test_without_a_stored_sender_or_a_chain_to_ask_the_source_is_unknown(world: World) -> None:
    invoice = await world.paid(10 * TON)
    async with world.container.db.writer.connect() as conn:
        await conn.begin()
        await conn.execute(t.payments.update().values(sender=None))
        await conn.commit()
    with pytest.raises(Conflict, match="The address this payment came from is not known") as refused:
        await refunds.refund_invoice(world.container.deps, with_sources(world, None), world.merchant_id,
                                     invoice.id, RefundRequest(amount="4", to="source"))
    assert refused.value.code == "source_unknown"


async def test_a_payment_without_its_sender_gets_it_on_its_next_sighting(world: World) -> None:
    """A payment stored before the column, still confirming when Krypton is upgraded."""
    invoice = await new_invoice(world, "10", "TON", "ton")
    assert invoice.ton_address is not None
    seen = ObservedTransfer(chain=Chain.TON, tx_id="a" * 64, index=0, asset="TON", amount=10 * TON,
                            destination=invoice.ton_address, memo=invoice.memo, block=None,
                            confirmations=0, final=False)
    await ingest.ingest_transfer(world.container.deps, seen, invoice.id)
    assert (await payment_of(world, invoice)).sender is None
    final = dataclasses.replace(seen, block=5, confirmations=1, final=True, sender=BOB.raw)
    await ingest.ingest_transfer(world.container.deps, final, invoice.id)
    payment = await payment_of(world, invoice)
    assert (payment.status.value, payment.sender) == ("confirmed", BOB.raw)
