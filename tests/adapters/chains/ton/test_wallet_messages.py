"""The messages the checkout asks a TON Connect wallet to send, read back the way the chain
and Krypton's watcher read them: a jetton transfer's forward payload reaches us verbatim in
the transfer_notification, where parse_notification must find the memo."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import parse
from krypton.adapters.chains.ton.cells import cell_from_boc, cell_to_boc, store_address
from krypton.adapters.chains.ton.comments import text_comment
from krypton.adapters.chains.ton.jetton import OP_TRANSFER_NOTIFICATION, parse_notification
from krypton.adapters.chains.ton.wallet_messages import (
    comment_body,
    jetton_transfer,
    parse_jetton_transfer,
)

OURS = parse("0:" + "d3" * 32, network="mainnet")
PAYER = parse("0:" + "a1" * 32, network="mainnet")


def _notification_from(transfer_boc: str) -> bytes:
    """What our jetton wallet sends us after the payer's transfer (TEP-74): the amount, the
    sender (the payer's wallet owner) and the forward payload exactly as it came."""
    transfer = parse_jetton_transfer(cell_from_boc(transfer_boc))
    assert transfer is not None and transfer.forward_payload is not None
    builder = Builder().store_uint(OP_TRANSFER_NOTIFICATION, 32).store_uint(transfer.query_id, 64)
    builder.store_coins(transfer.amount)
    store_address(builder, PAYER)
    builder.store_bit(1).store_ref(transfer.forward_payload)
    return builder.end_cell().to_boc()


def test_a_jetton_transfer_reaches_the_watcher_with_the_memo() -> None:
    boc = cell_to_boc(jetton_transfer(9_990_000, OURS, PAYER, "KR-ABCD2345"))
    transfer = parse_jetton_transfer(cell_from_boc(boc))
    assert transfer is not None
    assert (transfer.amount, transfer.destination, transfer.response_destination) == (9_990_000, OURS, PAYER)
    assert transfer.forward_ton_amount > 0  # or the jetton wallet sends no notification at all
    assert transfer.comment == "KR-ABCD2345"
    notification = parse_notification(Cell.one_from_boc(_notification_from(boc)))
    assert notification is not None and notification.comment == "KR-ABCD2345"
    assert notification.amount == 9_990_000


@given(st.text(min_size=1, max_size=300).filter(lambda t: "\x00" not in t))
def test_any_comment_survives_the_trip(text: str) -> None:
    boc = cell_to_boc(jetton_transfer(1, OURS, PAYER, text))
    transfer = parse_jetton_transfer(cell_from_boc(boc))
    assert transfer is not None and transfer.comment == text
    assert text_comment(comment_body(text)) == text


def test_a_transfer_without_a_forward_amount_or_jettons_is_refused() -> None:
    with pytest.raises(ValueError, match="notification"):
        jetton_transfer(1, OURS, PAYER, "KR-X", forward_ton_amount=0)
    with pytest.raises(ValueError, match="positive"):
        jetton_transfer(0, OURS, PAYER, "KR-X")


def test_another_op_is_not_a_transfer() -> None:
    assert parse_jetton_transfer(comment_body("hello")) is None
