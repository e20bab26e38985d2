"""TON Center v3 responses: the recorded ones, and variations of them for every rule."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pytoniq_core.boc.builder import Builder

from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.cells import cell_to_boc
from krypton.adapters.chains.ton.comments import build_comment
from krypton.adapters.chains.ton.jetton import OP_TRANSFER_NOTIFICATION, build_notification
from krypton.adapters.chains.ton.toncenter import (
    PayloadError,
    TonTransfer,
    cursor_after,
    newer_than,
    parse_jetton_transfers,
    parse_masterchain_info,
    parse_transactions,
)
from krypton.domain.assets import USDT_TON, Chain
from krypton.domain.payment import ObservedTransfer
from tests.adapters.chains.ton.recorded import FIXTURES, load

# The account of toncenter-v3-transactions-comment.json, given in its mainnet friendly form:
# the payload's upper-case raw form must normalise to the same address.
OURS = parse("EQAWnJNnwByLThRxli2zLpnj5Ec6r7R-GmpkOkF3pnWPFuF-", network="mainnet")
OUR_JETTON_WALLET = parse("0:C2026C7E6748ACE187AD104FE58D9CF008A01C3B148A2EC79BA75AF573D18B72",
                          network="mainnet")
PAYER = parse("0:E1CB4616EDBDD7F663F295CF611FC82917839CD2A3775CBC2194DF43BAF6601A", network="mainnet")
STRANGER = TonAddress(0, b"\x66" * 32)
WALLETS = {OUR_JETTON_WALLET: USDT_TON.code}

TON_TX_HASH = "pMfiVnQ7vDxMivBMVpS7s+X8/2jnPNrY/4DupIXTQWs="
JETTON_TX_HASH = "O72pZ970c3Y9ILcPPNQ+pryo4lFzc3XmhuVdNmoF6mU="


def _comment_payload() -> dict[str, Any]:
    payload: dict[str, Any] = load("toncenter-v3-transactions-comment.json")
    return payload


def _parse(payload: dict[str, Any], wallets: dict[TonAddress, str] | None = None) -> list[TonTransfer]:
    chosen = WALLETS if wallets is None else wallets
    return parse_transactions(payload, our_address=OURS, jetton_wallets=chosen)


def _one(tx: dict[str, Any], wallets: dict[TonAddress, str] | None = None) -> TonTransfer:
    [transfer] = _parse({"transactions": [tx]}, wallets)
    return transfer


def _ton_tx() -> dict[str, Any]:
    tx: dict[str, Any] = _comment_payload()["transactions"][1]
    return tx


def _jetton_tx() -> dict[str, Any]:
    tx: dict[str, Any] = _comment_payload()["transactions"][0]
    return tx


def test_every_recorded_transactions_response_parses() -> None:
    names = sorted(p.name for p in FIXTURES.glob("toncenter-v3-transactions-*.json"))
    assert len(names) == 3
    for name in names:
        payload = load(name)
        account = parse(payload["transactions"][0]["account"], network="testnet")
        transfers = parse_transactions(payload, our_address=account, jetton_wallets={})
        assert len(transfers) == len(payload["transactions"])
        assert (FIXTURES / f"{name}.source.txt").exists()


def test_comment_fixture_yields_the_ton_payment_and_the_jetton_payment() -> None:
    ton, jetton = _parse(_comment_payload())  # the response is newest first; we sort by lt
    assert ton == TonTransfer(
        account=OURS, lt=22161219000001, hash=TON_TX_HASH, now=1717046274, mc_block_seqno=19702476,
        kind="ton", source=PAYER, value=1_000_000_000, comment="1985597651", asset="TON",
        amount=1_000_000_000)
    assert jetton == TonTransfer(
        account=OURS, lt=22164816000001, hash=JETTON_TX_HASH, now=1717058024, mc_block_seqno=19705707,
        kind="jetton", source=OUR_JETTON_WALLET, value=1, comment="1985597651", asset="USDT_TON",
        amount=111_000_000_000, jetton_sender=PAYER, query_id=6083770386841379547)
    assert ton.observed(1) == ObservedTransfer(
        chain=Chain.TON, tx_id=TON_TX_HASH, index=0, asset="TON", amount=1_000_000_000,
        destination="0:169c9367c01c8b4e1471962db32e99e3e4473aafb47e1a6a643a4177a6758f16",
        memo="1985597651", block=19702476, confirmations=1, sender=PAYER.raw)
    assert jetton.observed(1) == ObservedTransfer(
        chain=Chain.TON, tx_id=JETTON_TX_HASH, index=0, asset="USDT_TON", amount=111_000_000_000,
        destination=OURS.raw, memo="1985597651", block=19705707, confirmations=1, sender=PAYER.raw)


def test_the_aborted_transfer_to_an_undeployed_account_still_counts() -> None:
    tx = _ton_tx()
    assert tx["description"]["aborted"] is True
    assert _one(tx).kind == "ton"


def test_notification_from_a_wallet_that_is_not_ours_is_counterfeit() -> None:
    _, jetton = _parse(_comment_payload(), wallets={})
    assert jetton.kind == "counterfeit_jetton"
    assert not jetton.credited
    assert (jetton.asset, jetton.amount, jetton.comment) == (None, 111_000_000_000, "1985597651")
    assert "not one of our jetton wallets" in (jetton.reason or "")
    with pytest.raises(ValueError, match="counterfeit_jetton"):
        jetton.observed(1)


def test_counterfeit_built_notification_sent_to_us() -> None:
    tx = _jetton_tx()
    tx["in_msg"]["source"] = STRANGER.raw.upper()
    tx["in_msg"]["message_content"]["body"] = cell_to_boc(
        build_notification(1, 5_000_000_000, PAYER, "inv_ABC", inline=True))
    transfer = _one(tx)
    assert (transfer.kind, transfer.amount) == ("counterfeit_jetton", 5_000_000_000)
    assert (transfer.comment, transfer.jetton_sender) == ("inv_ABC", PAYER)
    assert _one(tx, wallets={STRANGER: USDT_TON.code}).kind == "jetton"


def test_opcode_field_alone_still_marks_a_notification() -> None:
    tx = _jetton_tx()
    tx["in_msg"]["message_content"]["body"] = None
    assert _one(tx, wallets={}).kind == "counterfeit_jetton"
    ours = _one(tx)
    assert (ours.kind, ours.reason) == ("ignored", "the notification has no readable body")


def test_malformed_notification_from_our_wallet_is_ignored_with_the_reason() -> None:
    tx = _jetton_tx()
    op_only = Builder().store_uint(OP_TRANSFER_NOTIFICATION, 32).end_cell()
    tx["in_msg"]["message_content"]["body"] = cell_to_boc(op_only)
    transfer = _one(tx)
    assert transfer.kind == "ignored"
    assert "malformed transfer_notification" in (transfer.reason or "")
    assert _one(tx, wallets={}).kind == "counterfeit_jetton"


def test_other_messages_from_our_jetton_wallet_are_not_payments() -> None:
    tx = _jetton_tx()
    tx["in_msg"]["message_content"]["body"] = cell_to_boc(build_comment("excesses?"))
    transfer = _one(tx)
    assert transfer.kind == "ignored" and not transfer.credited


def test_bounced_message_is_never_a_payment() -> None:
    tx = _ton_tx()
    tx["in_msg"]["bounced"] = True
    transfer = _one(tx)
    assert (transfer.kind, transfer.credited) == ("bounced", False)
    with pytest.raises(ValueError, match="bounced"):
        transfer.observed(1)


def test_aborted_and_sent_back_is_refused() -> None:
    tx = _ton_tx()
    tx["in_msg"]["bounce"] = True
    tx["out_msgs"] = [{"source": tx["account"], "destination": tx["in_msg"]["source"],
                       "value": "999000000", "bounced": True}]
    transfer = _one(tx)
    assert transfer.kind == "ignored"
    assert "sent the value back" in (transfer.reason or "")
    tx["description"]["aborted"] = False
    assert _one(tx).kind == "ton"


def test_comment_comes_from_the_body_first() -> None:
    tx = _ton_tx()
    tx["in_msg"]["message_content"]["decoded"] = None
    assert _one(tx).comment == "1985597651"
    tx["in_msg"]["message_content"]["decoded"] = {"type": "text_comment", "comment": "stale"}
    assert _one(tx).comment == "1985597651"
    tx["in_msg"]["message_content"]["body"] = None
    assert _one(tx).comment == "stale"
    tx["in_msg"]["message_content"] = None
    assert _one(tx).comment is None


def test_undecodable_body_only_loses_the_comment() -> None:
    tx = _ton_tx()
    tx["in_msg"]["message_content"]["body"] = "AAAA"
    transfer = _one(tx)
    assert (transfer.kind, transfer.amount, transfer.comment) == ("ton", 1_000_000_000, "1985597651")


def test_outgoing_transactions_are_recorded_but_not_payments() -> None:
    for name in ("toncenter-v3-transactions-outgoing-comment-testnet.json",
                 "toncenter-v3-transactions-jetton-transfer-outgoing-testnet.json"):
        payload = load(name)
        account = parse(payload["transactions"][0]["account"], network="testnet")
        [transfer] = parse_transactions(payload, our_address=account, jetton_wallets={})
        assert transfer.kind == "ignored" and transfer.source is None
        assert "external message" in (transfer.reason or "")
        assert cursor_after([transfer]) == (int(payload["transactions"][0]["lt"]),
                                            payload["transactions"][0]["hash"])


def test_transactions_of_other_accounts_and_messages_to_other_addresses_are_ignored() -> None:
    payload = _comment_payload()
    theirs = parse_transactions(payload, our_address=STRANGER, jetton_wallets={})
    assert {t.kind for t in theirs} == {"ignored"}
    tx = _ton_tx()
    tx["in_msg"]["destination"] = STRANGER.raw
    assert _one(tx).kind == "ignored"


def test_no_incoming_message() -> None:
    tx = _ton_tx()
    tx["in_msg"] = None
    assert _one(tx).reason == "no incoming message"


def test_cursor_and_overlapping_pages() -> None:
    transfers = _parse(_comment_payload())
    assert [t.lt for t in transfers] == sorted(t.lt for t in transfers)
    cursor = cursor_after(transfers)
    assert cursor == (22164816000001, JETTON_TX_HASH)
    assert cursor_after([]) is None
    assert [t.hash for t in newer_than(transfers, (22161219000001, TON_TX_HASH))] == [JETTON_TX_HASH]
    assert newer_than(transfers, cursor) == []
    assert newer_than(transfers, None) == transfers
    doubled = _comment_payload()
    doubled["transactions"] += copy.deepcopy(doubled["transactions"])
    assert _parse(doubled) == transfers


def test_masterchain_info() -> None:
    assert parse_masterchain_info(load("toncenter-v3-masterchainInfo-testnet.json")) == 21082664
    with pytest.raises(PayloadError, match=r"response\.last is missing"):
        parse_masterchain_info({"first": {}})


def test_jetton_transfers_are_hints_for_discovery() -> None:
    usdt = parse_jetton_transfers(load("toncenter-v3-jetton-transfers-usdt.json"))
    assert [(h.amount, h.query_id, h.forward_ton_amount) for h in usdt] == [
        (17_000_000, 2632245, 1), (10_000_000, 2632140, 1)]
    assert {h.jetton_master.raw for h in usdt} == {USDT_TON.contract}
    assert {h.destination for h in usdt} == {OURS}
    [testnet] = parse_jetton_transfers(load("toncenter-v3-jetton-transfers-testnet.json"))
    # The sender put "hii" in custom_payload, not forward_payload: no comment reaches us.
    assert (testnet.comment, testnet.forward_ton_amount, testnet.amount) == (None, None, 22_000_000)


def test_a_different_response_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match=r"response\.transactions is missing"):
        _parse(load("toncenter-v3-blocks-testnet.json"))
    with pytest.raises(PayloadError, match="jetton_transfers is missing"):
        parse_jetton_transfers(_comment_payload())


@pytest.mark.parametrize(("change", "message"), [
    (lambda tx: tx.pop("lt"), r"transactions\[0\].lt is missing"),
    (lambda tx: tx.update(lt="12x"), r"transactions\[0\].lt is not an integer"),
    (lambda tx: tx.update(lt=True), r"transactions\[0\].lt is not an integer"),
    (lambda tx: tx.update(hash=""), r"transactions\[0\].hash is not a non-empty string"),
    (lambda tx: tx.update(account="0:1234"), r"transactions\[0\].account: '0:1234' has 4 hex digits"),
    (lambda tx: tx["in_msg"].update(value=None), r"transactions\[0\].in_msg.value is not an integer"),
    (lambda tx: tx.update(in_msg=[]), r"transactions\[0\].in_msg is not an object"),
])
def test_malformed_transactions_raise_payload_errors(change: Any, message: str) -> None:
    tx = _ton_tx()
    change(tx)
    with pytest.raises(PayloadError, match=message):
        _one(tx)


def test_pending_transaction_without_masterchain_block() -> None:
    tx = _ton_tx()
    tx["mc_block_seqno"] = None
    transfer = _one(tx)
    assert transfer.mc_block_seqno is None and transfer.observed(0).block is None
