"""The message a payer's wallet sends when the checkout pays through TON Connect.

TON itself: to the invoice's address, the exact amount in nanotons, the memo as a text
comment (the same body a wallet app writes for "comment").

USDT on TON (TEP-74): the payer's wallet sends a jetton ``transfer`` to the payer's OWN
jetton wallet (found with the master's ``get_wallet_address``), which moves the jettons to
our jetton wallet; ours then notifies our address with ``transfer_notification`` carrying
``forward_payload`` exactly as written here. So the memo goes into forward_payload as a text
comment, and ``forward_ton_amount`` must be above zero, or no notification is sent and the
watcher never sees the payment.

    transfer#0f8a7ea5 query_id:uint64 amount:(VarUInteger 16) destination:MsgAddress
        response_destination:MsgAddress custom_payload:(Maybe ^Cell)
        forward_ton_amount:(VarUInteger 16) forward_payload:(Either Cell ^Cell) = InternalMsgBody;
"""

from __future__ import annotations

from dataclasses import dataclass

from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import Reader, store_address
from krypton.adapters.chains.ton.comments import build_comment, text_comment
from krypton.adapters.chains.ton.jetton import MAX_AMOUNT

OP_TRANSFER = 0x0F8A7EA5
# TON attached to a jetton transfer: gas for the payer's and our jetton wallets (the unused
# part comes back to the payer as `excesses`), and the 1 nanoton forwarded with the
# notification that tells us of the payment.
JETTON_TRANSFER_TON = 50_000_000  # 0.05 TON
FORWARD_TON = 1


@dataclass(frozen=True, slots=True)
class JettonTransfer:
    query_id: int
    amount: int
    destination: TonAddress | None
    response_destination: TonAddress | None
    forward_ton_amount: int
    forward_payload: Cell | None

    @property
    def comment(self) -> str | None:
        return text_comment(self.forward_payload)


def comment_body(text: str) -> Cell:
    """A text comment body (op 0 + the UTF-8 text), as wallets write it."""
    return build_comment(text)


def jetton_transfer(amount: int, destination: TonAddress, response_destination: TonAddress,
                    comment: str, *, query_id: int = 0, forward_ton_amount: int = FORWARD_TON) -> Cell:
    """A TEP-74 transfer body: `amount` jetton units to `destination`, the leftover TON back to
    `response_destination`, and `comment` forwarded (in a reference) with the notification."""
    if not 0 < amount <= MAX_AMOUNT:
        raise ValueError("amount must be a positive VarUInteger 16")
    if forward_ton_amount <= 0:
        raise ValueError("forward_ton_amount must be above zero, or the notification is not sent")
    builder = Builder().store_uint(OP_TRANSFER, 32).store_uint(query_id, 64).store_coins(amount)
    store_address(builder, destination)
    store_address(builder, response_destination)
    builder.store_bit(0)  # no custom_payload
    builder.store_coins(forward_ton_amount)
    builder.store_bit(1).store_ref(build_comment(comment))
    cell: Cell = builder.end_cell()
    return cell


def parse_jetton_transfer(body: Cell) -> JettonTransfer | None:
    """The transfer's fields, or None for another op (what a jetton wallet reads)."""
    reader = Reader(body)
    if reader.remaining_bits < 32 or reader.uint(32) != OP_TRANSFER:
        return None
    query_id = reader.uint(64, "query_id")
    amount = reader.coins("amount")
    destination = reader.address("destination")
    response = reader.address("response_destination")
    if reader.bit("custom_payload"):
        reader.ref("custom_payload")
    forward_ton = reader.coins("forward_ton_amount")
    payload = (reader.ref("forward_payload") if reader.bit("forward_payload") else reader.rest())
    return JettonTransfer(query_id, amount, destination, response, forward_ton, payload)
