"""A merchant's fee-collector contract (contracts/fee_collector.fc), as Krypton tracks it.

The contract receives the merchant's TON payments, keeps the platform fee and forwards the
rest to the merchant's wallet in the same transaction, so Krypton never holds that money.
A collector is `pending` from the moment its deploy information is handed out until
Krypton has read the deployed contract's configuration back from the chain; only then is
it `active` and shown to payers (a payment to an undeployed address would bounce or, sent
non-bounceable, sit there unprocessed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from krypton.domain import fees, transitions

# contracts/fee_collector.fc refuses (bounces, exit 102) a payment unless value - fee is at
# least MIN_NET nanoton: what pays the forward's gas and fees.
MIN_NET = 10_000_000


def min_payment(fee_bps: int) -> int:
    """The smallest TON payment the contract accepts: value - floor(value*bps/10000) >= MIN_NET,
    i.e. value * (10000 - bps) > (MIN_NET - 1) * 10000. 10 256 410 nanoton at 2.5 %."""
    denominator = fees.MAX_FEE_BPS - fees.validate_bps(fee_bps)
    if denominator == 0:
        raise ValueError("a collector with a 100 % fee accepts no payment")
    return (MIN_NET - 1) * fees.MAX_FEE_BPS // denominator + 1


class CollectorStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"


TRANSITIONS = {CollectorStatus.PENDING: frozenset({CollectorStatus.ACTIVE})}


@dataclass(slots=True)
class FeeCollector:
    merchant_id: str
    address: str  # raw form of the contract's address
    owner: str  # who receives the fees (the platform's TON address), raw
    destination: str  # the merchant's wallet that receives the net, raw
    fee_bps: int  # fixed in the contract's data at deploy
    min_withdrawal: int  # nanoton: fees are flushed to the owner once they reach this
    status: CollectorStatus
    created_at: datetime
    activated_at: datetime | None = None

    def activate(self, now: datetime) -> None:
        self.status = transitions.check(TRANSITIONS, self.status, CollectorStatus.ACTIVE,
                                        "fee collector")
        self.activated_at = now

    def same_contract(self, owner: str, destination: str, fee_bps: int, min_withdrawal: int) -> bool:
        """Whether a deployed contract's configuration is the one this collector describes."""
        return (owner, destination, fee_bps, min_withdrawal) == (
            self.owner, self.destination, self.fee_bps, self.min_withdrawal)


@dataclass(frozen=True, slots=True)
class CollectorStats:
    """What the contract's get_stats answers (nanoton, except the count and the time)."""

    accumulated: int
    total_collected: int
    total_withdrawn: int
    payment_count: int
    last_withdrawal_time: int
    min_withdrawal: int
    fee_bps: int


def split_payments(amounts: Iterable[int], fee_bps: int) -> fees.FeeSplit:
    """The contract splits each payment on its own (fee = floor per payment), so the fee of
    several payments is the sum of their floors, which can be less than the floor of the sum."""
    parts = [fees.split(amount, fee_bps) for amount in amounts]
    return fees.FeeSplit(sum(p.gross for p in parts), sum(p.fee for p in parts),
                         sum(p.net for p in parts))
