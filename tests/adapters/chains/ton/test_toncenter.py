"""TON Center v3 responses: the recorded ones, and variations of them for every rule."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pytoniq_core.boc.builder import Builder

from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.cells import cell_to_boc, store_address
from krypton.adapters.chains.ton.comments import build_comment
from krypton.adapters.chains.ton.hashes import canonical
from krypton.adapters.chains.ton.jetton import OP_EXCESSES, OP_TRANSFER_NOTIFICATION, build_notification
from krypton.adapters.chains.ton.toncenter import (
    Ignored,
    PayloadError,
    TonTransfer,
    cursor_after,
    newer_than,
    parse_jetton_transfers,
    parse_masterchain_info,
    parse_transactions,
)
from krypton.domain.assets import USDT_TON, Chain
from krypton.domain.finality import Finality
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
        memo="1985597651", block=19702476, confirmations=1, sender=PAYER.raw,
        block_time=datetime(2024, 5, 30, 5, 17, 54, tzinfo=UTC))  # "now": 1717046274
    assert jetton.observed(1) == ObservedTransfer(
        chain=Chain.TON, tx_id=JETTON_TX_HASH, index=0, asset="USDT_TON", amount=111_000_000_000,
        destination=OURS.raw, memo="1985597651", block=19705707, confirmations=1, sender=PAYER.raw,
        block_time=datetime.fromtimestamp(1717058024, UTC))


def test_the_aborted_transfer_to_an_undeployed_account_still_counts() -> None:
    tx = _ton_tx()
    assert tx["description"]["aborted"] is True
    assert _one(tx).kind == "ton"


def test_notification_from_a_wallet_that_is_not_ours_is_foreign() -> None:
    _, jetton = _parse(_comment_payload(), wallets={})
    assert jetton.kind == "foreign_jetton"
    assert not jetton.credited
    assert (jetton.asset, jetton.amount, jetton.comment) == (None, 111_000_000_000, "1985597651")
    assert "not one of our jetton wallets" in (jetton.reason or "")
    with pytest.raises(ValueError, match="foreign_jetton"):
        jetton.observed(1)
    kept = jetton.unmatched("COUNTERFEIT", Finality(1, True))
    assert (kept.asset, kept.amount, kept.sender) == ("COUNTERFEIT", 111_000_000_000, OUR_JETTON_WALLET.raw)


def test_counterfeit_built_notification_sent_to_us() -> None:
    tx = _jetton_tx()
    tx["in_msg"]["source"] = STRANGER.raw.upper()
    tx["in_msg"]["message_content"]["body"] = cell_to_boc(
        build_notification(1, 5_000_000_000, PAYER, "inv_ABC", inline=True))
    transfer = _one(tx)
    assert (transfer.kind, transfer.amount) == ("foreign_jetton", 5_000_000_000)
    assert (transfer.comment, transfer.jetton_sender) == ("inv_ABC", PAYER)
    assert _one(tx, wallets={STRANGER: USDT_TON.code}).kind == "jetton"


def test_opcode_field_alone_still_marks_a_notification() -> None:
    tx = _jetton_tx()
    tx["in_msg"]["message_content"]["body"] = None
    assert _one(tx, wallets={}).kind == "foreign_jetton"
    ours = _one(tx)
    assert (ours.kind, ours.reason) == ("unreadable_jetton", "the notification has no readable body")


def _notification_head() -> Builder:
    builder = Builder().store_uint(OP_TRANSFER_NOTIFICATION, 32).store_uint(7, 64).store_coins(25_000_000)
    return store_address(builder, PAYER)


@pytest.mark.parametrize(("body", "amount", "problem"), [
    (None, 0, "no readable body"),  # no body at all, only the opcode field
    ("AAAA", 0, "no readable body"),  # not a bag of cells
    (cell_to_boc(Builder().store_uint(OP_TRANSFER_NOTIFICATION, 32).end_cell()), 0, "query_id"),
    (cell_to_boc(Builder().store_uint(OP_TRANSFER_NOTIFICATION, 32).store_uint(7, 64)
                 .store_uint(4, 4).store_uint(1, 8).end_cell()), 0, "amount"),  # truncated
    (cell_to_boc(_notification_head().store_bit(1).end_cell()), 25_000_000, "forward_payload"),
])
def test_unreadable_notification_from_our_wallet_is_kept_unmatched(
        body: str | None, amount: int, problem: str) -> None:
    """Our own wallet says jettons arrived: whatever its body, it is never dropped."""
    tx = _jetton_tx()
    tx["in_msg"]["message_content"]["body"] = body
    transfer = _one(tx)
    assert (transfer.kind, transfer.asset, transfer.amount) == ("unreadable_jetton", "USDT_TON", amount)
    assert problem in (transfer.reason or "") and transfer.ignored is None
    kept = transfer.unmatched("USDT_TON", Finality(1, True))
    assert (kept.tx_id, kept.amount, kept.memo) == (JETTON_TX_HASH, amount, None)
    with pytest.raises(ValueError, match="unreadable_jetton"):
        transfer.observed(1)
    assert _one(tx, wallets={}).kind == "foreign_jetton"


def test_a_notification_without_forward_payload_is_a_payment_without_comment() -> None:
    tx = _jetton_tx()
    tx["in_msg"]["message_content"]["body"] = cell_to_boc(_notification_head().end_cell())
    transfer = _one(tx)
    assert (transfer.kind, transfer.amount, transfer.comment) == ("jetton", 25_000_000, None)


def test_other_messages_from_our_jetton_wallet_are_not_payments() -> None:
    tx = _jetton_tx()
    tx["in_msg"]["message_content"]["body"] = cell_to_boc(build_comment("excesses?"))
    transfer = _one(tx)
    assert (transfer.kind, transfer.ignored) == ("ignored", Ignored.JETTON_WALLET_MESSAGE)
    assert not transfer.credited


def test_bounced_message_is_never_a_payment() -> None:
    tx = _ton_tx()
    tx["in_msg"]["bounced"] = True
    transfer = _one(tx)
    assert (transfer.kind, transfer.ignored, transfer.credited) == ("ignored", Ignored.BOUNCE, False)
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


# -- every class of message gets its outcome --------------------------------------------------

Change = Callable[[dict[str, Any]], None]


def _body(cell: Any) -> Change:
    return lambda tx: tx["in_msg"]["message_content"].update(body=cell_to_boc(cell))


def _aborted_and_sent_back(tx: dict[str, Any]) -> None:
    tx["out_msgs"] = [{"destination": tx["in_msg"]["source"], "bounced": True}]


def _all(*changes: Change) -> Change:
    def change(tx: dict[str, Any]) -> None:
        for c in changes:
            c(tx)
    return change


EXCESSES = Builder().store_uint(OP_EXCESSES, 32).store_uint(3, 64).end_cell()
OUTCOMES: list[tuple[str, Change, bool, str, Ignored | None]] = [
    # (base transaction, change, fee collector?, kind, ignore reason)
    ("ton", lambda tx: None, False, "ton", None),
    ("jetton", lambda tx: None, False, "jetton", None),
    ("jetton", _body(Builder().store_uint(OP_TRANSFER_NOTIFICATION, 32).end_cell()), False,
     "unreadable_jetton", None),
    ("jetton", lambda tx: tx["in_msg"].update(source=STRANGER.raw), False, "foreign_jetton", None),
    ("ton", lambda tx: tx.update(account=STRANGER.raw), False, "ignored", Ignored.OTHER_ACCOUNT),
    ("ton", lambda tx: tx.update(in_msg=None), False, "ignored", Ignored.NO_INCOMING_MESSAGE),
    ("ton", lambda tx: tx["in_msg"].update(source=None), False, "ignored", Ignored.EXTERNAL),
    ("ton", lambda tx: tx["in_msg"].update(destination=STRANGER.raw), False, "ignored",
     Ignored.OTHER_DESTINATION),
    ("ton", lambda tx: tx["in_msg"].update(bounced=True), False, "ignored", Ignored.BOUNCE),
    ("ton", _aborted_and_sent_back, False, "ignored", Ignored.REFUSED),
    ("ton", _body(EXCESSES), False, "ignored", Ignored.EXCESS_REFUND),  # from anyone
    ("jetton", _body(EXCESSES), False, "ignored", Ignored.EXCESS_REFUND),  # from our jetton wallet
    ("ton", lambda tx: tx["in_msg"].update(value="0"), False, "ignored", Ignored.ZERO_VALUE),
    ("jetton", _body(build_comment("hello")), False, "ignored", Ignored.JETTON_WALLET_MESSAGE),
    ("ton", lambda tx: None, True, "ignored", Ignored.COLLECTOR_REFUSED),  # the fixture aborted
    ("ton", _all(lambda tx: tx["description"].update(aborted=False), _body(EXCESSES)), True,
     "ignored", Ignored.COLLECTOR_OPERATION),
    ("ton", lambda tx: tx["description"].update(aborted=False), True, "ton", None),
]


@pytest.mark.parametrize(("base", "change", "collector", "kind", "ignored"), OUTCOMES)
def test_each_class_of_message_gets_its_outcome(base: str, change: Change, collector: bool, kind: str,
                                                ignored: Ignored | None) -> None:
    tx = _ton_tx() if base == "ton" else _jetton_tx()
    change(tx)
    [transfer] = parse_transactions({"transactions": [tx]}, our_address=OURS, jetton_wallets=WALLETS,
                                    fee_collector=collector)
    assert (transfer.kind, transfer.ignored) == (kind, ignored)
    assert kind != "ignored" or transfer.reason  # an ignored message says why in words


def test_every_ignore_reason_has_a_case_and_a_meaning() -> None:
    from krypton.adapters.chains.ton.toncenter import IGNORED_MEANING
    assert {case[4] for case in OUTCOMES} - {None} == set(Ignored) == set(IGNORED_MEANING)


# -- transaction hashes -----------------------------------------------------------------------


def test_hashes_in_every_form_become_the_form_toncenter_answers() -> None:
    for name in sorted(p.name for p in FIXTURES.glob("toncenter-v3-transactions-*.json")):
        for tx in load(name)["transactions"]:
            raw = base64.b64decode(tx["hash"])
            url = base64.urlsafe_b64encode(raw).decode()
            forms = (tx["hash"], raw.hex(), raw.hex().upper(), "0x" + raw.hex(), url, url.rstrip("="))
            assert {canonical(form) for form in forms} == {tx["hash"]}


def test_a_hash_given_in_hex_or_base64url_is_the_same_key_and_cursor() -> None:
    reference = _ton_tx()
    raw = base64.b64decode(TON_TX_HASH)
    for form in (raw.hex(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        tx = _ton_tx()
        tx["hash"] = form
        transfer = _one(tx)
        assert transfer.hash == TON_TX_HASH == transfer.observed(1).tx_id
        assert transfer.cursor == _one(reference).cursor


def test_tonapi_event_ids_in_hex_normalise_to_base64() -> None:
    """TonAPI writes hashes in hex (tonapi-v2-account-events-ton-transfer-comment.json)."""
    [event] = load("tonapi-v2-account-events-ton-transfer-comment.json")["events"]
    key = canonical(event["event_id"])
    assert base64.b64decode(key).hex() == event["event_id"] and len(key) == 44 and key.endswith("=")


@pytest.mark.parametrize("bad", ["abc", "0x" + "g" * 64, "A" * 42 + "==", "A" * 43 + "B=", "A" * 45,
                                 base64.b64encode(bytes(31)).decode()])
def test_a_malformed_hash_is_a_payload_error(bad: str) -> None:
    tx = _ton_tx()
    tx["hash"] = bad
    with pytest.raises(PayloadError, match=r"transactions\[0\].hash"):
        _one(tx)
