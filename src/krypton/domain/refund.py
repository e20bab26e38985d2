"""Refunds: money of a confirmed payment given back to its payer.

pending -> succeeded | failed. A refund is recorded `pending` before the rail is asked to
pay it back, so a crash between the two leaves a record a retry (or the worker) resolves;
only `succeeded` moves money in the ledger. The rail decides how a refund is executed
(Telegram Stars: refundStarPayment; chains: a transfer signed by the hot-wallet signer).

Chain refunds (TON): the merchant may give back the whole payment, the overpaid surplus or
any amount up to what is left of the payment; the network fee (`NETWORK_FEES`) is taken
from the refund, so the payer receives `amount - fee` and the merchant's balance pays
`amount`, no more. Money goes only to an address the payer chose: the payment's source
address, or one the payer gives through a signed, expiring, single-use claim link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from krypton.domain import money, transitions
from krypton.domain.errors import Conflict, DomainError


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


R = RefundStatus
TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    R.PENDING: frozenset({R.SUCCEEDED, R.FAILED}),
    R.SUCCEEDED: frozenset(),
    R.FAILED: frozenset(),
}
# Refunds that hold (or may still hold) the payment's money: at most one per payment.
ACTIVE = frozenset({R.PENDING, R.SUCCEEDED})
REASON_MAX = 500


@dataclass(slots=True)
class Refund:
    id: str
    merchant_id: str
    invoice_id: str
    payment_id: str
    asset: str
    amount: int
    reason: str | None
    created_at: datetime
    status: RefundStatus = RefundStatus.PENDING
    # Why the rail refused it (Telegram's description), for a failed refund.
    failure: str | None = None
    completed_at: datetime | None = None
    # Of `amount`: what came out of the merchant's held (not yet withdrawable) balance.
    from_held: int = 0
    settlement_id: str | None = None
    # Chain refunds only (None/0 for Stars): where the money goes and how it was chosen.
    to: RefundTarget | None = None
    destination: str | None = None
    fee: int = 0  # the network fee kept from `amount`; the payer receives `amount - fee`
    claim_expires_at: datetime | None = None
    changes: list[tuple[RefundStatus, RefundStatus]] = field(default_factory=list)

    def succeed(self, now: datetime, from_held: int, settlement_id: str | None) -> None:
        self.status = transitions.move(TRANSITIONS, self.status, R.SUCCEEDED, "refund",
                                       self.changes)
        self.completed_at = now
        self.from_held = from_held
        self.settlement_id = settlement_id if from_held else None

    def fail(self, why: str, now: datetime) -> None:
        self.status = transitions.move(TRANSITIONS, self.status, R.FAILED, "refund", self.changes)
        self.failure = why[:REASON_MAX]
        self.completed_at = now


def split_debit(amount: int, held_left: int) -> tuple[int, int]:
    """(from held, from available): a refund takes from the payment's still-held money first,
    so money Telegram has not yet released is not counted as withdrawable and given back."""
    from_held = max(0, min(amount, held_left))
    return from_held, amount - from_held


def covers(amount: int, held_left: int, available: int, reserved: int) -> bool:
    """Whether the merchant's money can pay `amount` back: the payment's held remainder plus
    the available balance, less what other refunds in flight already promised."""
    return held_left + available - reserved >= amount


class RefundTarget(StrEnum):
    """Where a chain refund goes: never an address typed by anyone but the payer."""

    SOURCE = "source"  # the address the payment came from
    CLAIM = "claim"  # an address the payer gives through the claim link


# What the hot wallet pays the chain for one refund transfer, kept from the refund (the
# payer bears it, as with BTCPay's refunds: the merchant gives back `amount`, not more).
# An asset missing here has no refund rail.
NETWORK_FEES: dict[str, int] = {
    "TON": 10_000_000,  # 0.01 TON, above a wallet transfer's gas
    # A jetton transfer's gas is paid in TON by the hot wallet; the payer bears it in the
    # refunded asset at a fixed 0.1 USDT (above ~0.02 TON of gas at any recent price).
    "USDT_TON": 100_000,
}
CLAIM_VALID_FOR = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class ChainAmount:
    amount: int  # taken from the merchant
    fee: int  # kept for the network

    @property
    def net(self) -> int:
        return self.amount - self.fee


def chain_amount(asked: int | None, *, surplus: bool, payment: int, refunded: int,
                 overpaid: int, fee: int, asset: str, decimals: int) -> ChainAmount:
    """How much a chain refund takes: the rest of the payment (nothing asked), the invoice's
    overpaid surplus, or the amount asked; never more than the payment less what earlier
    refunds of it took, and more than the network fee so the payer receives something."""
    left = payment - refunded

    def shown(units: int) -> str:
        return f"{money.format_units(units, decimals)} {asset}"
    if left <= 0:
        raise Conflict("This payment was refunded in full already.", code="already_refunded")
    amount = left if asked is None and not surplus else (min(overpaid, left) if surplus else asked)
    assert amount is not None
    if surplus and amount <= 0:
        raise DomainError("The invoice was not overpaid: there is no surplus to refund.",
                          field="amount")
    if amount > left:
        raise DomainError(f"At most {shown(left)} of this payment is left to refund.",
                          field="amount")
    if amount <= fee:
        raise DomainError(f"A refund must be more than the network fee of {shown(fee)}, which "
                          "is kept from it.", field="amount")
    return ChainAmount(amount, fee)


class ClaimInvalid(Exception):
    """A claim token that is forged, malformed or for another refund: nothing is told."""


class ClaimExpired(Exception):
    """A genuine claim token past its expiry."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claim_token(key: bytes, refund_id: str, nonce: str, expires_at: datetime) -> str:
    """`<refund id>.<nonce>.<expiry unix>.<HMAC-SHA256>`: bound to one refund, expiring; the
    nonce is stored with the refund and spent when the payer claims (single use)."""
    body = f"{refund_id}.{nonce}.{int(expires_at.timestamp())}"
    return body + "." + _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


@dataclass(frozen=True, slots=True)
class Claim:
    refund_id: str
    nonce: str
    expires: int  # unix seconds


def read_claim_token(key: bytes, token: str, now: datetime) -> Claim:
    """The claim a token carries; ClaimInvalid unless its signature is ours, ClaimExpired past
    its expiry. Compared in constant time."""
    parts = token.split(".")
    if len(parts) != 4 or len(token) > 300 or not parts[2].isdigit():
        raise ClaimInvalid
    body = ".".join(parts[:3])
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, parts[3]):
        raise ClaimInvalid
    claim = Claim(parts[0], parts[1], int(parts[2]))
    if now.timestamp() >= claim.expires:
        raise ClaimExpired
    return claim
