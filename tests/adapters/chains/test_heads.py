"""Each chain's head with its time (adapters/chains/heads.py), parsed from the recorded real
answers: the chain's clock that expiry and the clock skew are judged by."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from krypton.adapters.chains.heads import parse_ton_head, parse_tron_head
from krypton.adapters.chains.ton.toncenter import PayloadError
from krypton.adapters.chains.tron.trongrid import MalformedResponse
from krypton.app.chain_time import ChainHead
from tests.adapters.chains.ton.recorded import load as load_ton
from tests.adapters.chains.tron.recorded import load as load_tron


def test_the_ton_head_is_the_last_masterchain_block_with_its_gen_utime() -> None:
    head = parse_ton_head(load_ton("toncenter-v3-masterchainInfo-testnet.json"))
    # "seqno": 21082664, "gen_utime": "1721068768" (a decimal string, as TON Center sends it)
    assert head == ChainHead(21082664, datetime(2024, 7, 15, 18, 39, 28, tzinfo=UTC))


def test_the_tron_head_is_the_now_block_with_its_millisecond_timestamp() -> None:
    head = parse_tron_head(load_tron("node-wallet-getnowblock-nile.jsonc"))
    # "number": 66987627, "timestamp": 1777445307000
    assert head == ChainHead(66987627, datetime.fromtimestamp(1777445307, UTC))


def test_milliseconds_are_kept_exactly() -> None:
    body = {"block_header": {"raw_data": {"number": 5, "timestamp": 1777445307999}}}
    assert parse_tron_head(body).time == datetime(2026, 4, 29, 6, 48, 27, 999000, tzinfo=UTC)


def test_block_zero_has_no_number_in_protobuf_json() -> None:
    assert parse_tron_head({"block_header": {"raw_data": {"timestamp": 1000}}}).number == 0


@pytest.mark.parametrize("payload", [
    [], {"first": {}}, {"last": []}, {"last": {"seqno": 1}}, {"last": {"seqno": 1, "gen_utime": "soon"}},
    {"last": {"seqno": -1, "gen_utime": 5}}, {"last": {"seqno": 1, "gen_utime": True}},
    {"last": {"seqno": 1, "gen_utime": 1.5}},
])
def test_a_malformed_masterchain_info_is_refused_with_where(payload: Any) -> None:
    with pytest.raises(PayloadError, match="response"):
        parse_ton_head(payload)


@pytest.mark.parametrize("body", [
    None, {}, {"block_header": {}}, {"block_header": {"raw_data": {"number": 3}}},
    {"block_header": {"raw_data": {"number": 3, "timestamp": "١٢"}}},
    {"block_header": {"raw_data": {"number": "x", "timestamp": 1}}},
])
def test_a_malformed_now_block_is_refused_with_where(body: Any) -> None:
    with pytest.raises(MalformedResponse, match="block"):
        parse_tron_head(body)
