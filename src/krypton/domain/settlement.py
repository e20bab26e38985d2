"""Settlement of a paid invoice: gross = fee + net, exactly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from krypton.domain import fees


class SettlementStatus(StrEnum):
    COMPLETED = "completed"


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

    def split(self) -> fees.FeeSplit:
        return fees.FeeSplit(self.gross, self.fee, self.net)


def settle(settlement_id: str, merchant_id: str, invoice_id: str, asset: str, gross: int,
           fee_bps: int, now: datetime) -> Settlement:
    split = fees.split(gross, fee_bps)
    return Settlement(settlement_id, merchant_id, invoice_id, asset, split.gross, split.fee,
                      split.net, fee_bps, SettlementStatus.COMPLETED, now)
