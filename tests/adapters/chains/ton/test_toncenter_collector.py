"""The recorded TON Center answers read as a fee collector's transactions, and the
runGetMethod stack entries (num / slice) the collector's get-methods answer with."""

from __future__ import annotations

from typing import Any

import pytest
from pytoniq_core.boc.builder import Builder

from krypton.adapters.chains.ton.cells import cell_to_boc
from krypton.adapters.chains.ton.fee_collector import OP_TOP_UP, top_up_body
from krypton.adapters.chains.ton.toncenter import (
    PayloadError,
    TonTransfer,
    parse_get_method,
    parse_transactions,
    stack_address,
    stack_int,
)
from tests.adapters.chains.ton.recorded import load
from tests.adapters.chains.ton.test_toncenter import OURS


def _ton_tx() -> dict[str, Any]:
    tx: dict[str, Any] = load("toncenter-v3-transactions-comment.json")["transactions"][1]
    return tx


def _as_collector(tx: dict[str, Any]) -> TonTransfer:
    [transfer] = parse_transactions({"transactions": [tx]}, our_address=OURS, jetton_wallets={},
                                    fee_collector=True)
    return transfer


def test_a_processed_comment_payment_counts_at_a_collector() -> None:
    tx = _ton_tx()
    tx["description"]["aborted"] = False
    transfer = _as_collector(tx)
    assert (transfer.kind, transfer.comment) == ("ton", "1985597651")


def test_an_aborted_transaction_forwarded_nothing_so_it_is_not_a_payment() -> None:
    tx = _ton_tx()
    assert tx["description"]["aborted"] is True  # recorded: credited to an undeployed account
    transfer = _as_collector(tx)
    assert transfer.kind == "ignored" and "refused" in (transfer.reason or "")


def test_owner_operations_are_not_payments() -> None:
    tx = _ton_tx()
    tx["description"]["aborted"] = False
    tx["in_msg"]["message_content"]["body"] = cell_to_boc(top_up_body(7))
    tx["in_msg"]["opcode"] = hex(OP_TOP_UP)
    transfer = _as_collector(tx)
    assert transfer.kind == "ignored" and "operation" in (transfer.reason or "")
    tx["in_msg"]["message_content"]["body"] = cell_to_boc(Builder().store_uint(1, 8).end_cell())
    assert _as_collector(tx).kind == "ignored"  # shorter than an op: the contract throws 104
    tx["in_msg"]["message_content"]["body"] = cell_to_boc(Builder().end_cell())
    assert _as_collector(tx).kind == "ton"  # an empty body is a payment without a comment


@pytest.mark.parametrize(("value", "number"), [
    ("0x0", 0), ("0x1a", 26), ("0X1A", 26), ("-0x10", -16), ("12345", 12345), ("-7", -7),
    ("0x" + "f" * 30, (1 << 120) - 1)])
def test_stack_numbers(value: str, number: int) -> None:
    assert stack_int({"type": "num", "value": value}, "test") == number


@pytest.mark.parametrize("entry", [{"type": "num", "value": "0xzz"}, {"type": "num", "value": 5},
                                   {"type": "cell", "value": "0x1"}, {"type": "num"}])
def test_malformed_stack_numbers(entry: dict[str, Any]) -> None:
    with pytest.raises(PayloadError):
        stack_int(entry, "test")


def test_stack_addresses_and_get_method_envelope() -> None:
    cell = Builder().store_uint(0b100, 3).store_int(0, 8).store_bytes(OURS.hash).end_cell()
    assert stack_address({"type": "slice", "value": cell_to_boc(cell)}, "test") == OURS
    with pytest.raises(PayloadError):
        stack_address({"type": "slice", "value": cell_to_boc(Builder().store_uint(0, 2).end_cell())}, "t")
    with pytest.raises(PayloadError):
        stack_address({"type": "num", "value": "0x1"}, "test")
    assert parse_get_method({"gas_used": 1, "exit_code": 0, "stack": []}, "m") == (0, [])
    assert parse_get_method({"exit_code": -13}, "m") == (-13, [])
    for bad in ({"stack": []}, {"exit_code": 0, "stack": "x"}, [], {"exit_code": "x", "stack": []}):
        with pytest.raises(PayloadError):
            parse_get_method(bad, "m")
