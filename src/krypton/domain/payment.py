"""Payments: one observed transfer credited (or not) to one invoice.

detected -> confirming -> confirmed; detected | confirming -> failed;
confirming -> orphaned (block reorganisation) -> detected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from krypton.domain import transitions
from krypton.domain.assets import Chain


class PaymentStatus(StrEnum):
    DETECTED = "detected"
    CONFIRMING = "confirming"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    ORPHANED = "orphaned"
    REFUNDED = "refunded"  # given back to the payer (app/refunds.py)


P = PaymentStatus
TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    P.DETECTED: frozenset({P.CONFIRMING, P.FAILED}),
    P.CONFIRMING: frozenset({P.CONFIRMED, P.FAILED, P.ORPHANED}),
    P.ORPHANED: frozenset({P.DETECTED}),
    P.CONFIRMED: frozenset({P.REFUNDED}),
    P.FAILED: frozenset(),
    P.REFUNDED: frozenset(),
}
# Payments whose money may still arrive (used to decide "fully paid, awaiting confirmations").
LIVE = frozenset({P.DETECTED, P.CONFIRMING, P.CONFIRMED})
# How much of a transfer's comment is stored with it (the memo columns' size): a wallet may
# send kilobytes of comment, and a record that cannot be stored would stall its watcher.
COMMENT_KEPT = 200


def kept_comment(comment: str | None) -> str | None:
    """The comment as stored: cut to COMMENT_KEPT characters, the cut marked with "…"."""
    if comment is None or len(comment) <= COMMENT_KEPT:
        return comment
    return comment[:COMMENT_KEPT - 1] + "…"


@dataclass(slots=True)
class Transfer:
    """A transfer as its chain shows it; (chain, tx_id, index) identifies it for ever.

    What a reader reports (`ObservedTransfer`) and what a payment records (`Payment`) alike.
    Not frozen: a frozen dataclass has no mutable subclass, and a payment's confirmations
    change. Nothing changes an observed transfer once its reader made it.
    """

    chain: Chain
    tx_id: str
    index: int
    asset: str
    amount: int
    destination: str
    memo: str | None
    block: int | None
    confirmations: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.chain.value, self.tx_id, self.index)


@dataclass(slots=True)
class ObservedTransfer(Transfer):
    """What a chain reader reports."""

    sender: str | None = None
    # Whether the chain itself calls the transfer irreversible (TON: in a masterchain block
    # at or below the head; Tron: solidified with a SUCCESS receipt). Nothing is confirmed
    # before that.
    final: bool = True
    # When the chain took it (its block's time), if the provider says: lateness is judged by
    # it, not by when a watcher first saw it (app/ingest.py); None falls back to that moment.
    block_time: datetime | None = None

    def sent_at(self, now: datetime) -> datetime:
        """When the payer paid, for judging lateness: the block's time, never later than `now`
        (a chain clock ahead of ours must not make a payment later than it is seen), else `now`."""
        return now if self.block_time is None else min(self.block_time, now)


@dataclass(slots=True)
class Payment(Transfer):
    """A transfer credited to an invoice (`Transfer`'s fields, then these)."""

    id: str
    invoice_id: str
    merchant_id: str
    required_confirmations: int
    dust: bool
    detected_at: datetime
    status: PaymentStatus = PaymentStatus.DETECTED
    confirmed_at: datetime | None = None
    version: int = 1  # one more with every stored change, as an invoice's
    changes: list[tuple[PaymentStatus, PaymentStatus]] = field(default_factory=list)
    # The payer's address as its chain shows it (TON: the source wallet, raw; USDT on TON: the
    # jetton's original sender, not its jetton wallet; Tron: `from`). None for payments
    # stored before Krypton kept it: a refund then asks the chain.
    sender: str | None = None

    def move(self, target: PaymentStatus) -> None:
        self.status = transitions.move(TRANSITIONS, self.status, target, "payment", self.changes)

    def observe(self, confirmations: int, block: int | None, now: datetime, final: bool = True) -> None:
        """A new sighting: advance as far as the confirmation count and finality allow."""
        self.confirmations = confirmations
        if block is not None:
            self.block = block
        if self.status is P.ORPHANED:
            self.move(P.DETECTED)
        if self.status is P.DETECTED and confirmations >= 1:
            self.move(P.CONFIRMING)
        if self.status is P.CONFIRMING and final and confirmations >= self.required_confirmations:
            self.move(P.CONFIRMED)
            self.confirmed_at = now

    def orphan(self) -> None:
        self.move(P.ORPHANED)
        self.confirmations = 0

    def fail(self) -> None:
        if self.status is P.ORPHANED:  # it came back on the new fork, and failed there
            self.move(P.DETECTED)
        self.move(P.FAILED)

    @property
    def counts(self) -> bool:
        """Whether this payment's money may count towards its invoice."""
        return not self.dust and self.status in LIVE
