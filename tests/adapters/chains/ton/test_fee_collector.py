"""The Python side of the fee collector against the vectors written by the sandbox tests.

contracts/vectors/fee-collector-vectors.json is produced by contracts/tests/vectors.spec.ts
(code BOC, data cell, state init, address and get_fee results run on the real contract).
If the contract is recompiled and its code changes, these tests fail until the vectors
and the shipped fee_collector_code.boc are refreshed together.
"""

from __future__ import annotations

import base64
import json
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton import fee_collector as fc
from krypton.adapters.chains.ton.address import InvalidAddress, TonAddress, parse
from krypton.adapters.chains.ton.cells import Reader, cell_to_boc
from krypton.domain.errors import DomainError

VECTORS_PATH = Path(__file__).parents[4] / "contracts" / "vectors" / "fee-collector-vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
CONFIGS: list[dict[str, Any]] = VECTORS["configs"]
FEES = [(c, f) for c in CONFIGS for f in c["fees"]]

OWNER = TonAddress(0, bytes.fromhex("11" * 32))
DESTINATION = TonAddress(0, bytes.fromhex("22" * 32))


def config_of(vector: dict[str, Any]) -> fc.FeeCollectorConfig:
    return fc.FeeCollectorConfig.parse(
        vector["owner"],
        vector["destination"],
        vector["fee_bps"],
        int(vector["min_withdrawal"]),
        network="mainnet",
    )


def b64url_cell(text: str) -> Cell:
    cell: Cell = Cell.one_from_boc(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return cell


# --- the shipped code is the vectors' code ------------------------------------------


def test_shipped_code_is_the_vectors_code_byte_for_byte() -> None:
    shipped = files("krypton.adapters.chains.ton").joinpath(fc.CODE_FILE).read_bytes()
    assert shipped == base64.b64decode(VECTORS["code_boc_base64"], validate=True)
    assert VECTORS["code_hash_hex"] == fc.CODE_HASH_HEX
    assert fc.code().hash.hex() == VECTORS["code_hash_hex"]
    assert cell_to_boc(fc.code()) == VECTORS["code_boc_base64"]


def test_code_is_loaded_once() -> None:
    assert fc.code() is fc.code()


def test_constants_and_op_codes_match_the_contract() -> None:
    assert VECTORS["workchain"] == 0
    assert VECTORS["constants"] == {
        "fee_denominator": fc.FEE_DENOMINATOR,
        "storage_floor": str(fc.STORAGE_FLOOR),
        "min_net": str(fc.MIN_NET),
    }
    ops = VECTORS["ops"]
    assert ops["payment_text_comment"] == 0
    assert int(ops["top_up"], 16) == fc.OP_TOP_UP
    assert int(ops["force_withdraw"], 16) == fc.OP_FORCE_WITHDRAW
    assert int(ops["set_min_withdrawal"], 16) == fc.OP_SET_MIN_WITHDRAWAL
    assert int(ops["fees_withdrawn_out"], 16) == fc.OP_FEES_WITHDRAWN
    assert int(ops["excesses_out"], 16) == fc.OP_EXCESSES


# --- every example config: data cell, state init, address ---------------------------


@pytest.mark.parametrize("vector", CONFIGS, ids=[c["name"] for c in CONFIGS])
def test_data_cell_matches_vector(vector: dict[str, Any]) -> None:
    data = fc.data_cell(config_of(vector))
    assert cell_to_boc(data) == vector["data_boc_base64"]
    assert data.hash.hex() == vector["data_hash_hex"]


@pytest.mark.parametrize("vector", CONFIGS, ids=[c["name"] for c in CONFIGS])
def test_state_init_matches_vector(vector: dict[str, Any]) -> None:
    config = config_of(vector)
    assert fc.state_init_boc(config) == vector["state_init_boc_base64"]
    assert fc.state_init(config).hash.hex() == vector["state_init_hash_hex"]


@pytest.mark.parametrize("vector", CONFIGS, ids=[c["name"] for c in CONFIGS])
def test_address_matches_vector(vector: dict[str, Any]) -> None:
    address = fc.address(config_of(vector))
    assert address.raw == vector["address_raw"]
    assert address.friendly(bounceable=True) == vector["address_bounceable"]
    assert address.friendly(bounceable=False) == vector["address_non_bounceable"]


@pytest.mark.parametrize(("vector", "fee"), FEES, ids=[f"{c['name']}-{f['amount']}" for c, f in FEES])
def test_fee_split_matches_get_fee(vector: dict[str, Any], fee: dict[str, str]) -> None:
    assert fc.fee_split(int(fee["amount"]), vector["fee_bps"]) == (int(fee["fee"]), int(fee["net"]))


# --- layout details ------------------------------------------------------------------


def test_data_cell_layout() -> None:
    config = fc.FeeCollectorConfig(OWNER, DESTINATION, 250, 1_000_000_000)
    data = fc.data_cell(config)
    assert len(data.bits) == 3 * 4 + 64 + 32 == 108
    assert len(data.refs) == 1
    reader = Reader(data)
    assert [reader.coins(), reader.coins(), reader.coins(), reader.uint(64), reader.uint(32)] == [0] * 5
    stored = Reader(reader.ref())
    assert stored.address() == OWNER
    assert stored.address() == DESTINATION
    assert stored.uint(16) == 250
    assert stored.coins() == 1_000_000_000
    assert stored.remaining_bits == 0 and stored.remaining_refs == 0


def test_state_init_has_only_code_and_data() -> None:
    cell = fc.state_init(fc.FeeCollectorConfig(OWNER, DESTINATION, 250, 1))
    reader = Reader(cell)
    assert reader.uint(5) == 0b00110  # no split_depth, no special, code, data, no library
    assert reader.remaining_bits == 0
    assert [ref.hash for ref in cell.refs] == [
        fc.code().hash,
        fc.data_cell(fc.FeeCollectorConfig(OWNER, DESTINATION, 250, 1)).hash,
    ]


def test_the_form_an_address_was_typed_in_does_not_change_the_collector() -> None:
    forms = [OWNER.raw, OWNER.friendly(bounceable=True), OWNER.friendly(bounceable=False)]
    addresses = {
        fc.address(fc.FeeCollectorConfig.parse(form, DESTINATION.raw, 250, 1, network="testnet"))
        for form in [*forms, OWNER.friendly(bounceable=True, testnet=True)]
    }
    assert len(addresses) == 1


def test_address_in_another_workchain_uses_the_same_hash() -> None:
    config = fc.FeeCollectorConfig(OWNER, DESTINATION, 250, 1)
    assert fc.address(config, workchain=-1) == TonAddress(-1, fc.address(config).hash)


def test_top_up_body() -> None:
    reader = Reader(fc.top_up_body(42))
    assert reader.uint(32) == fc.OP_TOP_UP == 0xAE98DB22
    assert reader.uint(64) == 42
    assert reader.remaining_bits == 0 and reader.remaining_refs == 0
    assert fc.top_up_body().hash == fc.top_up_body(0).hash
    for bad in (-1, 1 << 64):
        with pytest.raises(ValueError):
            fc.top_up_body(bad)


# --- deploy link ---------------------------------------------------------------------


def test_deploy_link_carries_address_amount_state_init_and_top_up() -> None:
    vector = CONFIGS[0]
    config = config_of(vector)
    link = fc.deploy_link(config, 100_000_000)
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("ton", "transfer", "/" + vector["address_bounceable"])
    query = parse_qs(parts.query, strict_parsing=True)
    assert list(query) == ["amount", "init", "bin"]
    assert query["amount"] == ["100000000"]
    for value in (query["init"][0], query["bin"][0]):
        assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert b64url_cell(query["init"][0]).hash.hex() == vector["state_init_hash_hex"]
    assert b64url_cell(query["bin"][0]).hash == fc.top_up_body().hash


def test_deploy_link_on_testnet_uses_the_testnet_form() -> None:
    config = config_of(CONFIGS[0])
    link = fc.deploy_link(config, fc.MIN_DEPLOY_AMOUNT, testnet=True)
    shown = urlsplit(link).path.lstrip("/")
    assert shown.startswith("kQ")
    assert parse(shown, network="testnet") == fc.address(config)


@pytest.mark.parametrize("amount", [0, -1, fc.STORAGE_FLOOR, fc.MIN_DEPLOY_AMOUNT - 1, 1 << 120, True])
def test_deploy_link_refuses_an_amount_below_the_floor(amount: int) -> None:
    with pytest.raises(DomainError) as info:
        fc.deploy_link(config_of(CONFIGS[0]), amount)
    assert info.value.field == "amount"


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize("bps", [10_001, 10_000, -1, 65_536, True, 2.5, "250"])
def test_bad_fee_bps_is_refused(bps: Any) -> None:
    with pytest.raises(DomainError) as info:
        fc.FeeCollectorConfig(OWNER, DESTINATION, bps, 1)
    assert info.value.field == "fee_bps"
    assert "fee_bps" in info.value.message


@pytest.mark.parametrize("amount", [-1, 1 << 120, False, 1.0])
def test_bad_min_withdrawal_is_refused(amount: Any) -> None:
    with pytest.raises(DomainError) as info:
        fc.FeeCollectorConfig(OWNER, DESTINATION, 250, amount)
    assert info.value.field == "min_withdrawal"


def test_extreme_valid_values_are_accepted() -> None:
    fc.FeeCollectorConfig(OWNER, DESTINATION, 0, 0)
    fc.FeeCollectorConfig(OWNER, DESTINATION, 9_999, (1 << 120) - 1)


def test_addresses_must_be_ton_addresses() -> None:
    with pytest.raises(DomainError) as info:
        fc.FeeCollectorConfig(OWNER.raw, DESTINATION, 250, 1)  # type: ignore[arg-type]
    assert info.value.field == "owner"


@pytest.mark.parametrize("field", ["owner", "destination"])
def test_testnet_address_is_refused_on_mainnet(field: str) -> None:
    texts = {"owner": OWNER.raw, "destination": DESTINATION.raw}
    texts[field] = OWNER.friendly(bounceable=True, testnet=True)
    with pytest.raises(InvalidAddress) as info:
        fc.FeeCollectorConfig.parse(texts["owner"], texts["destination"], 250, 1, network="mainnet")
    assert info.value.field == field
    assert "testnet" in info.value.message
    assert isinstance(info.value, DomainError)
    # the same text is fine on testnet
    fc.FeeCollectorConfig.parse(texts["owner"], texts["destination"], 250, 1, network="testnet")


# --- fee split and the smallest accepted payment --------------------------------------


def test_fee_split_rounds_down() -> None:
    assert fc.fee_split(399, 250) == (9, 390)  # 9.975 -> 9
    assert fc.fee_split(0, 250) == (0, 0)


def test_min_payment_matches_the_readme() -> None:
    assert fc.min_payment(250) == 10_256_410
    assert fc.min_payment(0) == fc.MIN_NET


@pytest.mark.parametrize("bps", [0, 1, 100, 250, 333, 5_000, 9_999])
def test_min_payment_is_the_exact_boundary(bps: int) -> None:
    smallest = fc.min_payment(bps)
    assert fc.fee_split(smallest, bps)[1] >= fc.MIN_NET
    assert fc.fee_split(smallest - 1, bps)[1] < fc.MIN_NET


def test_min_payment_refuses_a_bps_no_payment_can_pass() -> None:
    with pytest.raises(DomainError):
        fc.min_payment(10_000)
