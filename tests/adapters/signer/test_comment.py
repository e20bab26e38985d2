"""A supplier's payment comment through the signer, on SQLite and PostgreSQL: it reaches the
chain as the message's text comment, is kept in the outbox and the audit log (a resend after
a crash carries it again, with the same message hash), and any other kind of request that
brings a comment is refused with a sentence."""

# ruff: noqa: F811 - the shared fixtures imported below are redefined as test arguments

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest
import sqlalchemy as sa

from krypton.adapters.chains.ton.comments import text_comment
from krypton.adapters.db import tables as t
from krypton.adapters.signer.client import SignerClient, Transfer
from krypton.adapters.signer.outbox import Outbox
from krypton.adapters.signer.server import Signer, parse_request
from krypton.adapters.signer.wallet import HotWallet
from krypton.bootstrap import Container
from krypton.devnet import Devnet
from krypton.devnet.ton import TonTransaction
from krypton.domain import signer_policy as rules
from krypton.domain.signer_policy import DestinationKind, RequestKind, TransferRequest
from tests.adapters.signer.test_server import (  # noqa: F401 - the signer fixtures
    ALICE,
    TON,
    Crash,
    client,
    devnet,
    http,
    land,
    ledger_entry,
    make_signer,
    queued,
    signer,
    socket_dir,
    statuses,
    wallet,
)
from tests.support.clock import ManualClock

FRAGMENT_COMMENT = "50 Telegram Stars for @alice\n\nRef#ord_7Kq2"


async def supplier_payment(container: Container, request_id: str, amount: int,
                           comment: str | None = FRAGMENT_COMMENT) -> Transfer:
    entry = await ledger_entry(container, amount, kind="supplier_payment")
    return Transfer(request_id, "supplier_payment", "TON", amount, ALICE.raw, "supplier", entry, comment)


def received(devnet: Devnet, message_hash: str) -> TonTransaction:
    """The destination's transaction for the one message the external sent."""
    [wallet_tx] = devnet.ton.by_message(message_hash)
    [out] = wallet_tx.out_msgs
    return next(tx for tx in devnet.ton.transactions(ALICE) if tx.in_msg.hash == out.hash)


async def test_a_supplier_payment_carries_its_comment_on_chain(
        container: Container, signer: Signer, client: SignerClient, devnet: Devnet,
        http: httpx.AsyncClient, wallet: HotWallet) -> None:
    call = asyncio.create_task(client.transfer(await supplier_payment(container, "ord_7Kq2", 2 * TON)))
    await queued(signer, 1)
    await signer.send_batch()
    [result] = await call
    assert result["status"] == "broadcast"
    await land(signer, http)

    tx = received(devnet, result["message_hash"])
    assert text_comment(tx.in_msg.body) == FRAGMENT_COMMENT
    assert tx.credit == 2 * TON
    [audit] = await Outbox(container.db, wallet.address.raw).audit()
    assert audit.request["comment"] == FRAGMENT_COMMENT and audit.request["kind"] == "supplier_payment"
    async with container.db.reader.connect() as conn:
        stored = (await conn.execute(sa.select(t.signer_transfers.c.comment))).scalar_one()
    assert stored == FRAGMENT_COMMENT


async def test_without_a_comment_the_message_names_the_request(
        container: Container, signer: Signer, client: SignerClient, devnet: Devnet,
        http: httpx.AsyncClient) -> None:
    call = asyncio.create_task(client.transfer(await supplier_payment(container, "ord_9", TON, None)))
    await queued(signer, 1)
    await signer.send_batch()
    [result] = await call
    await land(signer, http)
    assert text_comment(received(devnet, result["message_hash"]).in_msg.body) == "supplier_payment ord_9"


@pytest.mark.parametrize(("kind", "destination_kind"), [("payout", "merchant_wallet"),
                                                        ("refund", "payer_wallet")])
async def test_a_payout_or_refund_with_a_comment_is_refused(
        container: Container, signer: Signer, client: SignerClient, kind: str,
        destination_kind: str) -> None:
    entry = await ledger_entry(container, TON, kind=kind)
    transfer = Transfer(f"{kind}_1", kind, "TON", TON, ALICE.raw, destination_kind, entry,
                        "Ref#someone-elses-order")
    [result] = await client.transfer(transfer)
    assert (result["status"], result["refusal"]) == ("refused", "comment_not_allowed")
    assert result["reason"] == (f"a {kind} may not carry a comment of its own (only a "
                                f"supplier_payment may); it is sent with \"{kind} {kind}_1\"")
    assert await statuses(container) == []  # nothing was signed
    # The refusal does not spend the request id: the same request without a comment is signed.
    call = asyncio.create_task(client.transfer(dataclasses.replace(transfer, comment=None)))
    await queued(signer, 1)
    await signer.send_batch()
    [again] = await call
    assert again["status"] == "broadcast"


@pytest.mark.parametrize(("comment", "words"), [
    ("x" * 201, "201 characters, more than the 200 allowed"),
    ("Ref#1\x00", "unprintable character U+0000"),
    ("Ref#1\u202e", "unprintable character U+202E"),  # right-to-left override: shows other text
    ("  ", "the comment is empty"),
])
async def test_a_comment_that_is_too_long_or_unprintable_is_refused(
        container: Container, client: SignerClient, comment: str, words: str) -> None:
    [result] = await client.transfer(await supplier_payment(container, "ord_bad", TON, comment))
    assert (result["status"], result["refusal"]) == ("refused", "comment_invalid")
    assert words in result["reason"]
    assert await statuses(container) == []


@pytest.mark.parametrize("comment", [
    "50 Telegram Stars\n\nRef#abc KR-ACDE3467",
    "Ref#1 kr-acde3467",  # any case
    "Ref#1 \u041aR-\u0410CDE3467",  # Cyrillic К and А: the matcher folds them to Latin
    "Ref#1 KR - ACDE 3467",  # blanks inside, as a payer might type it
    "Ref#1 KR\u2010ACDE3467",  # a Unicode hyphen
    "Ref#1 KR-ACDE3467 KR-ACDE3469",  # two memos (the matcher credits neither, still refused)
    "ACDE3467",  # a bare memo body as the whole comment: the matcher reads it as a memo
])
async def test_a_supplier_comment_naming_an_invoice_memo_is_refused(
        container: Container, client: SignerClient, comment: str) -> None:
    """Paid to one of Krypton's own collector addresses, a comment with a memo would credit
    that invoice (another merchant's balance) instead of landing unmatched: every form the
    payment matcher (domain/memo.find) reads as a memo is refused, and nothing is signed."""
    [result] = await client.transfer(await supplier_payment(container, "ord_memo", TON, comment))
    assert (result["status"], result["refusal"]) == ("refused", "comment_invalid")
    assert "names the Krypton invoice memo KR-ACDE3467" in result["reason"]
    assert await statuses(container) == []


@pytest.mark.parametrize("comment", [
    FRAGMENT_COMMENT,
    "Ref#KRYPTON",  # "KR" followed by something that is no memo body
    "Ref#kracde3467x",  # a memo body running on into another letter is no memo
    "100 Stars KR-ACDE346",  # seven characters: too short to be a memo
])
def test_a_supplier_comment_that_only_resembles_a_memo_is_allowed(comment: str) -> None:
    assert rules.comment_problem(comment) is None


def test_a_comment_must_be_a_string() -> None:
    request = {"request_id": "ord_1", "kind": "supplier_payment", "asset": "TON", "amount": 1,
               "destination": ALICE.raw, "destination_kind": "supplier", "ledger_entry_id": 1}
    assert parse_request({**request, "comment": None}, "devnet").comment is None
    assert parse_request({**request, "comment": "Ref#1"}, "devnet").comment == "Ref#1"
    with pytest.raises(ValueError, match="comment must be a string"):
        parse_request({**request, "comment": 7}, "devnet")
    with pytest.raises(ValueError, match="unknown memo"):
        parse_request({**request, "memo": "Ref#1"}, "devnet")


def test_the_policy_allows_a_comment_on_supplier_payments_only() -> None:
    policy = rules.Policy({"TON": rules.Limits(per_transfer=10, per_day=10)})
    facts = rules.Facts(0, None, False, False)
    for kind, where in ((RequestKind.PAYOUT, DestinationKind.MERCHANT_WALLET),
                        (RequestKind.REFUND, DestinationKind.PAYER_WALLET),
                        (RequestKind.FEE_SWEEP, DestinationKind.TREASURY)):
        request = TransferRequest("r1", kind, "TON", 1, ALICE.raw, where, 1, "hello")
        assert rules.decide(policy, request, facts).refusal is rules.Refusal.COMMENT_NOT_ALLOWED
    supplier = TransferRequest("r1", RequestKind.SUPPLIER_PAYMENT, "TON", 1, ALICE.raw,
                               DestinationKind.SUPPLIER, 1, "50 Stars\n\nRef#abc")
    # Past the comment rules, to the ledger's: the comment itself is fine.
    assert rules.decide(policy, supplier, facts).refusal is rules.Refusal.LEDGER_ENTRY_MISSING
    assert rules.comment_problem("é ü 🌟 Ref#1") is None
    assert rules.comment_problem("a\tb") is not None and rules.comment_problem("a\rb") is not None


async def test_a_resend_after_a_crash_carries_the_comment_with_the_same_message_hash(
        container: Container, signer: Signer, devnet: Devnet, http: httpx.AsyncClient,
        wallet: HotWallet) -> None:
    async def crash() -> None:
        raise Crash
    signer.after_record = crash
    request = parse_request((await supplier_payment(container, "ord_c", 3 * TON)).as_json(), "devnet")
    call = asyncio.create_task(signer.submit([request]))
    await queued(signer, 1)
    with pytest.raises(Crash):
        await signer.send_batch()
    call.cancel()
    [recorded] = await Outbox(container.db, wallet.address.raw).unresolved()
    assert recorded.transfers[0].request == request  # the comment is kept with the request

    restarted = make_signer(container, http, wallet)
    assert not await restarted.reconcile()  # the recorded BOC, broadcast again
    await land(restarted, http)
    assert await statuses(container) == [("ord_c", "confirmed", 0)]
    tx = received(devnet, recorded.message_hash)  # the message hash recorded before the crash
    assert text_comment(tx.in_msg.body) == FRAGMENT_COMMENT and tx.credit == 3 * TON


async def test_a_transfer_signed_again_after_it_expired_carries_the_same_comment(
        container: Container, signer: Signer, devnet: Devnet, http: httpx.AsyncClient,
        wallet: HotWallet, clock: ManualClock) -> None:
    async def crash() -> None:
        raise Crash
    signer.after_record = crash
    request = parse_request((await supplier_payment(container, "ord_e", TON)).as_json(), "devnet")
    call = asyncio.create_task(signer.submit([request]))
    await queued(signer, 1)
    with pytest.raises(Crash):
        await signer.send_batch()
    call.cancel()
    clock.advance(seconds=61)
    assert (await http.post("/control/blocks", json={"chain": "ton"})).status_code == 200

    restarted = make_signer(container, http, wallet)
    assert not await restarted.reconcile()  # expired unseen: re-signed from the outbox
    [resigned] = await Outbox(container.db, wallet.address.raw).unresolved()
    assert resigned.attempt == 2
    await land(restarted, http)
    assert text_comment(received(devnet, resigned.message_hash).in_msg.body) == FRAGMENT_COMMENT
    audit = await Outbox(container.db, wallet.address.raw).audit()
    assert [a.request["comment"] for a in audit] == [FRAGMENT_COMMENT] * 2
