"""TEP-74 ``transfer_notification``: what our jetton wallet tells us when jettons arrive.

    transfer_notification#7362d09c query_id:uint64 amount:(VarUInteger 16)
        sender:MsgAddress forward_payload:(Either Cell ^Cell) = InternalMsgBody;

`parse_notification` returns None when the body is not a transfer_notification at all
(no body, another op) and raises MalformedNotification when it has the op but not the
layout; the exception keeps the fields read before the fault (the amount, when only the
forward payload is broken), so an unreadable notification can still be shown to an
operator. The comment is the text comment in forward_payload, inline (Either bit 0: the
rest of the cell) or in a reference (bit 1). A body that ends right after `sender`
(no Either bit; some old jetton wallets) is accepted with no comment.

Whether a notification may be credited is not decided here: only one whose message
source is our own jetton wallet counts (see toncenter.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import CellFormatError, Reader, store_address
from krypton.adapters.chains.ton.comments import build_comment, text_comment

OP_TRANSFER_NOTIFICATION = 0x7362D09C
OP_EXCESSES = 0xD53276DB  # excesses#d53276db query_id:uint64: leftover gas coming back
MAX_AMOUNT = (1 << 120) - 1  # VarUInteger 16 holds at most 15 bytes


class MalformedNotification(CellFormatError):
    """A body with the transfer_notification op that does not follow its layout."""

    def __init__(self, message: str, *, query_id: int | None = None, amount: int | None = None,
                 sender: TonAddress | None = None) -> None:
        super().__init__(message)
        self.query_id, self.amount, self.sender = query_id, amount, sender


@dataclass(frozen=True, slots=True)
class JettonNotification:
    query_id: int
    amount: int
    sender: TonAddress | None
    comment: str | None


def body_op(body: Cell | None) -> int | None:
    """The 32-bit op of a message body, or None if it is shorter than 32 bits."""
    if body is None or body.is_exotic:
        return None
    reader = Reader(body)
    return reader.uint(32) if reader.remaining_bits >= 32 else None


def parse_notification(body: Cell | None) -> JettonNotification | None:
    if body_op(body) != OP_TRANSFER_NOTIFICATION:
        return None
    assert body is not None
    reader = Reader(body)
    reader.uint(32)
    query_id: int | None = None
    amount: int | None = None
    sender: TonAddress | None = None
    try:
        query_id = reader.uint(64, "query_id")
        amount = reader.coins("amount")
        sender = reader.address("sender")
        payload = _forward_payload(reader)
    except CellFormatError as exc:
        raise MalformedNotification(f"malformed transfer_notification: {exc}", query_id=query_id,
                                    amount=amount, sender=sender) from None
    assert query_id is not None and amount is not None  # read above, or it raised
    return JettonNotification(query_id, amount, sender, text_comment(payload))


def _forward_payload(reader: Reader) -> Cell | None:
    if reader.remaining_bits == 0 and reader.remaining_refs == 0:
        return None
    if reader.bit("forward_payload"):
        # Anything after the reference is ignored: the jettons arrived all the same.
        return reader.ref("forward_payload")
    return reader.rest()


def build_notification(
    query_id: int,
    amount: int,
    sender: TonAddress | None,
    comment: str | None = None,
    *,
    inline: bool = False,
) -> Cell:
    """A transfer_notification body (for tests and the devnet).

    The comment goes into forward_payload in a reference, or in the same cell with
    inline=True (continuing in references when it does not fit).
    """
    if not 0 <= query_id < 1 << 64:
        raise ValueError("query_id must fit in 64 bits")
    if not 0 <= amount <= MAX_AMOUNT:
        raise ValueError("amount must be a non-negative VarUInteger 16")
    builder = Builder().store_uint(OP_TRANSFER_NOTIFICATION, 32).store_uint(query_id, 64)
    builder.store_coins(amount)
    if sender is None:
        builder.store_uint(0, 2)
    else:
        store_address(builder, sender)
    if comment is None:
        builder.store_bit(0)
    elif inline:
        builder.store_bit(0).store_uint(0, 32).store_snake_bytes(comment.encode("utf-8"))
    else:
        builder.store_bit(1).store_ref(build_comment(comment))
    cell: Cell = builder.end_cell()
    return cell
