"""What the hot-wallet signer agrees to sign: the rules checked before every signature.

A request is a typed transfer (payout, refund, supplier payment, fee sweep) of an integer
amount of one asset to one destination, backed by one ledger entry. It is signed only when
every rule holds; otherwise the refusal names the rule, so the caller (and the audit log)
can tell an over-limit payout from a replay.

Pure: the day's spending, the ledger entry and whether the request was seen before are
arguments the signer reads from its database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from krypton.domain import ledger, memo


class RequestKind(StrEnum):
    PAYOUT = "payout"
    REFUND = "refund"
    SUPPLIER_PAYMENT = "supplier_payment"
    FEE_SWEEP = "fee_sweep"


class DestinationKind(StrEnum):
    MERCHANT_WALLET = "merchant_wallet"  # a merchant's own payout address
    PAYER_WALLET = "payer_wallet"  # the wallet a payment came from (refunds)
    SUPPLIER = "supplier"  # a supplier's payment address (Fragment for the Stars shop)
    TREASURY = "treasury"  # the platform's cold wallet


# Where each kind of request may send money: a refund only back to a payer, a fee sweep only
# to the platform's treasury, and so on. A kind missing here is refused outright.
DEFAULT_DESTINATIONS: Mapping[RequestKind, frozenset[DestinationKind]] = {
    RequestKind.PAYOUT: frozenset({DestinationKind.MERCHANT_WALLET}),
    RequestKind.REFUND: frozenset({DestinationKind.PAYER_WALLET}),
    RequestKind.SUPPLIER_PAYMENT: frozenset({DestinationKind.SUPPLIER}),
    RequestKind.FEE_SWEEP: frozenset({DestinationKind.TREASURY}),
}


class Refusal(StrEnum):
    """Why a request was not signed (stable codes for the client and the audit log)."""

    UNKNOWN_ASSET = "unknown_asset"
    OVER_TRANSFER_LIMIT = "over_transfer_limit"
    OVER_DAILY_LIMIT = "over_daily_limit"
    DESTINATION_KIND = "destination_kind_not_allowed"
    LEDGER_ENTRY_MISSING = "ledger_entry_missing"
    LEDGER_ENTRY_MISMATCH = "ledger_entry_mismatch"
    LEDGER_ENTRY_USED = "ledger_entry_used"
    REPLAYED = "replayed_request"
    COMMENT_NOT_ALLOWED = "comment_not_allowed"
    COMMENT_INVALID = "comment_invalid"


@dataclass(frozen=True, slots=True)
class Limits:
    """One asset's limits in its smallest unit."""

    per_transfer: int
    per_day: int

    def __post_init__(self) -> None:
        if self.per_transfer <= 0 or self.per_day <= 0:
            raise ValueError("limits must be positive integers of the asset's smallest unit")
        if self.per_transfer > self.per_day:
            raise ValueError("the per-transfer limit cannot exceed the per-day limit")


@dataclass(frozen=True, slots=True)
class Policy:
    limits: Mapping[str, Limits]  # by asset code; an asset without limits is never signed
    destinations: Mapping[RequestKind, frozenset[DestinationKind]] = field(
        default_factory=lambda: dict(DEFAULT_DESTINATIONS))


@dataclass(frozen=True, slots=True)
class TransferRequest:
    request_id: str
    kind: RequestKind
    asset: str
    amount: int
    destination: str
    destination_kind: DestinationKind
    ledger_entry_id: int
    # The message's text comment, for a supplier payment only (the supplier recognises its
    # payment by it); None: the signer writes "<kind> <request_id>".
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the signer reads of a journal entry: its kind and the postings per account."""

    id: int
    kind: str
    postings: tuple[ledger.Posting, ...]

    def outgoing(self, asset: str) -> int:
        """How much of `asset` the entry sends out of the platform (to `external:<asset>`)."""
        account = ledger.external(asset)
        return sum(p.amount for p in self.postings if p.account == account and p.asset == asset)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the signer knows about a request besides the request itself."""

    spent_today: int  # of the request's asset, by transfers not failed, this UTC day
    entry: LedgerEntry | None
    entry_used: bool  # another request already spends this ledger entry
    seen: bool  # this request_id was signed (or queued) before


@dataclass(frozen=True, slots=True)
class Decision:
    refusal: Refusal | None
    reason: str

    @property
    def allowed(self) -> bool:
        return self.refusal is None


ALLOWED = Decision(None, "allowed")

# Which requests may carry their own comment: a supplier names the text it recognises its
# payment by (Fragment: "… Ref#<id>"). A payout or refund carries the signer's own
# "<kind> <request_id>": a caller must not be able to put words in a payment to a merchant
# or a payer.
COMMENTED_KINDS = frozenset({RequestKind.SUPPLIER_PAYMENT})
COMMENT_MAX = 200  # characters (signer_transfers.comment's size); Fragment's are under 100
# Line breaks are the one control character a supplier's comment uses ("…\n\nRef#…").
_COMMENT_CONTROLS = frozenset("\n")


def comment_problem(comment: str) -> str | None:
    """Why a comment cannot be signed, or None: non-empty, at most COMMENT_MAX characters,
    printable text (and line breaks) only, so that what a wallet or explorer shows is what
    was asked for; and naming no Krypton invoice memo."""
    if not comment.strip():
        return "the comment is empty; leave it out for none"
    if len(comment) > COMMENT_MAX:
        return f"the comment has {len(comment)} characters, more than the {COMMENT_MAX} allowed"
    bad = next((c for c in comment if not c.isprintable() and c not in _COMMENT_CONTROLS), None)
    if bad is not None:
        return (f"the comment holds the unprintable character U+{ord(bad):04X}; only printable "
                "text and line breaks may be signed")
    # Were the destination one of Krypton's own collector addresses, a memo in the comment
    # would credit that invoice (another merchant's balance) instead of landing unmatched
    # where the operator can take it back. No supplier needs Krypton's memo syntax, so any
    # comment the payment matcher's own finder (domain/memo.find, with its folding of
    # look-alikes and blanks) reads a memo in is refused.
    named = memo.find(comment)
    if named:
        return (f"the comment names the Krypton invoice memo {', '.join(named)}; a payment "
                "carrying it to a Krypton address would credit that invoice")
    return None


def decide(policy: Policy, request: TransferRequest, facts: Facts) -> Decision:
    """The first rule the request breaks, or ALLOWED. Replay is checked first: a replayed
    request must be refused as such, whatever else changed since."""
    if facts.seen:
        return Decision(Refusal.REPLAYED, f"request {request.request_id} was already signed; a request "
                        "is signed once (send a new request_id for a new transfer)")
    allowed_kinds = policy.destinations.get(request.kind, frozenset())
    if request.destination_kind not in allowed_kinds:
        names = ", ".join(sorted(allowed_kinds)) or "none"
        return Decision(Refusal.DESTINATION_KIND, f"a {request.kind} may not go to a "
                        f"{request.destination_kind} destination (allowed: {names})")
    if request.comment is not None:
        if request.kind not in COMMENTED_KINDS:
            return Decision(Refusal.COMMENT_NOT_ALLOWED, f"a {request.kind} may not carry a comment "
                            f"of its own (only a {RequestKind.SUPPLIER_PAYMENT} may); it is sent "
                            f"with \"{request.kind} {request.request_id}\"")
        problem = comment_problem(request.comment)
        if problem is not None:
            return Decision(Refusal.COMMENT_INVALID, problem)
    limits = policy.limits.get(request.asset)
    if limits is None:
        return Decision(Refusal.UNKNOWN_ASSET, f"the signer has no limits for {request.asset}, so it "
                        "signs no transfer of it")
    if request.amount > limits.per_transfer:
        return Decision(Refusal.OVER_TRANSFER_LIMIT, f"{request.amount} {request.asset} is above the "
                        f"per-transfer limit of {limits.per_transfer}")
    if facts.spent_today + request.amount > limits.per_day:
        return Decision(Refusal.OVER_DAILY_LIMIT, f"{request.amount} {request.asset} on top of "
                        f"{facts.spent_today} already sent today is above the per-day limit of "
                        f"{limits.per_day}")
    return _ledger(request, facts)


def _ledger(request: TransferRequest, facts: Facts) -> Decision:
    entry = facts.entry
    if entry is None:
        return Decision(Refusal.LEDGER_ENTRY_MISSING, f"ledger entry {request.ledger_entry_id} does "
                        "not exist; a transfer is signed only for a recorded ledger entry")
    if entry.kind != request.kind.value:
        return Decision(Refusal.LEDGER_ENTRY_MISMATCH, f"ledger entry {entry.id} is a {entry.kind}, "
                        f"not a {request.kind}")
    outgoing = entry.outgoing(request.asset)
    if outgoing != request.amount:
        return Decision(Refusal.LEDGER_ENTRY_MISMATCH, f"ledger entry {entry.id} sends {outgoing} "
                        f"{request.asset} out, not {request.amount}")
    if facts.entry_used:
        return Decision(Refusal.LEDGER_ENTRY_USED, f"ledger entry {entry.id} is already spent by "
                        "another request")
    return ALLOWED
