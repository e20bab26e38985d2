"""The TON reader against the devnet: every message to a watched address ends credited,
unmatched with a reason, or ignored for a reason of the one table, and a payment is final
only once its masterchain block is at or below the head."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY
from pytoniq_core.boc.builder import Builder

from krypton.adapters.chains.provider import Endpoint, ProviderClient
from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.client import TonCenterClient
from krypton.adapters.chains.ton.hashes import canonical
from krypton.adapters.chains.ton.jetton import OP_TRANSFER_NOTIFICATION, build_notification
from krypton.adapters.chains.ton.reader import TonReader, cursor_name
from krypton.app import invoices, merchants, watching
from krypton.bootstrap import Container
from krypton.devnet import create_devnet_app
from krypton.devnet.devnet import Devnet
from krypton.devnet.ton import USDT_MASTER
from krypton.devnet.ton_bodies import excesses
from krypton.domain.assets import USDT_TON
from krypton.domain.invoice import Invoice

TON = 10**9
USDT = 10**6
NON_BREAKING_HYPHEN = "\u2011"


@dataclass
class Watched:
    container: Container
    devnet: Devnet
    reader: TonReader
    merchant_id: str

    async def invoice(self, amount: str, currency: str, method: str) -> Invoice:
        request = invoices.InvoiceRequest(amount=amount, currency=currency, methods=[method])
        created = await invoices.create_invoice(self.container.deps, self.merchant_id, request)
        assert created.invoice is not None
        return created.invoice

    async def follow(self) -> int:
        return await watching.follow(self.container.deps, self.reader)

    async def state(self, invoice: Invoice) -> tuple[str, str | None, list[str]]:
        i = await invoices.get_invoice(self.container.deps, self.merchant_id, invoice.id)
        async with self.container.deps.uow(write=False) as uow:
            payments = [p.status.value for p in await uow.payments.for_invoice(invoice.id)]
        return i.status.value, i.exception.value if i.exception else None, payments

    async def unmatched(self) -> list[dict[str, Any]]:
        async with self.container.deps.uow(write=False) as uow:
            return await uow.unmatched.list(100)

    async def cursor(self) -> str | None:
        async with self.container.deps.uow(write=False) as uow:
            return await uow.cursors.get(self.reader.cursor_name)


@pytest.fixture
async def watched(container: Container) -> AsyncIterator[Watched]:
    """The platform's TON reader, on a devnet whose indexer also lists pending transactions."""
    assert container.devnet is not None and container.settings.ton_receiving_address
    app = create_devnet_app(container.devnet, ton_show_pending=True)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://devnet")
    provider = ProviderClient([Endpoint("devnet", "http://devnet/toncenter/api/v3", rate_per_second=1000,
                                        burst=100)], http=http, timeout=2.0)
    account = parse(container.settings.ton_receiving_address, network="testnet")
    reader = TonReader(TonCenterClient(provider), account, {USDT_MASTER: USDT_TON.code})
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    yield Watched(container, container.devnet, reader, merchant.id)
    await provider.aclose()
    await http.aclose()


def counted(outcome: str, reason: str) -> float:
    labels = {"outcome": outcome, "reason": reason}
    return REGISTRY.get_sample_value("krypton_ton_messages_total", labels) or 0.0


def ours(invoice: Invoice) -> TonAddress:
    assert invoice.ton_address is not None
    return parse(invoice.ton_address, network="testnet")


async def test_a_payment_is_final_only_once_its_masterchain_block_is_known(watched: Watched) -> None:
    invoice = await watched.invoice("10", "TON", "ton")
    watched.devnet.ton.pay_ton("alice", ours(invoice), 10 * TON, comment=invoice.memo)
    credited = counted("credited", "ton")
    assert await watched.follow() == 0  # seen, in no masterchain block yet: nothing settled
    assert counted("credited", "ton") == credited  # counted once, when the cursor passes it
    assert await watched.state(invoice) == ("confirming", None, ["detected"])
    assert await watched.cursor() is None  # the cursor waits before it
    watched.devnet.produce("ton")
    assert await watched.follow() == 1
    assert counted("credited", "ton") == credited + 1
    assert await watched.state(invoice) == ("paid", None, ["confirmed"])
    assert watched.reader.head == watched.devnet.ton.head.seqno
    cursor = await watched.cursor()
    tx_hash = watched.devnet.ton.transactions(ours(invoice))[-1].hash
    assert cursor is not None and cursor.endswith(tx_hash)
    assert canonical(tx_hash) == tx_hash  # the devnet writes hashes in the canonical form


async def test_the_head_is_asked_for_only_when_a_block_is_new(watched: Watched) -> None:
    invoice = await watched.invoice("10", "TON", "ton")
    watched.devnet.ton.pay_ton("alice", ours(invoice), 10 * TON, comment=invoice.memo)
    watched.devnet.produce("ton")
    await watched.follow()
    head = watched.reader.head
    watched.devnet.produce("ton", 3)  # empty blocks: the reader has no reason to ask
    await watched.follow()
    assert watched.reader.head == head
    watched.devnet.ton.pay_ton("bob", ours(invoice), TON, comment="tip")
    watched.devnet.produce("ton")
    await watched.follow()
    assert watched.reader.head == head + 4


async def test_unreadable_notification_from_our_jetton_wallet_is_kept_and_logged(watched: Watched) -> None:
    invoice = await watched.invoice("25", "USDT", "usdt_ton")
    truncated = Builder().store_uint(OP_TRANSFER_NOTIFICATION, 32).store_uint(1, 64).store_coins(25 * USDT)
    broken = truncated.store_uint(0b100, 3).store_int(0, 8).store_bytes(bytes(32)).store_bit(1).end_cell()
    tx = watched.devnet.ton.pay_jetton("alice", ours(invoice), 25 * USDT, comment=invoice.memo,
                                       notification_body=broken)  # "in a reference", and no reference
    watched.devnet.produce("ton")
    before = counted("unmatched", "unreadable_jetton_notification")
    with structlog.testing.capture_logs() as logs:
        assert await watched.follow() == 1
    assert counted("unmatched", "unreadable_jetton_notification") == before + 1
    [kept] = await watched.unmatched()
    assert (kept["reason"], kept["tx_id"], kept["asset"], kept["amount"]) == (
        "unreadable_jetton_notification", tx.hash, "USDT_TON", 25 * USDT)
    [line] = [e for e in logs if e["event"] == "ton_notification_unmatched"]
    assert (line["tx"], line["reason"], line["log_level"]) == (tx.hash, "unreadable_jetton_notification",
                                                                "warning")
    assert await watched.state(invoice) == ("pending", None, [])
    assert await watched.cursor() is not None


async def test_a_jetton_we_do_not_accept_is_unsupported_a_forgery_counterfeit(watched: Watched) -> None:
    invoice = await watched.invoice("25", "USDT", "usdt_ton")
    other = watched.devnet.ton.pay_jetton("alice", ours(invoice), 25 * USDT, comment=invoice.memo,
                                          counterfeit=True)  # a genuine wallet of ours, another master
    note = build_notification(9, 25 * USDT, watched.devnet.ton.payer("bob"), invoice.memo)
    forged = watched.devnet.ton.send_body("bob", ours(invoice), 1, note)  # from a plain wallet
    watched.devnet.produce("ton")
    await watched.follow()
    reasons = {u["tx_id"]: (u["reason"], u["asset"]) for u in await watched.unmatched()}
    assert reasons == {other.hash: ("unsupported_jetton", "UNSUPPORTED"),
                       forged.hash: ("counterfeit_token", "COUNTERFEIT")}
    assert await watched.state(invoice) == ("pending", None, [])


async def test_excesses_and_empty_messages_are_ignored_with_their_reason(watched: Watched) -> None:
    invoice = await watched.invoice("10", "TON", "ton")
    refund = watched.devnet.ton.send_body("alice", ours(invoice), 40_000_000, excesses(5))
    empty = watched.devnet.ton.send_body("bob", ours(invoice), 0, Builder().end_cell())
    watched.devnet.produce("ton")
    before = counted("ignored", "excess_refund"), counted("ignored", "zero_value")
    with structlog.testing.capture_logs() as logs:
        assert await watched.follow() == 2
    assert (counted("ignored", "excess_refund"), counted("ignored", "zero_value")) == (
        before[0] + 1, before[1] + 1)
    ignored = {e["tx"]: e["reason"] for e in logs if e["event"] == "ton_message_ignored"}
    assert ignored == {refund.hash: "excess_refund", empty.hash: "zero_value"}
    assert await watched.unmatched() == []  # not a TON payment without memo any more
    assert await watched.cursor() is not None


async def test_a_memo_inside_a_longer_comment_pays_two_memos_do_not(watched: Watched) -> None:
    invoice = await watched.invoice("10", "TON", "ton")
    other = await watched.invoice("3", "TON", "ton")
    assert invoice.memo is not None and other.memo is not None
    watched.devnet.ton.pay_ton("alice", ours(invoice), 3 * TON, comment=f"{invoice.memo} or {other.memo}?")
    typed = invoice.memo.lower().replace("-", NON_BREAKING_HYPHEN)
    watched.devnet.ton.pay_ton("bob", ours(invoice), 10 * TON, comment=f"Order {typed} thanks")
    watched.devnet.produce("ton")
    await watched.follow()
    assert [u["reason"] for u in await watched.unmatched()] == ["ambiguous_memo"]
    assert await watched.state(invoice) == ("paid", None, ["confirmed"])
    assert await watched.state(other) == ("pending", None, [])


def test_cursor_name_is_per_account() -> None:
    assert cursor_name(TonAddress(0, b"\x01" * 32)) == "ton:0:" + "01" * 32


async def test_a_long_comment_around_the_memo_is_kept(watched: Watched) -> None:
    """A wallet may send kilobytes of comment: the payment and the unmatched record keep it
    (cut to what the database holds) rather than failing the page for ever."""
    invoice = await watched.invoice("10", "TON", "ton")
    assert invoice.memo is not None
    watched.devnet.ton.pay_ton("alice", ours(invoice), 10 * TON, comment=f"Order {invoice.memo} " + "x" * 900)
    watched.devnet.ton.pay_ton("bob", ours(invoice), TON, comment="y" * 900)
    watched.devnet.produce("ton")
    assert await watched.follow() == 2
    assert await watched.state(invoice) == ("paid", None, ["confirmed"])
    [kept] = await watched.unmatched()
    assert kept["memo"].startswith("yyy") and kept["reason"] == "no_matching_invoice"
