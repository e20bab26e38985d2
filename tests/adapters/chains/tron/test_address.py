"""Tron addresses against every vector in fixtures/tron/vectors.json, plus round trips."""

from __future__ import annotations

from typing import Any

import pytest
from bip_utils import Base58Decoder, Base58Encoder, Secp256k1PublicKey, TrxAddrEncoder
from hypothesis import given
from hypothesis import strategies as st

from krypton.adapters.chains.tron.address import (
    InvalidAddress,
    from_bytes,
    from_hex,
    normalise,
    parse_address,
    to_hex,
)
from krypton.domain.errors import DomainError
from tests.adapters.chains.tron.recorded import vectors

VECTORS = vectors()
PAIRS: list[dict[str, Any]] = VECTORS["hex_base58_pairs"]
EVM: list[dict[str, str]] = VECTORS["evm20_to_base58"]["vectors"]
FROM_PUBKEY: list[dict[str, str]] = VECTORS["address_from_public_key"]["vectors"]
INVALID: list[dict[str, str]] = VECTORS["invalid_base58_addresses"]["vectors"]
# vectors.json says "invalid prefix" / "invalid checksum" / "invalid length"
REASONS = {"invalid prefix": "prefix", "invalid checksum": "checksum", "invalid length": "length"}


@pytest.mark.parametrize("pair", PAIRS, ids=[p["base58"] for p in PAIRS])
def test_hex_base58_pairs(pair: dict[str, Any]) -> None:
    assert from_hex(pair["hex"]) == pair["base58"]
    assert parse_address(pair["base58"]) == pair["base58"]
    assert to_hex(pair["base58"]) == pair["hex"][2:].lower()
    if "evm" in pair:
        assert from_hex(pair["evm"]) == pair["base58"]


@pytest.mark.parametrize("vector", EVM, ids=[v["base58"] for v in EVM])
def test_evm_hex_from_events(vector: dict[str, str]) -> None:
    assert from_hex(vector["evm"]) == vector["base58"]
    assert normalise(vector["evm"]) == vector["base58"]
    assert to_hex(vector["base58"]) == vector["evm"][2:]


@pytest.mark.parametrize("vector", FROM_PUBKEY, ids=[v["address"] for v in FROM_PUBKEY])
def test_address_from_public_key(vector: dict[str, str]) -> None:
    assert from_bytes(bytes.fromhex(vector["address_dec"])) == vector["address"]
    assert to_hex(vector["address"]) == vector["address_dec"]
    key = Secp256k1PublicKey.FromBytes(bytes.fromhex(vector["pub_key_compressed"]))
    assert TrxAddrEncoder.EncodeKey(key) == vector["address"]


@pytest.mark.parametrize("vector", VECTORS["address_from_private_key"], ids=lambda v: v["base58"])
def test_address_from_private_key_vector(vector: dict[str, str]) -> None:
    assert from_hex(vector["hex"]) == vector["base58"]
    assert to_hex(vector["base58"]) == vector["hex"][2:]
    key = Secp256k1PublicKey.FromBytes(bytes.fromhex("04" + vector["public_key_xy_hex"]))
    assert TrxAddrEncoder.EncodeKey(key) == vector["base58"]


@pytest.mark.parametrize("vector", INVALID, ids=[v["address"] for v in INVALID])
def test_invalid_vectors_are_refused_with_their_reason(vector: dict[str, str]) -> None:
    with pytest.raises(InvalidAddress) as caught:
        parse_address(vector["address"])
    assert caught.value.reason == REASONS[vector["reason"]]
    assert caught.value.field == "address"
    assert caught.value.code == "invalid_address"
    assert isinstance(caught.value, DomainError)
    assert vector["address"] in caught.value.message


@pytest.mark.parametrize(
    ("text", "reason", "words"),
    [
        ("", "empty", "empty"),
        ("   ", "empty", "empty"),
        ("0x01311788a9736dcc38cf6d53342c076c38e95ef2", "hex", "hex address"),
        ("41704833c02883b3261f7baf62f8cb19b4b0c2e64e", "hex", "hex address"),
        ("TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqe0", "characters", "never appear"),
        ("TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeLL", "length", "35 characters"),
        ("TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqe", "length", "33 characters"),
        ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "prefix", "start with T"),
        ("TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeM", "checksum", "checksum"),
    ],
)
def test_refusals_say_what_is_wrong(text: str, reason: str, words: str) -> None:
    with pytest.raises(InvalidAddress, match=words) as caught:
        parse_address(text)
    assert caught.value.reason == reason


def test_blanks_around_an_address_are_removed() -> None:
    assert parse_address("  TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL\n") == "TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0x01311788a9736dcc38cf6d53342c076c38e95e", "length"),
        ("4101311788a9736dcc38cf6d53342c076c38e95ef2ff", "length"),
        ("0x01311788a9736dcc38cf6d53342c076c38e95eZZ", "characters"),
        ("01311788a9736dcc38cf6d53342c076c38e95ef2", "prefix"),
        ("TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL", "characters"),
    ],
)
def test_from_hex_refuses_other_forms(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        from_hex(text)
    assert caught.value.reason == reason


def test_normalise_accepts_every_api_form() -> None:
    base58 = "TLCuBEirVzB6V4menLZKw1jfBTFMZbuKq7"
    for form in (
        base58,
        "41704833c02883b3261f7baf62f8cb19b4b0c2e64e",
        "0x704833C02883B3261F7BAF62F8CB19B4B0C2E64E",
    ):
        assert normalise(form) == base58
    with pytest.raises(InvalidAddress):
        normalise("TLCuBEirVzB6V4menLZKw1jfBTFMZbuKq8")


def test_from_bytes_needs_twenty_bytes() -> None:
    with pytest.raises(ValueError, match="20 bytes"):
        from_bytes(b"\x01" * 21)


@given(st.binary(min_size=20, max_size=20))
def test_hex_base58_round_trip(account_id: bytes) -> None:
    hex_id = account_id.hex()
    base58 = from_hex("41" + hex_id)
    assert len(base58) == 34
    assert base58.startswith("T")
    assert parse_address(base58) == base58
    assert to_hex(base58) == hex_id
    assert from_hex("0x" + hex_id.upper()) == base58
    assert from_bytes(account_id) == base58
    assert normalise(base58) == normalise("0x" + hex_id) == base58


@given(st.binary(min_size=20, max_size=20), st.data())
def test_one_changed_character_is_caught(account_id: bytes, data: st.DataObject) -> None:
    base58 = from_bytes(account_id)
    position = data.draw(st.integers(min_value=1, max_value=33))
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    replacement = data.draw(st.sampled_from(alphabet.replace(base58[position], "")))
    typo = base58[:position] + replacement + base58[position + 1 :]
    with pytest.raises(InvalidAddress) as caught:
        parse_address(typo)
    assert caught.value.reason in ("checksum", "prefix", "length")


@given(st.binary(min_size=20, max_size=20))
def test_base58check_agrees_with_bip_utils(account_id: bytes) -> None:
    # The hand-written Base58Check (kept for speed, see address.py) against bip-utils' own.
    payload = b"\x41" + account_id
    base58 = from_bytes(account_id)
    assert base58 == Base58Encoder.CheckEncode(payload)
    assert Base58Decoder.CheckDecode(base58) == payload
    assert to_hex(base58) == account_id.hex()


@pytest.mark.parametrize("account_id", [b"\0" * 20, b"\xff" * 20, b"\0" * 19 + b"\x01"])
def test_base58check_edge_payloads_agree_with_bip_utils(account_id: bytes) -> None:
    assert from_bytes(account_id) == Base58Encoder.CheckEncode(b"\x41" + account_id)
