"""Double-entry ledger. Every money movement is one journal entry whose postings sum to
zero per asset; balances are never stored, only derived from postings.

Sign convention: a posting is the change of that account's balance. The outside world
(`external:<asset>`) goes negative as money comes in.

Accounts:
  external:<asset>                    money that arrived from a chain or from Telegram
  clearing:<merchant_id>:<asset>      received for a merchant, not yet settled
  merchant:<merchant_id>:<asset>      the merchant's settled balance (net)
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


def settlement(settlement_id: str, merchant_id: str, asset: str, split: FeeSplit,
               collector_fee: int = 0) -> JournalEntry:
    """Clearing -> merchant (net) and fees; `collector_fee` of the fee stays in the contract."""
    postings = [
        Posting(clearing(merchant_id, asset), asset, -split.gross),
        Posting(merchant_account(merchant_id, asset), asset, split.net),
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


def balances(postings: Iterable[Posting]) -> dict[tuple[str, str], int]:
    """(account, asset) -> balance, replayed from postings."""
    result: dict[tuple[str, str], int] = defaultdict(int)
    for p in postings:
        result[(p.account, p.asset)] += p.amount
    return dict(result)
