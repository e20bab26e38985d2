"""Deposit addresses: one Tron address per invoice, m/44'/195'/0'/0/i, from a public key only.

The configuration takes the ACCOUNT-level extended public key (m/44'/195'/0', what wallets
export as "the xpub of account 0"): this class derives the external chain (public child 0)
and then child i. Only that level is accepted: depth 3 with a hardened child number, as an
account key always has. A key at another depth (the external chain m/44'/195'/0'/0, the
coin m/44'/195') or with a plain child number would derive addresses the merchant's wallet
never shows, so money paid to them would look lost; a private key (xprv) is refused, so
none is ever held by the server. The operator compares `first_address` (index 0, printed at
start-up and by `krypton doctor`) with the first receiving address their wallet shows.
"""

from __future__ import annotations

import hmac

import coincurve
from bip_utils import Base58Encoder, Bip32Secp256k1
from bip_utils.utils.crypto import Kekkak256

from krypton.domain.errors import DomainError

MAX_INDEX = 2**31 - 1  # non-hardened child indexes only: public derivation cannot go further
ACCOUNT_DEPTH = 3  # m/44'/195'/account'
EXTERNAL_CHAIN = 0
_HARDENED = 2**31
TRON_PREFIX = b"\x41"


class InvalidExtendedKey(DomainError):
    code = "invalid_xpub"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="xpub")


class DepositAddresses:
    """Tron deposit addresses derived from an extended public key."""

    __slots__ = ("_chain_code", "_point", "_public_key")

    def __init__(self, xpub: str) -> None:
        text = xpub.strip()
        try:
            key = Bip32Secp256k1.FromExtendedKey(text)
        except Exception as exc:  # bip_utils raises several unrelated types for bad input
            raise InvalidExtendedKey(
                "The Tron xpub is not a valid BIP-32 extended public key (xpub…): "
                f"{exc}. Export the xpub of account m/44'/195'/0' from the wallet."
            ) from None
        if not key.IsPublicOnly():
            raise InvalidExtendedKey(
                "This is an extended PRIVATE key (xprv); Krypton never holds one. "
                "Give the extended public key (xpub) of account m/44'/195'/0' instead."
            )
        depth, index = key.Depth().ToInt(), key.Index().ToInt()
        if depth != ACCOUNT_DEPTH or index < _HARDENED:
            raise InvalidExtendedKey(
                f"The Tron xpub is at depth {depth} with child number {_describe(index)}; Krypton "
                "needs the account-level key m/44'/195'/0' (depth 3, hardened child number). "
                "Export the xpub of account 0 of the Tron wallet, not of a chain or an address."
            )
        chain = key.ChildKey(EXTERNAL_CHAIN)
        self._chain_code = chain.ChainCode().ToBytes()
        self._point = chain.PublicKey().RawCompressed().ToBytes()
        self._public_key = coincurve.PublicKey(self._point)

    @property
    def first_address(self) -> str:
        """Index 0: what an operator compares with the first address their wallet shows."""
        return self.address(0)

    def address(self, index: int) -> str:
        """Base58 address at m/44'/195'/0'/0/index."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_INDEX:
            raise ValueError(f"deposit address index must be an integer in 0..{MAX_INDEX}, not {index!r}")
        # BIP-32 public child derivation: I = HMAC-SHA512(chain code, point || index), child
        # = point + I[:32]·G (coincurve raises for the ~2^-127 chance of an invalid I).
        # bip_utils' ChildKey does the same through many object layers, 38 µs against 21 µs
        # here, on every invoice; the published vectors check the result (test_derivation).
        tweak = hmac.digest(self._chain_code, self._point + index.to_bytes(4, "big"), "sha512")
        child = self._public_key.add(tweak[:32]).format(compressed=False)
        # Tron's address: 0x41 + the last 20 bytes of Keccak-256 of the uncompressed point
        # (without its 0x04 prefix), Base58Check. (bip_utils' TrxAddrEncoder gets there via
        # a checksummed Ethereum hex string: twice the work.)
        address: str = Base58Encoder.CheckEncode(TRON_PREFIX + Kekkak256.QuickDigest(child[1:])[-20:])
        return address


def _describe(index: int) -> str:
    return f"{index - _HARDENED}'" if index >= _HARDENED else str(index)
