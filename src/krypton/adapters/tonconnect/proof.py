"""TON Connect `ton_proof`: does the wallet at an address hold the key that signed our payload?

Pure verification, no I/O (the caller gives `now`, the allowed domain and, when the
state_init does not reveal it, the key read from the chain). Per the TON Connect spec:

    message   = "ton-proof-item-v2/" ‖ workchain (int32 BE) ‖ address hash (32)
                ‖ domain length (uint32 LE) ‖ domain ‖ timestamp (uint64 LE) ‖ payload
    signature = Ed25519(sha256(0xffff ‖ "ton-connect" ‖ sha256(message)))

The address must be the hash of the state_init the wallet sent (else anyone could pair
their own key with someone else's address), and the public key comes from that
state_init's data for the wallet versions whose layout we know (v3, v4r2, v5r1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from enum import StrEnum

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import CellFormatError, Reader, cell_from_boc

PREFIX = b"ton-proof-item-v2/"
# The wallet contracts' code hashes (hex), as published by their repositories and checked
# against adapters/signer/wallet.py for v4r2 and v5r1; each names its data layout.
V3_LAYOUT = frozenset({
    "b61041a58a7980b946e8fb9e198e3c904d24799ffa36574ea4251c41a566f581",  # wallet v3r1
    "84dafa449f98a6987789ba232358072bc0f76dc4524002a5d0918b9a75d2d599",  # wallet v3r2
    "feb5ff6820e2ff0d9483e7e0d62c817d846789fb4ae580c878866d959dabd5c0",  # wallet v4r2
})
V5_LAYOUT = frozenset({
    "20834b7b72b112147e1b2fb457b84e74d1a30f04f737d4f62a668e9552d2b72f",  # wallet v5r1 (W5)
})
# A domain longer than this is not a host name; refusing it bounds the message we hash.
MAX_DOMAIN = 253
MAX_PAYLOAD = 512


class Reason(StrEnum):
    MALFORMED = "malformed"
    WRONG_DOMAIN = "wrong_domain"
    STALE = "stale"
    FUTURE = "future"
    ADDRESS_MISMATCH = "address_mismatch"
    UNKNOWN_WALLET = "unknown_wallet"
    BAD_SIGNATURE = "bad_signature"


class InvalidProof(ValueError):
    """The proof proves nothing; `reason` says which check failed, the text says why."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Proof:
    """What the wallet returned for `ton_proof` (TON Connect's `TonProofItemReply`)."""

    timestamp: int
    domain: str
    payload: str
    signature: bytes


def parse_signature(text: str) -> bytes:
    """The base64 (standard or url-safe) 64-byte Ed25519 signature."""
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidProof(Reason.MALFORMED, "The proof's signature is not base64.") from None
    if len(raw) != 64:
        raise InvalidProof(Reason.MALFORMED, f"The proof's signature has {len(raw)} bytes; an "
                           "Ed25519 signature has 64.")
    return raw


def message(address: TonAddress, proof: Proof) -> bytes:
    domain = proof.domain.encode("utf-8")
    return (PREFIX + struct.pack(">i", address.workchain) + address.hash
            + struct.pack("<I", len(domain)) + domain + struct.pack("<Q", proof.timestamp)
            + proof.payload.encode("utf-8"))


def digest(address: TonAddress, proof: Proof) -> bytes:
    """What the wallet signs: sha256(0xffff ‖ "ton-connect" ‖ sha256(message))."""
    inner = hashlib.sha256(message(address, proof)).digest()
    return hashlib.sha256(b"\xff\xff" + b"ton-connect" + inner).digest()


def state_init_cell(boc: str) -> Cell:
    try:
        return cell_from_boc(boc)
    except CellFormatError as exc:
        raise InvalidProof(Reason.MALFORMED, f"The state_init is not a bag of cells ({exc}).") from None


def public_key_from_state_init(init: Cell) -> bytes | None:
    """The key in the wallet's data for the code hashes whose layout we know; None for any
    other contract (the caller may then ask the chain's get_public_key)."""
    try:
        code, data = _code_and_data(init)
        code_hash = code.hash.hex()
        reader = Reader(data)
        if code_hash in V3_LAYOUT:  # seqno:32 subwallet:32 public_key:256 …
            reader.uint(32, "seqno")
            reader.uint(32, "subwallet id")
            return reader.raw_bytes(32, "public key")
        if code_hash in V5_LAYOUT:  # is_signature_allowed:1 seqno:32 wallet_id:32 public_key:256 …
            reader.bit("signature allowed")
            reader.uint(32, "seqno")
            reader.uint(32, "wallet id")
            return reader.raw_bytes(32, "public key")
    except CellFormatError as exc:
        raise InvalidProof(Reason.MALFORMED, f"The state_init's data is not a wallet's ({exc}).") from None
    return None


def _code_and_data(init: Cell) -> tuple[Cell, Cell]:
    """StateInit: split_depth:(Maybe ## 5) special:(Maybe TickTock) code:(Maybe ^Cell)
    data:(Maybe ^Cell) library:(Maybe ^Cell); a wallet has code and data and nothing else."""
    reader = Reader(init)
    if reader.bit("split depth flag"):
        reader.uint(5, "split depth")
    if reader.bit("special flag"):
        reader.uint(2, "tick tock")
    if not reader.bit("code flag"):
        raise CellFormatError("the state_init has no code")
    code = reader.ref("code")
    if not reader.bit("data flag"):
        raise CellFormatError("the state_init has no data")
    return code, reader.ref("data")


def verify(address: TonAddress, proof: Proof, state_init: str | None, *, domain: str, now: int,
           max_age: int, public_key: bytes | None = None) -> bytes:
    """The wallet's public key when every check passes; InvalidProof naming the first that
    fails. `public_key` is what the chain's get_public_key said, for wallets whose
    state_init we cannot read (or that sent none: then it is the only source)."""
    if not proof.domain or len(proof.domain.encode("utf-8")) > MAX_DOMAIN or \
            len(proof.payload.encode("utf-8")) > MAX_PAYLOAD:
        raise InvalidProof(Reason.MALFORMED, "The proof's domain or payload is empty or too long.")
    if proof.domain.lower() != domain.lower():
        raise InvalidProof(Reason.WRONG_DOMAIN, f"The proof was made for '{proof.domain[:64]}', "
                           f"not for this site ({domain}).")
    if proof.timestamp > now + 60:  # a minute of clock skew, no more
        raise InvalidProof(Reason.FUTURE, "The proof's timestamp is in the future: check the "
                           "device's clock.")
    if now - proof.timestamp > max_age:
        raise InvalidProof(Reason.STALE, f"The proof is older than {max_age} seconds: sign in again.")
    key = public_key
    if state_init is not None:
        init = state_init_cell(state_init)
        if init.hash != address.hash:
            raise InvalidProof(Reason.ADDRESS_MISMATCH, "The state_init is not this address's: "
                               "its hash differs from the address.")
        key = public_key_from_state_init(init) or public_key
    if key is None or len(key) != 32:
        raise InvalidProof(Reason.UNKNOWN_WALLET, "This wallet's public key could not be read "
                           "(unknown wallet contract, and the chain did not tell).")
    try:
        VerifyKey(key).verify(digest(address, proof), proof.signature)
    except BadSignatureError:
        raise InvalidProof(Reason.BAD_SIGNATURE, "The proof's signature does not match the "
                           "wallet's key.") from None
    return key
