"""Fee collectors in the domain: activation, per-payment fee split, the contract's minimum,
and a settlement whose net was forwarded on chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krypton.domain import collector, fees, ledger
from krypton.domain.collector import CollectorStatus, FeeCollector
from krypton.domain.errors import IllegalTransition
from krypton.domain.settlement import Payout, settle

NOW = datetime(2026, 11, 24, tzinfo=UTC)
VECTORS = json.loads((Path(__file__).parents[2] / "contracts/vectors/fee-collector-vectors.json").read_text())


def _collector() -> FeeCollector:
    return FeeCollector("mer_1", "0:" + "aa" * 32, "0:" + "11" * 32, "0:" + "22" * 32, 250,
                        10**9, CollectorStatus.PENDING, NOW)


def test_a_collector_activates_once() -> None:
    c = _collector()
    c.activate(NOW)
    assert (c.status, c.activated_at) == (CollectorStatus.ACTIVE, NOW)
    with pytest.raises(IllegalTransition):
        c.activate(NOW)


def test_min_payment_is_the_smallest_amount_the_contract_accepts() -> None:
    for bps in (0, 1, 100, 250, 5000, 9999):
        smallest = collector.min_payment(bps)
        assert smallest - fees.split(smallest, bps).fee >= collector.MIN_NET
        assert (smallest - 1) - fees.split(smallest - 1, bps).fee < collector.MIN_NET
    assert collector.min_payment(250) == 10_256_410  # contracts/README.md
    assert str(collector.MIN_NET) == VECTORS["constants"]["min_net"]


def test_split_payments_matches_the_sandbox_fee_vectors() -> None:
    for config in VECTORS["configs"]:
        for row in config["fees"]:
            split = collector.split_payments([int(row["amount"])], config["fee_bps"])
            assert (split.fee, split.net) == (int(row["fee"]), int(row["net"]))


@given(st.lists(st.integers(0, 10**15), min_size=1, max_size=20), st.integers(0, 9999))
def test_split_payments_is_the_sum_of_per_payment_floors(amounts: list[int], bps: int) -> None:
    split = collector.split_payments(amounts, bps)
    assert split.gross == sum(amounts) == split.fee + split.net
    assert split.fee == sum(a * bps // 10_000 for a in amounts)
    assert split.fee <= fees.split(sum(amounts), bps).fee  # never more than one split of the sum


def test_settlement_on_chain_forwards_the_net_and_keeps_the_fee_in_the_contract() -> None:
    on_chain = collector.split_payments([3 * 10**9 + 1, 2 * 10**9 + 1], 250)
    s = settle("set_1", "mer_1", "inv_1", "TON", 0, 100, NOW, on_chain=on_chain,
               collector_address="0:" + "aa" * 32)
    assert (s.gross, s.fee, s.net) == (5 * 10**9 + 2, on_chain.fee, on_chain.net)
    assert (s.forwarded, s.collector_fee, s.payout) == (on_chain.net, on_chain.fee, Payout.ON_CHAIN)
    entry = ledger.settlement(s.id, "mer_1", "TON", s.split(), s.collector_fee)
    forward = ledger.forwarded_on_chain(s.id, "mer_1", "TON", s.forwarded)
    balances = ledger.balances([*entry.postings, *forward.postings])
    assert balances[("merchant:mer_1:TON", "TON")] == 0  # nothing custodial
    assert balances[("collector_fees:mer_1:TON", "TON")] == on_chain.fee
    assert balances[("external:TON", "TON")] == on_chain.net
    assert ("fees:TON", "TON") not in balances or balances[("fees:TON", "TON")] == 0


def test_mixed_settlement_splits_each_part_by_its_own_rule() -> None:
    on_chain = collector.split_payments([10**9], 250)
    s = settle("set_1", "mer_1", "inv_1", "TON", 10**9, 100, NOW, on_chain=on_chain,
               collector_address="0:" + "aa" * 32)
    assert s.payout is Payout.MIXED
    assert s.fee == 10**7 + on_chain.fee and s.gross == s.fee + s.net
    custodial = settle("set_2", "mer_1", "inv_2", "TON", 10**9, 100, NOW)
    assert (custodial.payout, custodial.forwarded, custodial.collector_address) == (
        Payout.BALANCE, 0, None)
