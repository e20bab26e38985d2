"""TON addresses against the recorded vectors, invalid inputs and round trips."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytoniq_core.boc.address import Address
from pytoniq_core.crypto.crc import crc16

from krypton.adapters.chains.ton.address import InvalidAddress, TonAddress, crc16_xmodem, parse
from krypton.domain.errors import DomainError
from tests.adapters.chains.ton.recorded import load

VECTORS: dict[str, Any] = load("address-vectors.json")

# vector key -> (bounceable, testnet, url_safe)
FORMS = {
    "bounceable": (True, False, True),
    "non_bounceable": (False, False, True),
    "bounceable_testnet": (True, True, True),
    "non_bounceable_testnet": (False, True, True),
    "bounceable_std_base64": (True, False, False),
    "non_bounceable_std_base64": (False, False, False),
    "bounceable_testnet_std_base64": (True, True, False),
    "non_bounceable_testnet_std_base64": (False, True, False),
}


def _groups() -> list[tuple[str, dict[str, str]]]:
    groups: list[tuple[str, dict[str, str]]] = []
    for name, value in VECTORS.items():
        items = value if isinstance(value, list) else [value]
        groups += [(f"{name}[{i}]", item) for i, item in enumerate(items)]
    return groups


FRIENDLY = [(f"{name}.{key}", group["raw"], key, text)
            for name, group in _groups() for key, text in group.items() if key != "raw"]


def test_every_vector_form_is_known() -> None:
    assert {key for _, _, key, _ in FRIENDLY} <= set(FORMS)
    assert len(FRIENDLY) == 17


@pytest.mark.parametrize(("name", "raw"), [(n, g["raw"]) for n, g in _groups()])
def test_raw_vectors_parse_to_the_lowercase_canonical_form(name: str, raw: str) -> None:
    address = parse(raw, network="mainnet")
    assert address.raw == raw.lower()
    assert parse(raw.upper(), network="mainnet") == address
    assert str(address) == address.raw


@pytest.mark.parametrize(("name", "raw", "key", "text"), FRIENDLY, ids=[f[0] for f in FRIENDLY])
def test_friendly_vectors(name: str, raw: str, key: str, text: str) -> None:
    bounceable, testnet, url_safe = FORMS[key]
    expected = parse(raw, network="mainnet")
    assert parse(text, network="testnet") == expected
    assert expected.friendly(bounceable, testnet=testnet, url_safe=url_safe) == text
    if testnet:
        with pytest.raises(InvalidAddress, match="is a testnet address; use a mainnet address"):
            parse(text, network="mainnet")
    else:
        assert parse(text, network="mainnet") == expected


def test_forms_agree_with_pytoniq_core() -> None:
    for _, raw, key, text in FRIENDLY:
        bounceable, testnet, url_safe = FORMS[key]
        pytoniq: Any = Address(raw)  # to_str carries no annotations
        theirs = pytoniq.to_str(is_user_friendly=True, is_url_safe=url_safe,
                                     is_bounceable=bounceable, is_test_only=testnet)
        assert theirs == text


def test_crc16_xmodem_check_value() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3  # the catalogue check value of CRC-16/XMODEM
    assert crc16_xmodem(b"") == 0


def test_the_usdt_master_matches_the_asset_catalogue() -> None:
    from krypton.domain.assets import USDT_TON

    vector = VECTORS["usdt_jetton_master_mainnet"]
    assert parse(vector["bounceable"], network="mainnet").raw == USDT_TON.contract


def test_equality_is_by_value_and_addresses_are_hashable() -> None:
    group = VECTORS["ton_core_tests"]
    forms = {parse(text, network="testnet") for text in group.values()}
    assert forms == {TonAddress(0, bytes.fromhex(group["raw"][2:]))}
    assert {parse(group["raw"], network="mainnet"): "x"}[parse(group["bounceable"], network="mainnet")] == "x"
    assert parse(group["raw"], network="mainnet") != parse(VECTORS["official_docs_example"]["raw"],
                                                            network="mainnet")


def test_surrounding_whitespace_is_ignored() -> None:
    text = VECTORS["official_docs_example"]["non_bounceable"]
    assert parse(f"  {text}\n", network="mainnet") == parse(text, network="mainnet")


def _friendly_bytes(flags: int, workchain: int, account: bytes, *, url_safe: bool = True) -> str:
    body = bytes([flags, workchain & 0xFF]) + account
    data = body + crc16_xmodem(body).to_bytes(2, "big")
    return (base64.urlsafe_b64encode if url_safe else base64.b64encode)(data).decode()


GOOD = VECTORS["official_docs_example"]["bounceable"]
HASH = bytes.fromhex(VECTORS["official_docs_example"]["raw"][2:])
MIXED = _friendly_bytes(0x11, 0, bytes([0xFB]) * 32, url_safe=False).replace("+", "-", 1)

INVALID = [
    ("", "is empty"),
    ("   ", "is empty"),
    (GOOD[:-1], "is 47 characters long; a user-friendly TON address has 48"),
    (GOOD + "A", "is 49 characters long"),
    (GOOD[:10] + ("A" if GOOD[10] != "A" else "B") + GOOD[11:], "wrong checksum"),
    (GOOD[:-1] + ("A" if GOOD[-1] != "A" else "B"), "wrong checksum"),
    ("!" + GOOD[1:], "not base64 or base64url"),
    (MIXED, "mixes the two alphabets"),
    (_friendly_bytes(0x12, 0, HASH), "unknown flag byte 0x12"),
    (_friendly_bytes(0x00, 0, HASH), "unknown flag byte 0x00"),
    (_friendly_bytes(0x11, 1, HASH), "workchain 1; only workchain 0"),
    (_friendly_bytes(0x51, 5, HASH), "workchain 5"),
    ("0:abc", "has 3 hex digits after the colon; a raw TON address has 64"),
    ("0:" + "a" * 65, "has 65 hex digits"),
    ("1:" + "a" * 64, "workchain 1"),
    ("-2:" + "a" * 64, "workchain -2"),
    ("0:" + "g" * 64, "not a TON address: the raw form is <workchain>:<64 hex digits>"),
    ("0x" + "a" * 64, "is 66 characters long"),
    (":" + "a" * 64, "not a TON address"),
    ("ton://transfer/" + GOOD, "not a TON address"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_addresses_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidAddress, match=message.replace("(", r"\(")) as caught:
        parse(text, network="testnet")
    error = caught.value
    assert isinstance(error, DomainError)
    assert (error.code, error.field) == ("invalid_address", "address")
    assert error.message.endswith(".")


def test_testnet_address_on_mainnet_names_the_fix() -> None:
    text = VECTORS["official_docs_example"]["non_bounceable_testnet"]
    with pytest.raises(InvalidAddress) as caught:
        parse(text, network="mainnet")
    assert caught.value.message == f"'{text}' is a testnet address; use a mainnet address."


def test_long_input_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidAddress) as caught:
        parse("E" * 500, network="mainnet")
    assert len(caught.value.message) < 200


def test_unknown_network_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="network"):
        parse(GOOD, network="devnet")  # type: ignore[arg-type]


@pytest.mark.parametrize(("workchain", "account"), [(1, HASH), (0, HASH[:31]), (-1, HASH + b"\0")])
def test_constructor_rejects_what_cannot_be_an_address(workchain: int, account: bytes) -> None:
    with pytest.raises(InvalidAddress):
        TonAddress(workchain, account)


addresses = st.builds(TonAddress, st.sampled_from([0, -1]), st.binary(min_size=32, max_size=32))


@given(addresses, st.booleans(), st.booleans(), st.booleans())
def test_friendly_raw_round_trip(
    address: TonAddress, bounceable: bool, testnet: bool, url_safe: bool
) -> None:
    text = address.friendly(bounceable, testnet=testnet, url_safe=url_safe)
    assert len(text) == 48
    assert text[0] in ({"k", "0"} if testnet else {"E", "U"})
    assert parse(text, network="testnet") == address
    assert parse(address.raw, network="mainnet") == address
    assert parse(address.raw.upper(), network="mainnet") == address
    assert address.raw == f"{address.workchain}:{address.hash.hex()}"
    if testnet:
        with pytest.raises(InvalidAddress, match="testnet address"):
            parse(text, network="mainnet")
    else:
        assert parse(text, network="mainnet") == address


@given(addresses, st.integers(min_value=0, max_value=47), st.characters(
    categories=(), include_characters="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/"))
def test_any_single_character_change_is_rejected(address: TonAddress, position: int, char: str) -> None:
    text = address.friendly(True)
    changed = text[:position] + char + text[position + 1:]
    if changed == text or {text[position], char} in ({"-", "+"}, {"_", "/"}):
        return  # unchanged, or the same digit in the other base64 alphabet (the same address)
    with pytest.raises(InvalidAddress):
        parse(changed, network="testnet")


@given(st.binary(max_size=64))
def test_crc16_agrees_with_pytoniq_core(data: bytes) -> None:
    assert crc16_xmodem(data).to_bytes(2, "big") == crc16(data)


@given(addresses, st.booleans(), st.booleans(), st.booleans())
def test_parsing_agrees_with_pytoniq_core_on_valid_addresses(
    address: TonAddress, bounceable: bool, testnet: bool, url_safe: bool
) -> None:
    # Kept hand-written for its strictness and messages (address.py); on valid input both
    # must read the same account.
    text = address.friendly(bounceable, testnet=testnet, url_safe=url_safe)
    for form in (text, address.raw, address.raw.upper()):
        theirs: Any = Address(form)
        assert (theirs.wc, theirs.hash_part) == (address.workchain, address.hash)
        assert parse(form, network="testnet") == address
    assert Address(text).is_bounceable == bounceable and Address(text).is_test_only == testnet
