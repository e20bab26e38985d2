"""The hot wallet's messages are byte for byte what pytoniq 0.1.43 builds and signs
(wallet-vectors.json, generated with it), for both wallet versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytoniq_core.boc.builder import Builder

from krypton.adapters.chains.ton.address import parse
from krypton.adapters.chains.ton.comments import build_comment
from krypton.adapters.signer.wallet import (
    HotWallet,
    OutMessage,
    WalletError,
    WalletVersion,
    code,
    default_wallet_id,
)

VECTORS = json.loads((Path(__file__).parent / "wallet-vectors.json").read_text())
SEED = bytes.fromhex(VECTORS["seed_hex"])


def messages() -> list[OutMessage]:
    return [OutMessage(parse(m["destination"], network="mainnet"), m["value"],
                       build_comment(m["comment"]) if m["comment"] else Builder().end_cell(), m["bounce"])
            for m in VECTORS["messages"]]


@pytest.mark.parametrize("version", list(WalletVersion))
def test_body_address_and_wallet_id_match_pytoniq(version: WalletVersion) -> None:
    vector = VECTORS[version.value]
    wallet = HotWallet(SEED, version, network="mainnet")
    body: Any = wallet.body(vector["seqno"], VECTORS["valid_until"], messages())

    assert body.to_boc().hex() == vector["body_boc_hex"]
    assert wallet.address.raw == vector["address"]
    assert wallet.wallet_id == vector["wallet_id"]
    assert wallet.public_key.hex() == VECTORS["public_key_hex"]
    untyped: Any = code(version)
    assert untyped.hash.hex() == vector["code_hash_hex"]


def test_v5r1_wallet_id_depends_on_the_network() -> None:
    assert default_wallet_id(WalletVersion.V5R1, "testnet") == VECTORS["v5r1"]["testnet_wallet_id"]
    assert default_wallet_id(WalletVersion.V5R1, "devnet") == VECTORS["v5r1"]["testnet_wallet_id"]


@pytest.mark.parametrize(("version", "limit"), [(WalletVersion.V4R2, 4), (WalletVersion.V5R1, 255)])
def test_an_external_carries_at_most_the_wallet_limit(version: WalletVersion, limit: int) -> None:
    wallet = HotWallet(SEED, version, network="mainnet")
    one = messages()[0]
    wallet.sign(1, 2_000_000_000, [one] * limit)
    with pytest.raises(WalletError, match=f"at most {limit}"):
        wallet.sign(1, 2_000_000_000, [one] * (limit + 1))
    with pytest.raises(WalletError, match="at least one"):
        wallet.sign(1, 2_000_000_000, [])


def test_the_key_never_shows_in_the_repr() -> None:
    wallet = HotWallet(SEED, WalletVersion.V5R1, network="mainnet")
    assert SEED.hex() not in repr(wallet) and wallet.address.raw in repr(wallet)
