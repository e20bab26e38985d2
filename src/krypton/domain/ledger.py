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
  refund_pending:<merchant_id>:<asset>  chain refunds taken from the merchant, not yet sent
  network_fees:<asset>                kept from chain refunds to pay the hot wallet's gas
  payouts_pending:<merchant_id>:<asset>  asked for as payouts, not yet handed to the signer
  owner:<asset>                       platform fees swept to the owner off chain (Stars);
                                      the shop's Premium gifts spend the owner's Stars
                                      (`premium_gift` entries, domain/order.py)
  hot_wallet:<asset>                  the signer's wallet (payouts, refunds, the shop)
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


# --- chain refunds (app/refunds.py): merchant available -> refund pending -> external.
def refund_pending(merchant_id: str, asset: str) -> str:
    return f"refund_pending:{merchant_id}:{asset}"


def network_fees(asset: str) -> str:
    """Kept from refunds to pay the chain for the hot wallet's transfers."""
    return f"network_fees:{asset}"


def refund_reserved(refund_id: str, merchant_id: str, asset: str, amount: int) -> JournalEntry:
    """A chain refund takes its amount from the merchant's available balance when it is
    created, so concurrent refunds and payouts cannot spend the same money."""
    return JournalEntry("refund_reserved", refund_id, (
        Posting(merchant_account(merchant_id, asset), asset, -amount),
        Posting(refund_pending(merchant_id, asset), asset, amount)))


REFUND_SENT_KIND = "refund"  # the signer checks an entry of its request's kind


def refund_sent(refund_id: str, merchant_id: str, asset: str, amount: int, fee: int) -> JournalEntry:
    """What the signer checks before signing: `amount - fee` out to `external:<asset>`, the
    fee kept to pay the network."""
    return JournalEntry(REFUND_SENT_KIND, refund_id, (
        Posting(refund_pending(merchant_id, asset), asset, -amount),
        Posting(external(asset), asset, amount - fee),
        Posting(network_fees(asset), asset, fee)))


def refund_reversed(refund_id: str, merchant_id: str, asset: str, amount: int, fee: int, *,
                    sent: bool) -> JournalEntry:
    """A chain refund that failed (refused, not sent, bounced, claim expired): its amount back
    to the merchant, from pending or, once booked as sent, from external and the fee."""
    postings = [Posting(merchant_account(merchant_id, asset), asset, amount)]
    if sent:
        postings += [Posting(external(asset), asset, -(amount - fee)),
                     Posting(network_fees(asset), asset, -fee)]
    else:
        postings.append(Posting(refund_pending(merchant_id, asset), asset, -amount))
    return JournalEntry("refund_reversed", refund_id, tuple(postings))


def payouts_pending(merchant_id: str, asset: str) -> str:
    return f"payouts_pending:{merchant_id}:{asset}"


def owner(asset: str) -> str:
    return f"owner:{asset}"


# The journal kind of the entry a payout's signer request names: the signer checks that the
# entry's kind is the request's kind ("payout") and that it sends exactly the amount out.
PAYOUT = "payout"
FEE_SWEEP = "fee_sweep"


def payout_requested(payout_id: str, merchant_id: str, asset: str, amount: int) -> JournalEntry:
    """Available -> payouts pending: booked with the request, so that no later request can
    spend the same money (the balance check and this entry share one locked transaction)."""
    return JournalEntry("payout_requested", payout_id, (
        Posting(merchant_account(merchant_id, asset), asset, -amount),
        Posting(payouts_pending(merchant_id, asset), asset, amount)))


def payout_sent(payout_id: str, merchant_id: str, asset: str, amount: int) -> JournalEntry:
    """Payouts pending -> the chain: the entry the signer checks before signing."""
    return JournalEntry(PAYOUT, payout_id, (
        Posting(payouts_pending(merchant_id, asset), asset, -amount),
        Posting(external(asset), asset, amount)))


def payout_failed(payout_id: str, merchant_id: str, asset: str, amount: int, *,
                  sent: bool) -> JournalEntry:
    """The payout did not reach its destination (refused, not sent, bounced): its amount goes
    back to the available balance, from wherever it stood (`sent`: already booked out)."""
    source = external(asset) if sent else payouts_pending(merchant_id, asset)
    return JournalEntry("payout_failed", payout_id, (
        Posting(source, asset, -amount),
        Posting(merchant_account(merchant_id, asset), asset, amount)))


def payout_network_fee(payout_id: str, fee: int) -> JournalEntry:
    """The TON the chain charged for sending a payout, paid by the platform from its fees
    (the hot wallet pays it): a merchant receives exactly what it asked for and its balance
    is debited exactly that, known before the fee is (TON's fee is known after the fact)."""
    return JournalEntry("payout_network_fee", payout_id, (
        Posting(fees("TON"), "TON", -fee),
        Posting(external("TON"), "TON", fee)))


def fee_sweep(sweep_id: str, asset: str, amount: int, *, on_chain: bool) -> JournalEntry:
    """Platform fees leave the ledger for the owner: on chain to the treasury address through
    the signer (the entry the signer checks), or, for Telegram Stars, which no chain carries,
    to the owner's account in the ledger only."""
    to = external(asset) if on_chain else owner(asset)
    return JournalEntry(FEE_SWEEP, sweep_id, (
        Posting(fees(asset), asset, -amount), Posting(to, asset, amount)))


def fee_sweep_failed(sweep_id: str, asset: str, amount: int) -> JournalEntry:
    """A sweep the signer refused or the chain did not carry: the fees are back."""
    return JournalEntry("fee_sweep_failed", sweep_id, (
        Posting(external(asset), asset, -amount), Posting(fees(asset), asset, amount)))


def balances(postings: Iterable[Posting]) -> dict[tuple[str, str], int]:
    """(account, asset) -> balance, replayed from postings."""
    result: dict[tuple[str, str], int] = defaultdict(int)
    for p in postings:
        result[(p.account, p.asset)] += p.amount
    return dict(result)
