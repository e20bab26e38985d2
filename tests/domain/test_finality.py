"""Confirmation counting and solidification from block heights."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from krypton.adapters.chains.tron.trongrid import parse_block_number
from krypton.domain.finality import confirmations, is_solidified
from tests.adapters.chains.tron.recorded import load

heights = st.integers(min_value=0, max_value=10**9)


def test_examples() -> None:
    assert confirmations(100, 100) == 1
    assert confirmations(118, 100) == 19
    assert confirmations(99, 100) == 0
    assert confirmations(0, 10**9) == 0
    assert is_solidified(100, 100)
    assert is_solidified(101, 100)
    assert not is_solidified(99, 100)


def test_recorded_head_against_recorded_receipt() -> None:
    head = parse_block_number(load("node-wallet-getnowblock-nile.jsonc"))  # 66987627
    tx_block = load("node-wallet-gettransactioninfobyid-nile-contract-call.jsonc")["blockNumber"]  # 66985120
    assert confirmations(head, tx_block) == 2508
    assert is_solidified(head, tx_block)


@given(heights, heights)
def test_properties(head: int, tx_block: int) -> None:
    count = confirmations(head, tx_block)
    assert count >= 0
    assert (count >= 1) == is_solidified(head, tx_block)
    assert count == (head - tx_block + 1 if head >= tx_block else 0)
    assert confirmations(head + 1, tx_block) == (count + 1 if head + 1 >= tx_block else 0)


def test_ton_is_final_only_in_a_masterchain_block_at_or_below_the_head() -> None:
    from krypton.domain.finality import Finality, ton

    assert ton(100, 100) == Finality(1, True)
    assert ton(101, 100) == Finality(1, True)
    assert ton(99, 100) == Finality(0, False)  # the indexer is ahead of the head we know
    assert ton(100, None) == Finality(0, False)  # in no masterchain block yet


@given(heights, st.one_of(st.none(), heights))
def test_ton_finality_needs_a_known_block(head: int, tx_block: int | None) -> None:
    from krypton.domain.finality import ton

    result = ton(head, tx_block)
    assert result.final is (tx_block is not None and tx_block <= head)
    assert result.confirmations == (1 if result.final else 0)
