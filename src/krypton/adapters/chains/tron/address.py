"""Tron addresses: Base58Check of 0x41 ‖ 20-byte account id (34 characters, starting with T).

The canonical form everywhere in Krypton is the base58 string. Hex forms appear in API
responses: TronGrid events give "0x" + 20 bytes (EVM style), the node gives "41" + 20 bytes,
and receipt logs give the bare 20 bytes. `from_hex` and `normalise` turn them into base58.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from krypton.domain.errors import DomainError

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_DIGITS = {c: i for i, c in enumerate(ALPHABET)}
VERSION = 0x41
LENGTH = 34  # characters of a base58 Tron address
_PAYLOAD = 21  # version byte + 20-byte account id
_HEX_FORMS = re.compile(r"(?:0[xX]|41)([0-9a-fA-F]{40})")

Reason = Literal["empty", "hex", "characters", "length", "prefix", "checksum"]


class InvalidAddress(DomainError):
    """A string that is not a Tron address; `reason` says which check failed."""

    code = "invalid_address"

    def __init__(self, message: str, *, reason: Reason) -> None:
        super().__init__(message, field="address")
        self.reason: Reason = reason


def parse_address(text: str) -> str:
    """Validate a base58 Tron address and return it (surrounding blanks removed)."""
    value = text.strip()
    if not value:
        raise InvalidAddress(
            "The Tron address is empty; give the 34-character address starting with T.", reason="empty"
        )
    shown = _show(value)
    if _HEX_FORMS.fullmatch(value):
        raise InvalidAddress(
            f"'{shown}' is a hex address; give the base58 form instead (34 characters starting with T).",
            reason="hex",
        )
    if any(c not in _DIGITS for c in value):
        raise InvalidAddress(
            f"'{shown}' contains characters that never appear in a Tron address "
            "(base58 has no 0, O, I or l, no spaces or punctuation); check it for typos.",
            reason="characters",
        )
    if len(value) != LENGTH:
        raise InvalidAddress(
            f"'{shown}' is {len(value)} characters long; a Tron address has "
            f"{LENGTH} characters and starts with T.",
            reason="length",
        )
    if value[0] != "T":
        raise InvalidAddress(
            f"'{shown}' is not a Tron address; Tron addresses start with T.", reason="prefix"
        )
    raw = _b58decode(value)
    if len(raw) != _PAYLOAD + 4:
        raise InvalidAddress(
            f"'{shown}' does not decode to a 21-byte Tron address; check it for typos.", reason="length"
        )
    if _checksum(raw[:_PAYLOAD]) != raw[_PAYLOAD:]:
        raise InvalidAddress(
            f"'{shown}' has a wrong checksum: a character is mistyped or missing; copy the address again.",
            reason="checksum",
        )
    if raw[0] != VERSION:
        raise InvalidAddress(
            f"'{shown}' is not a Tron address (version byte 0x{raw[0]:02x}, Tron uses 0x{VERSION:02x}).",
            reason="prefix",
        )
    return value


def from_bytes(account_id: bytes) -> str:
    """Base58 address of a 20-byte account id."""
    if len(account_id) != 20:
        raise ValueError(f"a Tron account id has 20 bytes, not {len(account_id)}")
    payload = bytes([VERSION]) + account_id
    return _b58encode(payload + _checksum(payload))


def from_hex(text: str) -> str:
    """Base58 address of "0x" + 40 hex digits (EVM form) or "41" + 40 hex digits (node form)."""
    value = text.strip()
    match = _HEX_FORMS.fullmatch(value)
    if match is None:
        shown = _show(value)
        if re.fullmatch(r"(?:0[xX])?[0-9a-fA-F]*", value) is None:
            raise InvalidAddress(
                f"'{shown}' is not hex; expected 0x or 41 followed by 40 hex digits.", reason="characters"
            )
        if value[:2] in ("0x", "0X") or value.startswith("41"):
            raise InvalidAddress(
                f"'{shown}' has {len(value) - 2} hex digits after its prefix; "
                "a Tron address has 20 bytes (40 digits).",
                reason="length",
            )
        raise InvalidAddress(f"'{shown}' lacks the 0x or 41 prefix of a hex Tron address.", reason="prefix")
    return from_bytes(bytes.fromhex(match.group(1)))


def to_hex(address: str) -> str:
    """The 20-byte account id of a base58 address, as 40 lower-case hex digits (no prefix)."""
    return _b58decode(parse_address(address))[1:_PAYLOAD].hex()


def normalise(text: str) -> str:
    """Base58 form of an address given in any form an API uses (base58, 0x-hex, 41-hex)."""
    value = text.strip()
    if _HEX_FORMS.fullmatch(value):
        return from_hex(value)
    return parse_address(value)


def _show(value: str, limit: int = 48) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


# Base58Check by hand, although bip-utils has it (derivation.py uses its encoder for the one
# address of each invoice). These functions run 3 times per TronGrid transfer parsed, and
# bip-utils is slower: Base58Decoder.Decode 9.9 µs against 1.9 µs here, CheckEncode 5.1 µs
# against 3.6 µs, i.e. +4 to +27 µs on a transfer whose whole parse takes 17-20 µs now.
# (Were it faster, only its Decode would do: parse_address tells a wrong length from a wrong
# checksum before comparing checksums, and CheckDecode reports both as a checksum error.)
# test_address.py checks both directions against bip-utils.


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    chars: list[str] = []
    while number:
        number, digit = divmod(number, 58)
        chars.append(ALPHABET[digit])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(chars))


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _DIGITS[char]
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * zeros + body
