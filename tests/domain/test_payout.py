"""The payout's transition table and its ledger entries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krypton.domain import ledger
from krypton.domain.errors import DomainError
from krypton.domain.payout import (
    TRANSITIONS,
    InvalidTransition,
    Payout,
    PayoutStatus,
    check_asset,
    covers,
)

NOW = datetime(2026, 12, 7, tzinfo=UTC)
S = PayoutStatus


def _payout(amount: int = 5) -> Payout:
    return Payout("po_1", "mer_1", "TON", amount, "0:" + "11" * 32, NOW, NOW)


def test_the_table_names_every_status_and_failed_is_final() -> None:
    assert set(TRANSITIONS) == set(PayoutStatus)
    assert TRANSITIONS[S.FAILED] == frozenset()
    assert TRANSITIONS[S.REQUESTED] == {S.QUEUED}  # nothing skips the ledger entry of queued


def test_the_happy_path_and_a_late_bounce() -> None:
    payout = _payout()
    for to in (S.QUEUED, S.SENT, S.CONFIRMED):
        payout.move(to, NOW)
    payout.fail("bounced", NOW)
    assert payout.changes == [(S.REQUESTED, S.QUEUED), (S.QUEUED, S.SENT), (S.SENT, S.CONFIRMED),
                              (S.CONFIRMED, S.FAILED)]
    with pytest.raises(InvalidTransition, match="cannot go from failed to sent"):
        payout.move(S.SENT, NOW)


@pytest.mark.parametrize("amount", [0, -1, True])
def test_an_amount_is_a_positive_integer(amount: int) -> None:
    with pytest.raises(DomainError, match="positive integer"):
        _payout(amount)


def test_usdt_on_tron_is_refused_with_the_reason() -> None:
    with pytest.raises(DomainError, match="Tron keys and energy"):
        check_asset("USDT_TRC20")
    with pytest.raises(DomainError, match="not XTR"):
        check_asset("XTR")
    check_asset("TON")
    check_asset("USDT_TON")


@given(st.integers(min_value=0, max_value=10**18), st.integers(min_value=1, max_value=10**18))
def test_a_payout_covered_never_leaves_a_negative_balance(available: int, amount: int) -> None:
    assert covers(available, amount) == (available - amount >= 0)


@given(st.integers(min_value=1, max_value=10**18))
def test_requested_sent_and_failed_return_the_balance_to_the_last_unit(amount: int) -> None:
    entries = [ledger.payout_requested("po_1", "mer_1", "TON", amount),
               ledger.payout_sent("po_1", "mer_1", "TON", amount),
               ledger.payout_failed("po_1", "mer_1", "TON", amount, sent=True)]
    totals = ledger.balances(p for e in entries for p in e.postings)
    assert totals[(ledger.merchant_account("mer_1", "TON"), "TON")] == 0
    assert totals[(ledger.payouts_pending("mer_1", "TON"), "TON")] == 0
    assert totals[(ledger.external("TON"), "TON")] == 0
    # The entry the signer checks: kind "payout", exactly the amount out to external.
    assert entries[1].kind == "payout"
    assert [p.amount for p in entries[1].postings if p.account == "external:TON"] == [amount]
