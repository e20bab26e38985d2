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

A confirmed payout whose message could come back (app/payouts.may_bounce) is watched for a
bounce on a schedule (`bounce_check_at`, `bounce_checks`): asked again at once, then after
each check the signer answered with the destination's transaction, on a backoff
(BOUNCE_BACKOFF); an unanswered check (the chain provider down, the delivery not known yet)
is retried soon without counting. The watch ends with the first answered check made
BOUNCE_WATCH or more after the confirmation: an outage longer than the window delays the
end, it never skips it.

Pure: ids, the clock and the balance are arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from krypton.domain.errors import DomainError

# Assets a payout may be made in: those the hot wallet can send (TON itself, and USDT on TON
# as a jetton transfer). USDT on Tron needs the Tron keys and energy: not offered.
PAYOUT_ASSETS = frozenset({"TON", "USDT_TON"})
FAILURE_MAX = 500
# How long after its confirmation a payout is watched for a bounce: a bounce comes back
# within seconds to minutes (one more hop, another shard, an indexer catching up), never
# hours later.
BOUNCE_WATCH = timedelta(minutes=15)
# The wait after the 1st, 2nd, ... answered check (the last one repeats), cut at the
# window's end: checks at about 0 s (the next tracking round), 30 s, 2.5 min, 7.5 min and
# 15 min after the confirmation; five answers a payout instead of one every round (each
# costs the signer up to three chain provider lookups).
BOUNCE_BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=5),
                  timedelta(minutes=10))
# The wait after a check without an answer (signer or chain provider down, the delivery not
# on chain yet): soon, and not counted, since nothing was learnt.
BOUNCE_RETRY = timedelta(seconds=30)


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
    # When to ask again whether a confirmed payout bounced (None: not watched), and how many
    # checks got an answer so far (see the module doc).
    bounce_check_at: datetime | None = None
    bounce_checks: int = 0
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
        if to is not S.CONFIRMED:
            self.bounce_check_at = None  # only a confirmed payout is watched

    @property
    def confirmed_at(self) -> datetime | None:
        """When it was confirmed: a confirmed payout changes no more but to failed, so its
        updated_at is its confirmation (the watch's window counts from it)."""
        return self.updated_at if self.status is S.CONFIRMED else None

    def watch_bounces(self, now: datetime) -> None:
        """Start the watch of a payout just confirmed: its first check is due at once."""
        if self.status is not S.CONFIRMED:
            raise InvalidTransition(f"Payout {self.id} is {self.status}: only a confirmed payout "
                                    "is watched for a bounce.")
        self.bounce_check_at = now
        self.bounce_checks = 0

    def bounce_checked(self, now: datetime, *, answered: bool) -> None:
        """Schedule the next check after one made at `now`; `answered`: the signer said
        whether the destination took it (None from the chain: not answered)."""
        confirmed_at = self.confirmed_at
        if confirmed_at is None or self.bounce_check_at is None:
            return  # not watched (any more): nothing to schedule
        if not answered:
            self.bounce_check_at = now + BOUNCE_RETRY
            return
        self.bounce_checks += 1
        self.bounce_check_at = next_bounce_check(confirmed_at, self.bounce_checks, now)

    def fail(self, reason: str, now: datetime) -> None:
        self.move(PayoutStatus.FAILED, now)
        self.failure = reason[:FAILURE_MAX]


def next_bounce_check(confirmed_at: datetime, answered: int, now: datetime) -> datetime | None:
    """When to check again after the `answered`-th answered check, made at `now`; None once
    an answered check was made BOUNCE_WATCH or more after the confirmation (the watch ends:
    the answer covers the window, however late it came)."""
    end = confirmed_at + BOUNCE_WATCH
    if now >= end:
        return None
    wait = BOUNCE_BACKOFF[min(max(answered, 1), len(BOUNCE_BACKOFF)) - 1]
    return min(now + wait, end)


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
