"""Deposit addresses from an extended public key, against the BIP-44 vector in vectors.json."""

from __future__ import annotations

from typing import Any

import coincurve
import pytest
from bip_utils import Bip32Secp256k1, Bip39SeedGenerator, Bip44, Bip44Changes, Bip44Coins
from hypothesis import given
from hypothesis import strategies as st

from krypton.adapters.chains.tron.address import parse_address
from krypton.adapters.chains.tron.derivation import MAX_INDEX, DepositAddresses, InvalidExtendedKey
from tests.adapters.chains.tron.recorded import vectors

VECTORS: list[dict[str, Any]] = vectors()["bip44_tron"]
VECTOR = VECTORS[0]
ACCOUNT_XPUB: str = VECTOR["account"]["xpub"]
CHAIN_XPUB: str = VECTOR["external_chain"]["xpub"]
ACCOUNT = DepositAddresses(ACCOUNT_XPUB)


def _index(path: str) -> int:
    assert path.startswith("m/44'/195'/0'/0/")
    return int(path.rsplit("/", 1)[1])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_bip44_vector_addresses(vector: dict[str, Any]) -> None:
    deposits = DepositAddresses(vector["account"]["xpub"])
    for expected in vector["addresses"]:
        assert deposits.address(_index(expected["path"])) == expected["address"]
    first = next(a["address"] for a in vector["addresses"] if a["path"] == "m/44'/195'/0'/0/0")
    assert deposits.first_address == first


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector_xpubs_come_from_its_mnemonic_and_seed(vector: dict[str, Any]) -> None:
    """The xpubs in the vector belong to its mnemonic (so the vector is self-consistent)."""
    seed = Bip39SeedGenerator(vector["mnemonic"]).Generate(vector["passphrase"])
    assert seed.hex() == vector["seed_hex"]
    master = Bip44.FromSeed(seed, Bip44Coins.TRON)
    assert master.PrivateKey().ToExtended() == vector["master_xprv"]
    account = master.Purpose().Coin().Account(0)
    assert account.PublicKey().ToExtended() == vector["account"]["xpub"]
    chain = account.Change(Bip44Changes.CHAIN_EXT)
    assert chain.PublicKey().ToExtended() == vector["external_chain"]["xpub"]


def test_same_index_same_address_and_valid_tron_address() -> None:
    first = ACCOUNT.address(7)
    assert ACCOUNT.address(7) == first
    assert DepositAddresses(ACCOUNT_XPUB).address(7) == first
    assert parse_address(first) == first


def test_distinct_indexes_give_distinct_addresses() -> None:
    addresses = [ACCOUNT.address(i) for i in range(64)] + [ACCOUNT.address(MAX_INDEX)]
    assert len(set(addresses)) == len(addresses)


@given(st.integers(min_value=0, max_value=MAX_INDEX), st.integers(min_value=0, max_value=MAX_INDEX))
def test_distinct_indexes_property(a: int, b: int) -> None:
    assert (ACCOUNT.address(a) == ACCOUNT.address(b)) == (a == b)


@pytest.mark.parametrize("index", [-1, 2**31, 2**32, True, 1.0, "1"])
def test_index_bounds_rejected(index: Any) -> None:
    with pytest.raises(ValueError, match="index"):
        ACCOUNT.address(index)


def test_highest_index_is_allowed() -> None:
    assert parse_address(ACCOUNT.address(2**31 - 1))


@pytest.mark.parametrize(
    ("xpub", "words"),
    [
        ("", "not a valid"),
        ("not an xpub", "not a valid"),
        (ACCOUNT_XPUB[:-1] + ("A" if ACCOUNT_XPUB[-1] != "A" else "B"), "not a valid"),
        (VECTOR["account"]["xprv"], "PRIVATE"),
        (VECTOR["external_chain"]["xprv"], "PRIVATE"),
        (VECTOR["master_xprv"], "PRIVATE"),
    ],
    ids=["empty", "garbage", "checksum", "account-xprv", "chain-xprv", "master-xprv"],
)
def test_bad_keys_refused_on_construction(xpub: str, words: str) -> None:
    with pytest.raises(InvalidExtendedKey, match=words) as caught:
        DepositAddresses(xpub)
    assert caught.value.field == "xpub"
    assert caught.value.code == "invalid_xpub"


def _xpub(path: str) -> str:
    master = Bip32Secp256k1.FromSeed(bytes.fromhex(VECTOR["seed_hex"]))
    key: str = master.DerivePath(path).PublicKey().ToExtended()
    return key


@pytest.mark.parametrize(
    ("path", "found"),
    [("m/44'/195'", "depth 2 with child number 195'"),
     ("m/44'/195'/0'/0", "depth 4 with child number 0"),
     ("m/44'/195'/0'/1", "depth 4 with child number 1"),
     ("m/44'/195'/0'/0/0", "depth 5 with child number 0"),
     ("m/44'/195'/0'/0'", "depth 4 with child number 0'")],
)
def test_keys_at_the_wrong_depth_refused(path: str, found: str) -> None:
    with pytest.raises(InvalidExtendedKey, match="account-level key m/44'/195'/0'") as caught:
        DepositAddresses(_xpub(path))
    assert found in caught.value.message


def test_the_external_chain_key_of_the_vector_is_refused() -> None:
    """It derives the same addresses, but a depth-4 key is not what the wallet calls its
    account xpub: only the account level is accepted, so there is one way to configure it."""
    with pytest.raises(InvalidExtendedKey, match="depth 4"):
        DepositAddresses(CHAIN_XPUB)


@pytest.mark.parametrize("path", ["m/44'/195'/0", "m/44'/195'/5"])
def test_a_depth_3_key_with_a_plain_child_number_is_refused(path: str) -> None:
    with pytest.raises(InvalidExtendedKey, match="hardened child number") as caught:
        DepositAddresses(_xpub(path))
    assert f"depth 3 with child number {path.rsplit('/', 1)[1]};" in caught.value.message


def test_another_hardened_account_is_accepted() -> None:
    assert DepositAddresses(_xpub("m/44'/195'/1'")).first_address != ACCOUNT.first_address


def test_master_xpub_refused() -> None:
    master = Bip32Secp256k1.FromSeed(bytes.fromhex(VECTOR["seed_hex"]))
    with pytest.raises(InvalidExtendedKey, match="depth 0"):
        DepositAddresses(master.PublicKey().ToExtended())


def test_no_private_key_is_held() -> None:
    """Only public material is kept: the chain code, the public point and its key object."""
    deposits = DepositAddresses(ACCOUNT_XPUB)
    held = [getattr(deposits, name) for name in DepositAddresses.__slots__]
    assert all(isinstance(value, bytes | str | coincurve.PublicKey) for value in held)
