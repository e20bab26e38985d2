"""transfer_notification bodies: the recorded one, round trips, and malformed bodies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.cells import cell_from_boc
from krypton.adapters.chains.ton.comments import build_comment
from krypton.adapters.chains.ton.jetton import (
    MAX_AMOUNT,
    OP_TRANSFER_NOTIFICATION,
    JettonNotification,
    MalformedNotification,
    body_op,
    build_notification,
    parse_notification,
)
from tests.adapters.chains.ton.recorded import load

PAYER = parse("0:E1CB4616EDBDD7F663F295CF611FC82917839CD2A3775CBC2194DF43BAF6601A", network="mainnet")


def test_recorded_notification() -> None:
    tx = load("toncenter-v3-transactions-comment.json")["transactions"][0]
    body = cell_from_boc(tx["in_msg"]["message_content"]["body"])
    assert tx["in_msg"]["message_content"]["decoded"] is None
    assert body_op(body) == OP_TRANSFER_NOTIFICATION
    assert parse_notification(body) == JettonNotification(
        query_id=6083770386841379547, amount=111_000_000_000, sender=PAYER, comment="1985597651")


def test_builder_matches_the_recorded_layout() -> None:
    tx = load("toncenter-v3-transactions-comment.json")["transactions"][0]
    recorded = cell_from_boc(tx["in_msg"]["message_content"]["body"])
    built = build_notification(6083770386841379547, 111_000_000_000, PAYER, "1985597651")
    assert built.hash == recorded.hash


@pytest.mark.parametrize("inline", [False, True])
@pytest.mark.parametrize("comment", [None, "", "inv_7Q2", "Оплата 💎 " * 30])
@pytest.mark.parametrize("sender", [PAYER, None, TonAddress(-1, b"\x33" * 32)])
def test_round_trip(sender: TonAddress | None, comment: str | None, inline: bool) -> None:
    body = build_notification(42, 1_500_000, sender, comment, inline=inline)
    assert parse_notification(body) == JettonNotification(42, 1_500_000, sender, comment)


@given(
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=0, max_value=MAX_AMOUNT),
    st.one_of(st.none(), st.text(max_size=200)),
    st.booleans(),
)
def test_round_trip_property(query_id: int, amount: int, comment: str | None, inline: bool) -> None:
    body = build_notification(query_id, amount, PAYER, comment, inline=inline)
    assert parse_notification(body) == JettonNotification(query_id, amount, PAYER, comment)


def test_forward_payload_that_is_not_a_text_comment_has_no_comment() -> None:
    encrypted = Builder().store_uint(0x2167DA4B, 32).store_bytes(b"secret").end_cell()
    body = _head().store_bit(1).store_ref(encrypted).end_cell()
    assert parse_notification(body) == JettonNotification(7, 1000, PAYER, None)


def test_missing_either_bit_is_accepted_without_comment() -> None:
    assert parse_notification(_head().end_cell()) == JettonNotification(7, 1000, PAYER, None)


def test_data_after_a_referenced_payload_is_ignored() -> None:
    body = _head().store_bit(1).store_ref(build_comment("memo")).store_uint(5, 7).end_cell()
    assert parse_notification(body) == JettonNotification(7, 1000, PAYER, "memo")


def _head(op: int = OP_TRANSFER_NOTIFICATION) -> Builder:
    builder: Builder = (Builder().store_uint(op, 32).store_uint(7, 64).store_coins(1000)
                        .store_uint(0b100, 3).store_int(PAYER.workchain, 8).store_bytes(PAYER.hash))
    return builder


def _cell(builder: Builder) -> Cell:
    cell: Cell = builder.end_cell()
    return cell


OP = OP_TRANSFER_NOTIFICATION
MALFORMED = {
    "op only": _cell(Builder().store_uint(OP, 32)),
    "short query_id": _cell(Builder().store_uint(OP, 32).store_uint(1, 40)),
    "amount longer than the cell": _cell(Builder().store_uint(OP, 32).store_uint(1, 64).store_uint(15, 4)
                                         .store_uint(1, 16)),
    "no sender": _cell(Builder().store_uint(OP, 32).store_uint(1, 64).store_coins(5)),
    "external sender": _cell(Builder().store_uint(OP, 32).store_uint(1, 64).store_coins(5)
                             .store_uint(0b01, 2).store_uint(8, 9).store_uint(255, 8).store_bit(0)),
    "anycast sender": _cell(Builder().store_uint(OP, 32).store_uint(1, 64).store_coins(5)
                            .store_uint(0b101, 3).store_uint(1, 5).store_uint(1, 1)
                            .store_int(0, 8).store_bytes(b"\1" * 32).store_bit(0)),
    "sender in workchain 5": _cell(Builder().store_uint(OP, 32).store_uint(1, 64).store_coins(5)
                                   .store_uint(0b100, 3).store_int(5, 8).store_bytes(b"\1" * 32)
                                   .store_bit(0)),
    "truncated sender": _cell(Builder().store_uint(OP, 32).store_uint(1, 64).store_coins(5)
                              .store_uint(0b100, 3).store_int(0, 8).store_bytes(b"\1" * 20)),
    "payload in a reference that is missing": _cell(_head().store_bit(1)),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_notification_raises(body: Cell) -> None:
    with pytest.raises(MalformedNotification, match="malformed transfer_notification"):
        parse_notification(body)


NOT_NOTIFICATIONS = {
    "no body": None,
    "empty body": _cell(Builder()),
    "text comment": build_comment("hello"),
    "jetton transfer op": _cell(_head(0x0F8A7EA5)),
    "shorter than an op": _cell(Builder().store_uint(0x7362, 16)),
}


@pytest.mark.parametrize("body", NOT_NOTIFICATIONS.values(), ids=NOT_NOTIFICATIONS.keys())
def test_other_bodies_are_not_notifications(body: Cell | None) -> None:
    assert parse_notification(body) is None


@pytest.mark.parametrize(("query_id", "amount"), [(-1, 1), (2**64, 1), (0, -1), (0, MAX_AMOUNT + 1)])
def test_builder_rejects_values_that_do_not_fit(query_id: int, amount: int) -> None:
    with pytest.raises(ValueError):
        build_notification(query_id, amount, PAYER)
