"""domain/signer_policy.py: every refusal, in a table, and the limits' properties."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krypton.domain import ledger
from krypton.domain.signer_policy import (
    DestinationKind,
    Facts,
    LedgerEntry,
    Limits,
    Policy,
    Refusal,
    RequestKind,
    TransferRequest,
    decide,
)

TON = 10**9
POLICY = Policy({"TON": Limits(per_transfer=10 * TON, per_day=25 * TON)})
REQUEST = TransferRequest("po_1", RequestKind.PAYOUT, "TON", 5 * TON, "0:" + "ab" * 32,
                          DestinationKind.MERCHANT_WALLET, 7)


def entry(amount: int = 5 * TON, kind: str = "payout", asset: str = "TON") -> LedgerEntry:
    return LedgerEntry(7, kind, (ledger.Posting("merchant:mer_1:TON", asset, -amount),
                                 ledger.Posting(ledger.external(asset), asset, amount)))


FACTS = Facts(spent_today=0, entry=entry(), entry_used=False, seen=False)


@pytest.mark.parametrize(("change", "facts", "refusal"), [
    ({}, {}, None),
    ({"amount": 10 * TON + 1}, {"entry": entry(10 * TON + 1)}, Refusal.OVER_TRANSFER_LIMIT),
    ({}, {"spent_today": 20 * TON + 1}, Refusal.OVER_DAILY_LIMIT),
    ({}, {"spent_today": 20 * TON}, None),  # exactly the daily limit is allowed
    ({"destination_kind": DestinationKind.TREASURY}, {}, Refusal.DESTINATION_KIND),
    ({"kind": RequestKind.REFUND}, {}, Refusal.DESTINATION_KIND),
    ({"asset": "USDT"}, {}, Refusal.UNKNOWN_ASSET),
    ({}, {"entry": None}, Refusal.LEDGER_ENTRY_MISSING),
    ({}, {"entry": entry(4 * TON)}, Refusal.LEDGER_ENTRY_MISMATCH),
    ({}, {"entry": entry(kind="refund")}, Refusal.LEDGER_ENTRY_MISMATCH),
    ({}, {"entry_used": True}, Refusal.LEDGER_ENTRY_USED),
    ({}, {"seen": True}, Refusal.REPLAYED),
    # a replay is a replay, whatever else is wrong with it
    ({"amount": 99 * TON}, {"seen": True, "entry": None}, Refusal.REPLAYED),
])
def test_decisions(change: dict[str, object], facts: dict[str, object], refusal: Refusal | None) -> None:
    decision = decide(POLICY, dataclasses.replace(REQUEST, **change),  # type: ignore[arg-type]
                      dataclasses.replace(FACTS, **facts))  # type: ignore[arg-type]
    assert decision.refusal == refusal
    assert decision.allowed == (refusal is None)
    assert decision.reason  # every decision says why


@pytest.mark.parametrize(("kind", "destination"), [
    (RequestKind.PAYOUT, DestinationKind.MERCHANT_WALLET), (RequestKind.REFUND, DestinationKind.PAYER_WALLET),
    (RequestKind.SUPPLIER_PAYMENT, DestinationKind.SUPPLIER),
    (RequestKind.FEE_SWEEP, DestinationKind.TREASURY)])
def test_each_kind_goes_to_its_own_destination_kind_only(kind: RequestKind,
                                                        destination: DestinationKind) -> None:
    for other in DestinationKind:
        request = dataclasses.replace(REQUEST, kind=kind, destination_kind=other)
        facts = dataclasses.replace(FACTS, entry=entry(kind=kind.value))
        assert decide(POLICY, request, facts).allowed == (other == destination)


@given(amount=st.integers(min_value=1, max_value=30 * TON),
       spent=st.integers(min_value=0, max_value=30 * TON))
def test_allowed_exactly_within_both_limits(amount: int, spent: int) -> None:
    decision = decide(POLICY, dataclasses.replace(REQUEST, amount=amount),
                      dataclasses.replace(FACTS, spent_today=spent, entry=entry(amount)))
    assert decision.allowed == (amount <= 10 * TON and spent + amount <= 25 * TON)


def test_limits_must_be_positive_and_consistent() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limits(0, 10)
    with pytest.raises(ValueError, match="cannot exceed"):
        Limits(11, 10)
