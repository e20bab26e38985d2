"""Settlement of a paid invoice: gross = fee + net, exactly.

Money paid to the merchant's fee-collector contract was split by the contract itself, per
payment, and its net already went on to the merchant's wallet: that part is `forwarded`
(never a custodial balance) and its fee `collector_fee` stays in the contract until the
contract flushes it to the platform. Everything else is split here and credited to the
merchant's balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from krypton.domain import fees


class SettlementStatus(StrEnum):
    COMPLETED = "completed"


class Payout(StrEnum):
    BALANCE = "balance"  # net credited to the merchant's balance with Krypton
    ON_CHAIN = "on_chain"  # net forwarded on chain by the fee collector
    MIXED = "mixed"  # some of each (a payer used both the collector and the platform address)


@dataclass(frozen=True, slots=True)
class Settlement:
    id: str
    merchant_id: str
    invoice_id: str
    asset: str
    gross: int
    fee: int
    net: int
    fee_bps: int
    status: SettlementStatus
    created_at: datetime
    forwarded: int = 0
    collector_fee: int = 0
    collector_address: str | None = None

    def split(self) -> fees.FeeSplit:
        return fees.FeeSplit(self.gross, self.fee, self.net)

    @property
    def payout(self) -> Payout:
        on_chain = self.forwarded + self.collector_fee
        if on_chain == 0:
            return Payout.BALANCE
        return Payout.ON_CHAIN if on_chain == self.gross else Payout.MIXED


def settle(settlement_id: str, merchant_id: str, invoice_id: str, asset: str, gross: int,
           fee_bps: int, now: datetime, *, on_chain: fees.FeeSplit | None = None,
           collector_address: str | None = None) -> Settlement:
    """`gross` is what reached Krypton's own addresses; `on_chain` what the collector split."""
    split = fees.split(gross, fee_bps)
    chain = on_chain or fees.FeeSplit(0, 0, 0)
    return Settlement(settlement_id, merchant_id, invoice_id, asset, split.gross + chain.gross,
                      split.fee + chain.fee, split.net + chain.net, fee_bps,
                      SettlementStatus.COMPLETED, now, forwarded=chain.net,
                      collector_fee=chain.fee,
                      collector_address=collector_address if chain.gross else None)
