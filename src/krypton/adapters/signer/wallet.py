"""The platform's hot wallet: its address, and signed external messages for it.

Built on pytoniq-core (already Krypton's cell library) following the wallet contracts' own
layouts, not on pytoniq's or tonutils' wallet classes; README.md ("Signer") has the
measurements behind that choice. tests/adapters/signer/wallet-vectors.json holds messages
that pytoniq 0.1.43 signed: the bytes built here are compared with them.

    v4r2 external body:  signature:bits512 subwallet_id:uint32 valid_until:uint32 seqno:uint32
                         op:uint8 (0: simple send) (mode:uint8 ^MessageRelaxed){0..4}
    v5r1 external body:  op:uint32 (0x7369676e "sign") wallet_id:uint32 valid_until:uint32
                         seqno:uint32 out_actions:(Maybe ^OutList) other_actions:(Maybe …)
                         signature:bits512   (the signature is LAST and covers all before it)
    OutList:             out_list$_ prev:^OutList action_send_msg#0ec3c86d mode:uint8
                         out_msg:^MessageRelaxed   (out_list_empty$_ = the empty cell)

The external message itself is written in the normalized form of TEP-467 (src addr_none,
import_fee 0, no StateInit, body in a reference), so the hash of the cell we record before
broadcasting is the hash explorers and TON Center index it under.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import store_address


class WalletVersion(StrEnum):
    V4R2 = "v4r2"
    V5R1 = "v5r1"


# How many messages one external may carry: v4r2's loop reads at most 4 refs, v5r1's action
# list is limited to 255 by the contract.
MAX_MESSAGES = {WalletVersion.V4R2: 4, WalletVersion.V5R1: 255}
V5_SIGNED_EXTERNAL = 0x7369676E
ACTION_SEND_MSG = 0x0EC3C86D
V4_DEFAULT_SUBWALLET = 698983191  # + workchain, as every wallet app uses
# Network global ids (config param 19); the devnet signs as testnet does.
GLOBAL_IDS = {"mainnet": -239, "testnet": -3, "devnet": -3}
# Send mode 3: pay the transfer fees separately (+1) and ignore errors (+2), so one failing
# message (too little balance for it) does not stop the others in the batch.
SEND_MODE = 3

# The wallet contracts' compiled code, as published (code hashes
# feb5ff68…d5c0 for v4r2, 20834b7b…b72f for v5r1).
_V4R2_CODE_HEX = "".join(
    "b5ee9c72010214010002d4000114ff00f4a413f4bcf2c80b01020120020f020148030602e6d001d0d3032171b0925f04"
    "e022d749c120925f04e002d31f218210706c7567bd22821064737472bdb0925f05e003fa403020fa4401c8ca07cbffc9"
    "d0ed44d0810140d721f404305c810108f40a6fa131b3925f07e005d33fc8258210706c7567ba923830e30d0382106473"
    "7472ba925f06e30d0405007801fa00f40430f8276f2230500aa121bef2e0508210706c7567831eb17080185004cb0526"
    "cf1658fa0219f400cb6917cb1f5260cb3f20c98040fb0006008a5004810108f45930ed44d0810140d720c801cf16f400"
    "c9ed540172b08e23821064737472831eb17080185005cb055003cf1623fa0213cb6acb1fcb3fc98040fb00925f03e202"
    "0120070e020120080d020158090a003db29dfb513420405035c87d010c00b23281f2fff274006040423d029be84c6002"
    "01200b0c0019adce76a26840206b90eb85ffc00019af1df6a26840106b90eb858fc00011b8c97ed44d0d70b1f80059bd"
    "242b6f6a2684080a06b90fa0218470d4080847a4937d29910ce6903e9ff9837812801b7810148987159f318404f8f283"
    "08d71820d31fd31fd31f02f823bbf264ed44d0d31fd31fd3fff404d15143baf2a15151baf2a205f901541064f910f2a3"
    "f80024a4c8cb1f5240cb1f5230cbff5210f400c9ed54f80f01d30721c0009f6c519320d74a96d307d402fb00e830e021"
    "c001e30021c002e30001c0039130e30d03a4c8cb1f12cb1fcbff10111213006ed207fa00d4d422f90005c8ca0715cbff"
    "c9d077748018c8cb05cb0222cf165005fa0214cb6b12ccccc973fb00c84014810108f451f2a7020070810108d718fa00"
    "d33fc8542047810108f451f2a782106e6f746570748018c8cb05cb025006cf165004fa0214cb6a12cb1fcb3fc973fb00"
    "02006c810108d718fa00d33f305224810108f459f2a782106473747270748018c8cb05cb025005cf165003fa0213cb6a"
    "cb1f12cb3fc973fb00000af400c9ed54"
)
_V5R1_CODE_HEX = "".join(
    "b5ee9c7201021401000281000114ff00f4a413f4bcf2c80b01020120020d020148030402dcd020d749c120915b8f6320"
    "d70b1f2082106578746ebd21821073696e74bdb0925f03e082106578746eba8eb48020d72101d074d721fa4030fa44f8"
    "28fa443058bd915be0ed44d0810141d721f4058307f40e6fa1319130e18040d721707fdb3ce03120d749810280b99130"
    "e070e2100f020120050c020120060902016e07080019adce76a2684020eb90eb85ffc00019af1df6a2684010eb90eb85"
    "8fc00201480a0b0017b325fb51341c75c875c2c7e00011b262fb513435c280200019be5f0f6a2684080a0eb90fa02c01"
    "02f20e011e20d70b1f82107369676ebaf2e08a7f0f01e68ef0eda2edfb218308d722028308d723208020d721d31fd31f"
    "d31fed44d0d200d31f20d31fd3ffd70a000af90140ccf9109a28945f0adb31e1f2c087df02b35007b0f2d0845125baf2"
    "e0855036baf2e086f823bbf2d0882292f800de01a47fc8ca00cb1f01cf16c9ed542092f80fde70db3cd81003f6eda2ed"
    "fb02f404216e926c218e4c0221d73930709421c700b38e2d01d72820761e436c20d749c008f2e09320d74ac002f2e093"
    "20d71d06c712c2005230b0f2d089d74cd7393001a4e86c128407bbf2e093d74ac000f2e093ed55e2d20001c000915be0"
    "ebd72c08142091709601d72c081c12e25210b1e30f20d74a111213009601fa4001fa44f828fa443058baf2e091ed44d0"
    "810141d718f405049d7fc8ca0040048307f453f2e08b8e14038307f45bf2e08c22d70a00216e01b3b0f2d090e2c85003"
    "cf1612f400c9ed54007230d72c08248e2d21f2e092d200ed44d0d2005113baf2d08f54503091319c01810140d721d70a"
    "00f2e08ee2c8ca0058cf16c9ed5493f2c08de20010935bdb31e1d74cd0"
)


class WalletError(ValueError):
    """A message the wallet cannot carry (too many messages, a value out of range)."""


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One internal message the wallet sends."""

    destination: TonAddress
    value: int  # nanotons
    body: Cell
    bounce: bool = False
    mode: int = SEND_MODE


@dataclass(frozen=True, slots=True)
class SignedExternal:
    """An external message ready to broadcast: recorded (seqno, hash, boc) before it is sent."""

    seqno: int
    valid_until: int
    hash: str  # standard base64 of the message cell's hash (TEP-467 normalized)
    boc: str  # standard base64 BOC of the whole external message


def code(version: WalletVersion) -> Cell:
    text = _V4R2_CODE_HEX if version is WalletVersion.V4R2 else _V5R1_CODE_HEX
    cell: Cell = Cell.one_from_boc(bytes.fromhex(text))
    return cell


def default_wallet_id(version: WalletVersion, network: str, workchain: int = 0) -> int:
    """The wallet id wallet apps use: v4r2's subwallet 698983191 + workchain; v5r1's client
    context (workchain, version 0, subwallet 0) xor the network's global id."""
    if version is WalletVersion.V4R2:
        return V4_DEFAULT_SUBWALLET + workchain
    context = (1 << 31) | ((workchain & 0xFF) << 23)
    return (context ^ GLOBAL_IDS[network]) & 0xFFFFFFFF


def initial_data(version: WalletVersion, public_key: bytes, wallet_id: int) -> Cell:
    """The contract's data at deployment (seqno 0, no plugins or extensions)."""
    builder = Builder()
    if version is WalletVersion.V4R2:
        builder.store_uint(0, 32).store_uint(wallet_id, 32).store_bytes(public_key).store_bit(0)
    else:
        builder.store_bit(1).store_uint(0, 32).store_uint(wallet_id, 32).store_bytes(public_key).store_bit(0)
    cell: Cell = builder.end_cell()
    return cell


def state_init(version: WalletVersion, public_key: bytes, wallet_id: int) -> Cell:
    """StateInit: no split_depth, no special, ^code, ^data, no library."""
    builder = Builder().store_uint(0b00110, 5).store_ref(code(version))
    cell: Cell = builder.store_ref(initial_data(version, public_key, wallet_id)).end_cell()
    return cell


def wallet_address(version: WalletVersion, public_key: bytes, wallet_id: int,
                   workchain: int = 0) -> TonAddress:
    untyped: Any = state_init(version, public_key, wallet_id)
    return TonAddress(workchain, untyped.hash)


def internal_message(message: OutMessage) -> Cell:
    """MessageRelaxed with int_msg_info (src addr_none: the chain fills in the wallet's own
    address); the body inline when it fits, else in a reference, as pytoniq does."""
    if not 0 <= message.value < (1 << 120):
        raise WalletError(f"value must be 0 to 2^120-1 nanotons, not {message.value}")
    builder = Builder().store_bit(0).store_bit(1).store_bit(message.bounce).store_bit(0)
    builder.store_uint(0, 2)  # src: addr_none
    store_address(builder, message.destination)
    builder.store_coins(message.value).store_bit(0)  # no extra currencies
    builder.store_coins(0).store_coins(0).store_uint(0, 64).store_uint(0, 32)  # ihr, fwd, lt, at
    builder.store_bit(0)  # no StateInit
    body: Any = message.body
    if len(body.bits) <= builder.available_bits - 1 and len(body.refs) <= builder.available_refs:
        builder.store_bit(0).store_cell(body)
    else:
        builder.store_bit(1).store_ref(body)
    cell: Cell = builder.end_cell()
    return cell


def external_message(destination: TonAddress, body: Cell, init: Cell | None = None) -> Cell:
    """ext_in_msg_info$10 src:addr_none dest import_fee:0, the StateInit (a deploy only) and
    the body in a reference."""
    builder = Builder().store_uint(0b10, 2).store_uint(0, 2)
    store_address(builder, destination)
    builder.store_coins(0)
    if init is None:
        builder.store_bit(0)
    else:
        builder.store_bit(1).store_bit(1).store_ref(init)
    cell: Cell = builder.store_bit(1).store_ref(body).end_cell()
    return cell


def _out_list(messages: Sequence[OutMessage]) -> Cell:
    actions: Cell = Builder().end_cell()
    for message in messages:
        builder = Builder().store_ref(actions).store_uint(ACTION_SEND_MSG, 32).store_uint(message.mode, 8)
        actions = builder.store_ref(internal_message(message)).end_cell()
    return actions


def signing_payload(version: WalletVersion, wallet_id: int, seqno: int, valid_until: int,
                    messages: Sequence[OutMessage]) -> Cell:
    """The part of the body the signature covers."""
    if not messages:
        raise WalletError("an external needs at least one message")
    if len(messages) > MAX_MESSAGES[version]:
        raise WalletError(f"wallet {version} carries at most {MAX_MESSAGES[version]} messages in one "
                          f"external, not {len(messages)}")
    builder = Builder()
    if version is WalletVersion.V5R1:
        builder.store_uint(V5_SIGNED_EXTERNAL, 32)
    builder.store_uint(wallet_id, 32).store_uint(valid_until, 32).store_uint(seqno, 32)
    if version is WalletVersion.V4R2:
        builder.store_uint(0, 8)  # op 0: a simple send
        for message in messages:
            builder.store_uint(message.mode, 8).store_ref(internal_message(message))
    else:
        builder.store_bit(1).store_ref(_out_list(messages)).store_bit(0)  # no extended actions
    cell: Cell = builder.end_cell()
    return cell


class HotWallet:
    """The signing key and what follows from it. Only the signer process builds one; the key
    never leaves this object (its repr names the address only)."""

    def __init__(self, private_key: bytes, version: WalletVersion, *, network: str,
                 wallet_id: int | None = None, workchain: int = 0) -> None:
        if len(private_key) not in (32, 64):
            raise WalletError("the private key must be a 32-byte Ed25519 seed")
        self._key = Ed25519PrivateKey.from_private_bytes(private_key[:32])
        self.version = version
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.wallet_id = default_wallet_id(version, network, workchain) if wallet_id is None else wallet_id
        self.address = wallet_address(version, self.public_key, self.wallet_id, workchain)
        self.max_messages = MAX_MESSAGES[version]

    def __repr__(self) -> str:
        return f"HotWallet({self.version}, {self.address.raw})"

    def state_init(self) -> Cell:
        return state_init(self.version, self.public_key, self.wallet_id)

    def body(self, seqno: int, valid_until: int, messages: Sequence[OutMessage]) -> Cell:
        """The signed external body (what the contract's recv_external reads)."""
        payload: Any = signing_payload(self.version, self.wallet_id, seqno, valid_until, messages)
        signature = self._key.sign(payload.hash)
        if self.version is WalletVersion.V4R2:
            cell: Cell = Builder().store_bytes(signature).store_cell(payload).end_cell()
        else:
            cell = Builder().store_cell(payload).store_bytes(signature).end_cell()
        return cell

    def sign(self, seqno: int, valid_until: int, messages: Sequence[OutMessage], *,
             deploy: bool = False) -> SignedExternal:
        """deploy: carry the StateInit (the first external of an undeployed wallet)."""
        message: Any = external_message(self.address, self.body(seqno, valid_until, messages),
                                        self.state_init() if deploy else None)
        return SignedExternal(seqno, valid_until, base64.b64encode(message.hash).decode("ascii"),
                              base64.b64encode(message.to_boc(hash_crc32=True)).decode("ascii"))
