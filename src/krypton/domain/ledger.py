"""Double-entry ledger. Every money movement is one journal entry whose postings sum to
zero per asset; balances are never stored, only derived from postings.

Sign convention: a posting is the change of that account's balance. The outside world
(`external:<asset>`) goes negative as money comes in.

Accounts:
  external:<asset>                    money that arrived from a chain or from Telegram
  clearing:<merchant_id>:<asset>      received for a merchant, not yet settled
  merchant:<merchant_id>:<asset>      the merchant's settled balance (net)
  merchant_held:<merchant_id>:<asset>  settled but held by the rail (Telegram Stars: until
                                      Telegram's hold period passes), released per settlement
  fees:<asset>                        platform fees held by Krypton
  collector_fees:<merchant_id>:<asset>  platform fees kept by the merchant's fee-collector
                                      contract (flushed from there to the platform's wallet)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from krypton.domain.errors import DomainError
from krypton.domain.fees import FeeSplit


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    asset: str
    amount: int


@dataclass(frozen=True, slots=True)
class JournalEntry:
    kind: str
    reference: str
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        totals: dict[str, int] = defaultdict(int)
        for p in self.postings:
            totals[p.asset] += p.amount
        if any(totals.values()):
            raise DomainError(f"Journal entry {self.kind} {self.reference} does not balance.")


def external(asset: str) -> str:
    return f"external:{asset}"


def clearing(merchant_id: str, asset: str) -> str:
    return f"clearing:{merchant_id}:{asset}"


def merchant_account(merchant_id: str, asset: str) -> str:
    return f"merchant:{merchant_id}:{asset}"


def fees(asset: str) -> str:
    return f"fees:{asset}"


def payment_received(payment_id: str, merchant_id: str, asset: str, amount: int) -> JournalEntry:
    return JournalEntry(
        "payment_received",
        payment_id,
        (
            Posting(external(asset), asset, -amount),
            Posting(clearing(merchant_id, asset), asset, amount),
        ),
    )


def merchant_held(merchant_id: str, asset: str) -> str:
    return f"merchant_held:{merchant_id}:{asset}"


def settlement(settlement_id: str, merchant_id: str, asset: str, split: FeeSplit,
               collector_fee: int = 0, *, held: bool = False) -> JournalEntry:
    """Clearing -> merchant (net) and fees; `collector_fee` of the fee stays in the contract.
    `held`: the net goes to the held account, released later by `released`."""
    net_account = merchant_held if held else merchant_account
    postings = [
        Posting(clearing(merchant_id, asset), asset, -split.gross),
        Posting(net_account(merchant_id, asset), asset, split.net),
        Posting(fees(asset), asset, split.fee - collector_fee),
    ]
    if collector_fee:
        postings.append(Posting(collector_fees(merchant_id, asset), asset, collector_fee))
    return JournalEntry("settlement", settlement_id, tuple(postings))


def collector_fees(merchant_id: str, asset: str) -> str:
    return f"collector_fees:{merchant_id}:{asset}"


def forwarded_on_chain(settlement_id: str, merchant_id: str, asset: str, amount: int) -> JournalEntry:
    """The fee collector already sent the merchant's net on to its wallet: the merchant's
    balance goes straight back out to the chain (no custodial balance is left)."""
    return JournalEntry(
        "forwarded_on_chain",
        settlement_id,
        (
            Posting(merchant_account(merchant_id, asset), asset, -amount),
            Posting(external(asset), asset, amount),
        ),
    )


def released(settlement_id: str, merchant_id: str, asset: str, amount: int) -> JournalEntry:
    """A settlement's held net becomes withdrawable (the journal's unique (kind, reference)
    makes it once per settlement)."""
    return JournalEntry("released", settlement_id, (
        Posting(merchant_held(merchant_id, asset), asset, -amount),
        Posting(merchant_account(merchant_id, asset), asset, amount)))


def refunded(refund_id: str, merchant_id: str, asset: str, from_held: int,
             from_available: int) -> JournalEntry:
    """Money given back to the payer, from the merchant's held then available balance. The
    platform's fee is not returned (as Stripe keeps its fee): the merchant asked for the
    refund, the platform did the work of taking the payment, so the merchant bears it."""
    postings = [Posting(external(asset), asset, from_held + from_available)]
    if from_held:
        postings.append(Posting(merchant_held(merchant_id, asset), asset, -from_held))
    if from_available:
        postings.append(Posting(merchant_account(merchant_id, asset), asset, -from_available))
    return JournalEntry("refunded", refund_id, tuple(postings))


def balances(postings: Iterable[Posting]) -> dict[tuple[str, str], int]:
    """(account, asset) -> balance, replayed from postings."""
    result: dict[tuple[str, str], int] = defaultdict(int)
    for p in postings:
        result[(p.account, p.asset)] += p.amount
    return dict(result)
