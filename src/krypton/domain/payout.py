"""Payouts: a merchant's withdrawal of its available balance to an address it names.

States, with the one transition table:

    requested  the amount left the available balance for `payouts_pending` (one transaction
               with the request and its event), waiting for the next batch
    queued     the batch booked the `payout` ledger entry (pending -> external: the entry the
               signer checks) and is handing it to the signer; a crash here is safe, the
               signer refuses the same request id twice and is asked for its status
    sent       the signer signed and recorded it (exactly once) and broadcast it
    confirmed  the hot wallet's transaction sent it and it was not bounced back
    failed     refused by the signer, not sent by the wallet, or bounced: the amount is
               credited back to the available balance (one `payout_failed` entry)

Pure: ids, the clock and the balance are arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from krypton.domain.errors import DomainError

# Assets a payout may be made in: those the hot wallet can send (TON itself, and USDT on TON
# as a jetton transfer). USDT on Tron needs the Tron keys and energy: not offered.
PAYOUT_ASSETS = frozenset({"TON", "USDT_TON"})
FAILURE_MAX = 500


class PayoutStatus(StrEnum):
    REQUESTED = "requested"
    QUEUED = "queued"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"


S = PayoutStatus
TRANSITIONS: dict[PayoutStatus, frozenset[PayoutStatus]] = {
    S.REQUESTED: frozenset({S.QUEUED}),
    # Failed from queued: the signer refused it (policy, limits) before anything was signed.
    S.QUEUED: frozenset({S.SENT, S.FAILED}),
    S.SENT: frozenset({S.CONFIRMED, S.FAILED}),
    # A confirmed payout may still bounce back (the destination refused it): failed then.
    S.CONFIRMED: frozenset({S.FAILED}),
    S.FAILED: frozenset(),
}
FINAL = frozenset({S.FAILED})
OPEN = frozenset({S.REQUESTED, S.QUEUED, S.SENT})


class InvalidTransition(DomainError):
    code = "invalid_transition"


@dataclass
class Payout:
    id: str
    merchant_id: str
    asset: str
    amount: int
    destination: str  # as the merchant gave it (validated at the edge)
    created_at: datetime
    updated_at: datetime
    status: PayoutStatus = PayoutStatus.REQUESTED
    description: str | None = None
    message_hash: str | None = None  # the signer's external carrying it
    tx_hash: str | None = None  # the hot wallet's transaction that sent it
    network_fee: int = 0  # what the chain charged, booked once known (see ledger.payout_fee)
    failure: str | None = None
    changes: list[tuple[PayoutStatus, PayoutStatus]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount <= 0:
            raise DomainError("A payout's amount must be a positive integer of the asset's "
                              "smallest unit.", field="amount")

    def move(self, to: PayoutStatus, now: datetime) -> None:
        if to not in TRANSITIONS[self.status]:
            raise InvalidTransition(f"Payout {self.id} cannot go from {self.status} to {to}.")
        self.changes.append((self.status, to))
        self.status = to
        self.updated_at = now

    def fail(self, reason: str, now: datetime) -> None:
        self.move(PayoutStatus.FAILED, now)
        self.failure = reason[:FAILURE_MAX]


def covers(available: int, amount: int) -> bool:
    """Whether an available balance covers a payout: never below zero."""
    return amount <= available


def check_asset(asset: str) -> None:
    if asset == "USDT_TRC20":
        raise DomainError("Payouts of USDT on Tron are not offered: they need the platform's "
                          "Tron keys and energy, which the signer does not hold. Pay out in "
                          "TON or USDT_TON.", field="asset")
    if asset not in PAYOUT_ASSETS:
        raise DomainError(f"Payouts are made in {', '.join(sorted(PAYOUT_ASSETS))}, not {asset}.",
                          field="asset")
