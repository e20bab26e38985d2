"""Wallet contracts v4r2 and v5r1 on the TON simulator: what their recv_external checks.

Read from the contracts' published sources (wallet-contract v4r2's wallet-v4-code.fc and
wallet-contract-v5's wallet_v5.fc), and written here on its own, not with the signer's
builder, so that a layout mistake on either side shows up as a refused message:

- v4r2: signature:bits512 subwallet_id:uint32 valid_until:uint32 seqno:uint32 op:uint8, then
  (mode:uint8 ^message) pairs. Checks in the contract's order: valid_until > now (36), seqno
  (33), subwallet_id (34), signature over the hash of everything after the signature (35).
- v5r1: op 0x7369676e wallet_id valid_until seqno (Maybe ^OutList) (Maybe …) and the 512-bit
  signature LAST, over the hash of everything before it. Checks: signature (135), seqno (133),
  wallet_id (134), valid_until > now (136); every send from an external must carry mode +2
  (ignore errors) (137).

A refused external is not accepted by the contract: no transaction, no fee, nothing changes
(the wallet's seqno stays), and the sender hears of it only through sendBoc's error. An
accepted one increments the seqno first and then runs the action phase: a message whose value
the balance cannot cover is skipped under mode +2, and otherwise fails the whole action phase
(result code 37, nothing sent) while the seqno stays spent, as on the chain.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import CellFormatError, Reader

V4R2_CODE_HASH = bytes.fromhex("feb5ff6820e2ff0d9483e7e0d62c817d846789fb4ae580c878866d959dabd5c0")
V5R1_CODE_HASH = bytes.fromhex("20834b7b72b112147e1b2fb457b84e74d1a30f04f737d4f62a668e9552d2b72f")
V5_SIGNED_EXTERNAL = 0x7369676E
ACTION_SEND_MSG = 0x0EC3C86D
MAX_V5_ACTIONS = 255
RESULT_NOT_ENOUGH_FUNDS = 37
IGNORE_ERRORS = 2
ALL_BALANCE = 128


class WalletRefused(Exception):
    """The contract did not accept the external (no transaction); exit_code as the contract throws."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


@dataclass(frozen=True, slots=True)
class WalletState:
    version: str  # "v4r2" | "v5r1"
    public_key: bytes
    wallet_id: int
    seqno: int = 0


@dataclass(frozen=True, slots=True)
class Send:
    """One message of the action list (src and lt are filled in by the chain)."""

    mode: int
    destination: TonAddress
    value: int
    bounce: bool
    body: Cell


@dataclass(frozen=True, slots=True)
class Accepted:
    state: WalletState  # with the seqno incremented
    sends: tuple[Send, ...]


@dataclass(frozen=True, slots=True)
class External:
    destination: TonAddress
    init: Cell | None
    body: Cell
    hash: str  # standard base64 of the message cell's hash: what TON Center indexes it under


def parse_external(message: Cell) -> External:
    """ext_in_msg_info$10 src:MsgAddressExt dest:MsgAddressInt import_fee:Grams, then
    init:(Maybe (Either StateInit ^StateInit)) body:(Either X ^X)."""
    try:
        reader = Reader(message)
        if reader.uint(2, "tag") != 0b10:
            raise WalletRefused(0, "not an external message (ext_in_msg_info$10)")
        if reader.uint(2, "src") != 0:
            raise WalletRefused(0, "an external's src must be addr_none")
        destination = reader.address("dest")
        if destination is None:
            raise WalletRefused(0, "the external has no destination")
        reader.coins("import_fee")
        init = None
        if reader.bit("init"):
            if not reader.bit("init in a reference"):
                raise WalletRefused(0, "put the StateInit in a reference")
            init = reader.ref("init")
        body = reader.ref("body") if reader.bit("body") else reader.rest()
    except CellFormatError as exc:
        raise WalletRefused(0, f"the message is not an external message: {exc}") from None
    untyped: Any = message
    return External(destination, init, body, base64.b64encode(untyped.hash).decode("ascii"))


def from_state_init(init: Cell) -> WalletState:
    """A wallet deployed by an external's StateInit: known code, data at seqno 0."""
    reader = Reader(init)
    if reader.uint(2, "split_depth and special") != 0 or not reader.bit("code"):
        raise WalletRefused(0, "the StateInit has no code, or a split_depth/special the devnet does not run")
    code: Any = reader.ref("code")
    if not reader.bit("data"):
        raise WalletRefused(0, "the StateInit has no data")
    data = Reader(reader.ref("data"))
    if code.hash == V4R2_CODE_HASH:
        seqno, wallet_id, key = data.uint(32), data.uint(32), data.raw_bytes(32)
        return WalletState("v4r2", key, wallet_id, seqno)
    if code.hash == V5R1_CODE_HASH:
        data.bit("is_signature_allowed")
        seqno, wallet_id, key = data.uint(32), data.uint(32), data.raw_bytes(32)
        return WalletState("v5r1", key, wallet_id, seqno)
    raise WalletRefused(0, "the StateInit's code is neither wallet v4r2 nor v5r1")


def receive_external(state: WalletState, body: Cell, *, now: int) -> Accepted:
    """Run recv_external on `body`; raises WalletRefused when the contract throws."""
    try:
        if state.version == "v4r2":
            return _v4r2(state, body, now)
        return _v5r1(state, body, now)
    except CellFormatError as exc:  # the contract's loads fail: cell underflow, exit 9
        raise WalletRefused(9, f"the external body does not fit the {state.version} layout: {exc}") from None


def _v4r2(state: WalletState, body: Cell, now: int) -> Accepted:
    reader = Reader(body)
    signature = reader.raw_bytes(64, "signature")
    signed = reader.rest()
    fields = Reader(signed)
    subwallet, valid_until, seqno = fields.uint(32), fields.uint(32), fields.uint(32)
    if valid_until <= now:
        raise WalletRefused(36, f"the external expired: valid_until {valid_until} <= now {now}")
    if seqno != state.seqno:
        raise WalletRefused(33, f"seqno {seqno} does not match the wallet's {state.seqno} (a replay, or "
                            "an external signed for another seqno)")
    if subwallet != state.wallet_id:
        raise WalletRefused(34, f"subwallet_id {subwallet} is not the wallet's {state.wallet_id}")
    _verify(state, signed, signature, 35)
    if fields.uint(8, "op") != 0:
        raise WalletRefused(0, "only op 0 (a simple send) is simulated for wallet v4r2")
    sends = []
    while fields.remaining_refs:
        mode = fields.uint(8, "mode")
        sends.append(_message(mode, fields.ref("message")))
    if len(sends) > 4:
        raise WalletRefused(0, "a v4r2 external carries at most 4 messages")
    return Accepted(replace(state, seqno=state.seqno + 1), tuple(sends))


def _v5r1(state: WalletState, body: Cell, now: int) -> Accepted:
    untyped: Any = body
    bits = len(untyped.bits)
    if bits < 512 + 32 * 4:
        raise WalletRefused(9, "the external body is too short for a v5r1 signed request")
    whole = Reader(body)
    op = whole.uint(32, "op")
    if op != V5_SIGNED_EXTERNAL:
        raise WalletRefused(65535, f"op 0x{op:08x} is not a signed external (0x7369676e)")
    signed = _without_last_bits(body, 512)
    signature = _last_bytes(body, 64)
    _verify(state, signed, signature, 135)
    fields = Reader(signed)
    fields.uint(32)
    wallet_id, valid_until, seqno = fields.uint(32), fields.uint(32), fields.uint(32)
    if seqno != state.seqno:
        raise WalletRefused(133, f"seqno {seqno} does not match the wallet's {state.seqno} (a replay, or "
                            "an external signed for another seqno)")
    if wallet_id != state.wallet_id:
        raise WalletRefused(134, f"wallet_id {wallet_id} is not the wallet's {state.wallet_id}")
    if valid_until <= now:
        raise WalletRefused(136, f"the external expired: valid_until {valid_until} <= now {now}")
    sends: list[Send] = []
    if fields.bit("out_actions"):
        sends = _out_list(fields.ref("out_actions"))
    if fields.bit("extended actions"):
        raise WalletRefused(0, "extended actions are not simulated for wallet v5r1")
    if any(not s.mode & IGNORE_ERRORS for s in sends):
        raise WalletRefused(137, "a v5r1 external may send only with mode +2 (ignore errors)")
    return Accepted(replace(state, seqno=state.seqno + 1), tuple(sends))


def _out_list(cell: Cell) -> list[Send]:
    """out_list$_ prev:^OutList action; the oldest action is the deepest."""
    sends: list[Send] = []
    current = cell
    while True:
        reader = Reader(current)
        if reader.remaining_bits == 0 and reader.remaining_refs == 0:
            break
        prev = reader.ref("prev")
        if reader.uint(32, "action") != ACTION_SEND_MSG:
            raise WalletRefused(0, "only action_send_msg is simulated")
        mode = reader.uint(8, "mode")
        sends.append(_message(mode, reader.ref("out_msg")))
        current = prev
        if len(sends) > MAX_V5_ACTIONS:
            raise WalletRefused(0, f"an action list holds at most {MAX_V5_ACTIONS} actions")
    sends.reverse()
    return sends


def _message(mode: int, message: Cell) -> Send:
    """int_msg_info$0 ihr_disabled bounce bounced src dest value:CurrencyCollection ihr_fee
    fwd_fee created_lt created_at, init:(Maybe …), body:(Either X ^X)."""
    reader = Reader(message)
    if reader.bit("tag"):
        raise WalletRefused(0, "a wallet can only send internal messages")
    reader.bit("ihr_disabled")
    bounce = reader.bit("bounce")
    reader.bit("bounced")
    reader.address("src")
    destination = reader.address("dest")
    if destination is None:
        raise WalletRefused(0, "a message without a destination")
    value = reader.coins("value")
    if reader.bit("extra currencies"):
        raise WalletRefused(0, "extra currencies are not simulated")
    reader.coins("ihr_fee")
    reader.coins("fwd_fee")
    reader.uint(64, "created_lt")
    reader.uint(32, "created_at")
    if reader.bit("init"):
        raise WalletRefused(0, "messages carrying a StateInit are not simulated")
    body = reader.ref("body") if reader.bit("body") else reader.rest()
    return Send(mode, destination, value, bounce, body)


def apply_actions(balance: int, sends: tuple[Send, ...]) -> tuple[tuple[Send, ...], int | None]:
    """The action phase: (what is sent, None) or ((), 37) when a message without +2 cannot be
    paid (the whole phase fails). Fees are zero on the devnet; mode +128 sends all that is left."""
    sent: list[Send] = []
    left = balance
    for send in sends:
        value = left if send.mode & ALL_BALANCE else send.value
        if value > left:
            if send.mode & IGNORE_ERRORS:
                continue
            return (), RESULT_NOT_ENOUGH_FUNDS
        left -= value
        sent.append(replace(send, value=value))
    return tuple(sent), None


def _verify(state: WalletState, signed: Cell, signature: bytes, exit_code: int) -> None:
    untyped: Any = signed
    try:
        Ed25519PublicKey.from_public_bytes(state.public_key).verify(signature, untyped.hash)
    except InvalidSignature:
        raise WalletRefused(exit_code, "the signature does not match the wallet's public key") from None


def _without_last_bits(cell: Cell, count: int) -> Cell:
    untyped: Any = cell
    keep = len(untyped.bits) - count
    builder = Builder().store_bits(untyped.begin_parse().load_bits(keep))
    for ref in untyped.refs:
        builder.store_ref(ref)
    result: Cell = builder.end_cell()
    return result


def _last_bytes(cell: Cell, count: int) -> bytes:
    untyped: Any = cell
    data = untyped.begin_parse()
    data.skip_bits(len(untyped.bits) - count * 8)
    result: bytes = data.load_bytes(count)
    return result
