"""One TRC-20 `Transfer`, as seen by any Tron source, and which contracts count as USDT.

Only the real USDT contract counts (the Nile test token on testnet). A `Transfer` from any
other contract is a counterfeit: it is parsed and kept so the watcher can log it, but
`observed()` refuses to turn it into something that could be credited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from krypton.domain.assets import USDT_TRC20, Chain
from krypton.domain.payment import ObservedTransfer

Network = Literal["mainnet", "testnet"]


def _catalogue_contract() -> str:
    if USDT_TRC20.contract is None:  # the asset catalogue is the single source of the address
        raise RuntimeError("USDT_TRC20 has no contract address in krypton.domain.assets")
    return USDT_TRC20.contract


MAINNET_USDT = _catalogue_contract()
NILE_USDT = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"
USDT_CONTRACTS: dict[Network, frozenset[str]] = {
    "mainnet": frozenset({MAINNET_USDT}),
    "testnet": frozenset({NILE_USDT}),
}
TRANSFER_TOPIC = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


class CounterfeitTransfer(ValueError):
    """Raised when a counterfeit token transfer is about to be turned into a payment."""


def is_usdt(contract: str, network: Network = "mainnet") -> bool:
    """Whether `contract` (base58) is the USDT contract of `network`."""
    return contract in USDT_CONTRACTS[network]


@dataclass(frozen=True, slots=True)
class Trc20Transfer:
    """A TRC-20 Transfer event. Addresses are base58; `amount` is in the token's smallest unit.

    `index` is the event's position in its transaction (0 when the source does not say);
    `block` is None when the source gives no block number (TronGrid's per-account list).
    """

    tx_id: str
    contract: str
    from_: str
    to: str
    amount: int
    block_timestamp: int | None
    index: int = 0
    block: int | None = None
    counterfeit: bool = False

    @property
    def classification(self) -> Literal["usdt", "counterfeit"]:
        return "counterfeit" if self.counterfeit else "usdt"

    def observed(self, confirmations: int) -> ObservedTransfer:
        if self.counterfeit:
            raise CounterfeitTransfer(
                f"transfer {self.tx_id}#{self.index} comes from {self.contract}, not the USDT contract"
            )
        return ObservedTransfer(
            chain=Chain.TRON,
            tx_id=self.tx_id,
            index=self.index,
            asset=USDT_TRC20.code,
            amount=self.amount,
            destination=self.to,
            memo=None,
            block=self.block,
            confirmations=confirmations,
            sender=self.from_,
            block_time=block_time(self.block_timestamp),
        )


def block_time(block_timestamp_ms: int | None) -> datetime | None:
    """A Tron block timestamp (milliseconds since the epoch) as a UTC time."""
    if block_timestamp_ms is None:
        return None
    seconds, millis = divmod(block_timestamp_ms, 1000)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(milliseconds=millis)
