"""Message bodies the TON simulator puts on its messages, laid out as on the real chain.

The receiving side only ever reads our transfer_notification (built with
`jetton.build_notification`, the very layout the parser reads) and text comments; the other
bodies (TEP-74 transfer, internal_transfer, excesses, bounce) are built faithfully anyway so
that a transaction list of a payer or a jetton wallet looks like the real one.

    transfer#0f8a7ea5 query_id:uint64 amount:Coins destination:MsgAddress
        response_destination:MsgAddress custom_payload:(Maybe ^Cell)
        forward_ton_amount:Coins forward_payload:(Either Cell ^Cell)
    internal_transfer#178d4519 query_id:uint64 amount:Coins from:MsgAddress
        response_address:MsgAddress forward_ton_amount:Coins forward_payload:(Either Cell ^Cell)
    excesses#d53276db query_id:uint64
"""

from __future__ import annotations

from typing import Any

from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import store_address
from krypton.adapters.chains.ton.comments import build_comment

OP_TRANSFER = 0x0F8A7EA5
OP_INTERNAL_TRANSFER = 0x178D4519
OP_EXCESSES = 0xD53276DB
OP_BOUNCED = 0xFFFFFFFF
BOUNCED_KEEPS_BITS = 256  # a bounce carries only the first 256 bits of the original body


def empty() -> Cell:
    cell: Cell = Builder().end_cell()
    return cell


def comment(text: str | None) -> Cell:
    """A text comment body, or the empty body when there is no comment."""
    return empty() if text is None else build_comment(text)


def external_stub(seqno: int) -> Cell:
    """Stands in for a wallet's signed external message: the devnet checks no signatures, and
    the receiving side only needs to see that the message is external (source null)."""
    cell: Cell = Builder().store_uint(seqno, 32).end_cell()
    return cell


def jetton_transfer(query_id: int, amount: int, destination: TonAddress, response: TonAddress,
                    forward_ton_amount: int, payload: Cell | None) -> Cell:
    builder = Builder().store_uint(OP_TRANSFER, 32).store_uint(query_id, 64).store_coins(amount)
    store_address(builder, destination)
    store_address(builder, response)
    builder.store_bit(0)  # no custom_payload
    builder.store_coins(forward_ton_amount)
    return _forward_payload(builder, payload)


def internal_transfer(query_id: int, amount: int, sender: TonAddress, response: TonAddress,
                      forward_ton_amount: int, payload: Cell | None) -> Cell:
    builder = Builder().store_uint(OP_INTERNAL_TRANSFER, 32).store_uint(query_id, 64).store_coins(amount)
    store_address(builder, sender)
    store_address(builder, response)
    builder.store_coins(forward_ton_amount)
    return _forward_payload(builder, payload)


def excesses(query_id: int) -> Cell:
    cell: Cell = Builder().store_uint(OP_EXCESSES, 32).store_uint(query_id, 64).end_cell()
    return cell


def bounced(original: Cell) -> Cell:
    """0xffffffff followed by the first 256 bits of the refused body (its references are lost)."""
    untyped: Any = original  # pytoniq-core's cell methods carry no annotations
    keep = min(BOUNCED_KEEPS_BITS, len(untyped.bits))
    bits = untyped.begin_parse().load_bits(keep)
    cell: Cell = Builder().store_uint(OP_BOUNCED, 32).store_bits(bits).end_cell()
    return cell


def forward_payload(text: str | None) -> Cell | None:
    return None if text is None else build_comment(text)


def opcode(body: Cell) -> int | None:
    """The 32-bit op of a body, None when the body is shorter (an empty body has no op)."""
    untyped: Any = body
    if len(untyped.bits) < 32:
        return None
    return int(untyped.begin_parse().preload_uint(32))


def _forward_payload(builder: Builder, payload: Cell | None) -> Cell:
    # Either Cell ^Cell: bit 1 and a reference, as wallets send a comment.
    if payload is None:
        builder.store_bit(0)
    else:
        builder.store_bit(1).store_ref(payload)
    cell: Cell = builder.end_cell()
    return cell
