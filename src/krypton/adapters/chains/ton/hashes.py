"""TON transaction hashes in one canonical form, so that a transaction has one key.

A transaction hash is 32 bytes. TON Center v3 writes it in standard base64 with padding
(44 characters, "+" and "/"), explorers and TON Center links in base64url ("-" and "_",
sometimes without the padding), TonAPI in hex (64 digits). The same transaction written
two ways must not become two transfers, so every hash is turned into standard padded
base64 before it is used as a tx id or in a cursor: the form TON Center and the devnet
answer, which is therefore the form of every id already stored.
"""

from __future__ import annotations

import base64
import binascii
import re

HASH_BYTES = 32
_HEX = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{43}=?")


class InvalidHash(ValueError):
    """Text that is not a 32-byte hash in hex, base64 or base64url."""


def canonical(text: str) -> str:
    """The hash in standard padded base64; raises InvalidHash for anything else."""
    return base64.b64encode(digest(text)).decode("ascii")


def digest(text: str) -> bytes:
    """The 32 bytes a hash names, from hex (with or without 0x), base64 or base64url."""
    value = text.strip()
    hex_match = _HEX.fullmatch(value)
    if hex_match:
        return bytes.fromhex(hex_match.group(1))
    if _BASE64.fullmatch(value):
        standard = value.replace("-", "+").replace("_", "/").rstrip("=") + "="
        try:
            data = base64.b64decode(standard, validate=True)
        except (binascii.Error, ValueError):
            data = b""
        # 43 characters carry 258 bits: the last two must be zero, or two texts would name one hash.
        if len(data) == HASH_BYTES and base64.b64encode(data).decode("ascii") == standard:
            return data
    raise InvalidHash(f"{text[:80]!r} is not a 32-byte transaction hash in hex, base64 or base64url")
