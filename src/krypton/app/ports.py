"""Ports: what the use cases need from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from krypton.domain.collector import CollectorStats, FeeCollector
from krypton.domain.events import Event
from krypton.domain.invoice import Invoice, InvoiceStatus
from krypton.domain.ledger import JournalEntry, Posting
from krypton.domain.merchant import Merchant
from krypton.domain.payment import ObservedTransfer, Payment
from krypton.domain.pricing import UsdRate
from krypton.domain.roles import Role
from krypton.domain.settlement import Settlement
from krypton.domain.users import Lockout, RefreshToken, User, UserPrincipal
from krypton.domain.webhooks import Attempt, Delivery, Endpoint


class Clock(Protocol):
    def now(self) -> datetime: ...


class Telemetry(Protocol):
    """What the use cases report for /metrics beyond the event log: failures, which leave
    no event behind (their transaction rolled back)."""

    def settlement_failed(self, asset: str) -> None:
        """A final transfer's ingest, the transaction that would settle it, failed."""


class Ids(Protocol):
    def new(self, prefix: str) -> str: ...

    def secret(self) -> str: ...

    def random_bytes(self, n: int) -> bytes: ...


class Rails(Protocol):
    """Where payers send money, per rail (addresses in canonical stored form)."""

    def ton_address(self, merchant_ton_address: str | None) -> str:
        """The merchant's TON receiving address, else the platform's; DomainError if none."""

    def tron_address(self, index: int) -> str:
        """The Tron deposit address at `index` (m/44'/195'/0'/0/index)."""

    def stars_available(self) -> bool:
        """Whether Telegram Stars has a Bot API to make links with (a token, or the devnet's)."""

    def canonical_ton_address(self, text: str) -> str:
        """A TON address as typed (raw or user-friendly) in stored form; DomainError if invalid
        or of the wrong network."""

    def fee_collector(self, destination: str, fee_bps: int, min_withdrawal: int,
                      deploy_amount: int) -> CollectorPlan:
        """The collector that forwards to `destination` (raw) and keeps fees for the platform;
        DomainError if a value is out of the contract's range or no owner is configured."""



@dataclass(frozen=True, slots=True)
class CollectorPlan:
    """A merchant's fee-collector contract, ready to deploy (addresses in raw form)."""

    address: str
    address_friendly: str  # bounceable (EQ…, kQ… on testnet): it is a contract
    owner: str
    destination: str
    fee_bps: int
    min_withdrawal: int
    state_init: str  # standard base64 BOC
    deploy_amount: int
    deploy_link: str  # ton://transfer/… with init= and the owner's top_up body; open in the owner's wallet


@dataclass(frozen=True, slots=True)
class DeployedCollector:
    """What a deployed collector's get_config answers."""

    owner: str
    destination: str
    fee_bps: int
    min_withdrawal: int


class CollectorChain(Protocol):
    """Reads fee-collector contracts on chain (TON Center v3 runGetMethod)."""

    async def deployed(self, address: str) -> DeployedCollector | None:
        """get_config, or None while nothing runs at the address (not deployed yet)."""

    async def stats(self, address: str) -> CollectorStats:
        """get_stats; raises if the contract is not deployed."""


TransferKey = tuple[str, int]  # (tx id, index) on one chain


@dataclass(frozen=True, slots=True)
class Watch:
    """What a reader is asked to look for besides its own account (Tron: deposit addresses)."""

    # Deposit address -> watch it from (ms since epoch).
    addresses: Mapping[str, int] = field(default_factory=dict)
    # Which of these tx ids were ingested already: their receipts are not fetched again.
    known: Callable[[Sequence[str]], Awaitable[set[str]]] | None = None


@dataclass(frozen=True, slots=True)
class ChainRead:
    """What one read of a chain found, for the use cases to ingest (app/watching.py)."""

    seen: Sequence[ObservedTransfer] = ()  # match and ingest; `final` and the count say how far
    rejected: Sequence[tuple[ObservedTransfer, str]] = ()  # never credited: kept with a reason
    failed: Sequence[TransferKey] = ()  # in a block, but the transaction failed
    vanished: Sequence[TransferKey] = ()  # in no block any more (reorganised away)
    cursor: str | None = None  # store it once all of the above is ingested; None: keep the old
    more: bool = False  # another page is waiting
    handled: int = 0  # new transactions or transfers this read covered


class ChainReader(Protocol):
    """Reads one chain for transfers to our addresses (adapters/chains/<chain>/reader.py).

    A reader only reads and applies the chain's finality rule (domain/finality.py); the use
    cases decide what a transfer pays and store the cursor after ingesting what it found."""

    @property
    def chain(self) -> str:
        """The chain it reads ("ton", "tron")."""

    @property
    def cursor_name(self) -> str:
        """Where this reader's position is stored (cursors table)."""

    @property
    def rechecks(self) -> bool:
        """Whether transfers it reported may still change (confirmations, failure, reorg)."""

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        """New transfers after `cursor` (None: from the start), one page."""

    async def recheck(self, unfinished: Sequence[TransferKey]) -> ChainRead:
        """A fresh look at transfers that are not final yet."""


class RateSource(Protocol):
    """USD for one whole unit of a pricing currency ("TON", "USDT", "XTR"): the newest rate
    known, with its source, time and how old it may be to price in USD (the use case judges
    it). Raises RateUnavailable when no rate for `currency` has been obtained at all."""

    name: str

    async def usd_rate(self, currency: str) -> UsdRate: ...


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    merchant_id: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


class MerchantRepo(Protocol):
    async def add(self, merchant: Merchant, now: datetime) -> None: ...
    async def get(self, merchant_id: str) -> Merchant | None: ...
    async def list(self) -> Sequence[Merchant]: ...
    async def set_ton_collector(self, merchant_id: str, address: str) -> None: ...
    async def set_fee_bps(self, merchant_id: str, fee_bps: int) -> None: ...
    async def set_settings(self, merchant_id: str, confirmations_override: int | None,
                           ton_address: str | None) -> None: ...


class CollectorRepo(Protocol):
    async def put(self, collector: FeeCollector) -> None:
        """Insert, or replace the merchant's pending collector."""
    async def activate(self, collector: FeeCollector) -> bool:
        """Store the collector as activated if it is still the merchant's pending one; False
        (nothing written) when another caller got there first or it was replaced."""
    async def for_merchant(self, merchant_id: str) -> FeeCollector | None: ...
    async def by_address(self, address: str) -> FeeCollector | None: ...
    async def pending(self) -> list[FeeCollector]: ...


class ApiKeyRepo(Protocol):
    async def add(self, key_id: str, merchant_id: str, prefix: str, key_hash: str,
                  scopes: Sequence[str], now: datetime) -> None: ...
    async def by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...
    async def get(self, key_id: str) -> ApiKeyRecord | None: ...
    async def revoke(self, key_id: str, now: datetime) -> None: ...
    async def for_merchant(self, merchant_id: str) -> Sequence[ApiKeyRecord]: ...


@dataclass(frozen=True, slots=True)
class TronDeposit:
    """An invoice's Tron deposit address and how long the chain is watched for it."""
    index: int
    address: str
    watch_from_ms: int  # ms since epoch: from a minute before the invoice was created
    watch_until: datetime  # a week past its monitoring window


class InvoiceRepo(Protocol):
    async def add(self, invoice: Invoice) -> bool:
        """False, writing nothing, if another invoice already has this memo."""
    async def get(self, invoice_id: str, *, for_update: bool = False) -> Invoice | None: ...
    async def ids_by_memo(self, memos: Sequence[str]) -> dict[str, tuple[str, frozenset[str]]]:
        """memo -> (invoice id, the TON addresses it may be paid at)."""
    async def ids_by_tron_address(self, addresses: Sequence[str]) -> dict[str, str]: ...
    async def tron_deposits_after(self, index: int, limit: int) -> list[TronDeposit]:
        """Deposit addresses with a deposit index above `index`, in index order."""
    async def tron_deposits_at(self, indexes: Sequence[int]) -> list[TronDeposit]:
        """The deposit addresses with these indexes that are visible (committed) now."""
    async def save(self, invoice: Invoice) -> None: ...
    async def page(self, merchant_id: str, *, status: InvoiceStatus | None, order_id: str | None,
                   limit: int, starting_after: str | None) -> tuple[list[Invoice], bool]: ...
    async def due_for_expiry(self, now: datetime, limit: int) -> list[str]: ...


class PaymentRepo(Protocol):
    async def claim(self, chain: str, tx_id: str, index: int) -> None:
        """Hold this transfer key until the unit of work ends: concurrent units deciding what
        one transfer is (a payment, unmatched, nothing) take turns, each seeing the last's."""
    async def add(self, payment: Payment) -> None: ...
    async def by_key(self, chain: str, tx_id: str, index: int) -> Payment | None: ...
    async def get(self, payment_id: str) -> Payment | None: ...
    async def for_invoice(self, invoice_id: str) -> list[Payment]: ...
    async def save(self, payment: Payment) -> None: ...
    async def unfinished(self, chain: str) -> list[Payment]: ...
    async def known_tx_ids(self, chain: str, tx_ids: Sequence[str]) -> set[str]: ...


class CounterRepo(Protocol):
    async def next(self, name: str) -> int:
        """The counter's next value; values are never handed out twice, even after a rollback
        of another transaction (gaps are fine)."""


class CursorRepo(Protocol):
    async def get(self, name: str) -> str | None: ...
    async def set(self, name: str, value: str) -> None: ...
    async def remove_all(self, *, keep: str) -> int:
        """Delete every cursor but the one named `keep`; returns how many were deleted."""


class UnmatchedRepo(Protocol):
    async def add(self, unmatched_id: str, transfer: ObservedTransfer, reason: str,
                  invoice_id: str | None, now: datetime) -> None: ...
    async def exists(self, chain: str, tx_id: str, index: int) -> bool: ...
    async def list(self, limit: int) -> list[dict[str, Any]]: ...
    async def page(self, merchant_id: str, addresses: Sequence[str], *, limit: int,
                   starting_after: str | None) -> tuple[Sequence[dict[str, Any]], bool]: ...


class SettlementRepo(Protocol):
    async def add(self, settlement: Settlement) -> None: ...
    async def get(self, settlement_id: str) -> Settlement | None: ...
    async def for_invoice(self, invoice_id: str) -> list[Settlement]:
        """The invoice's settlement, then one per payment confirmed after it, oldest first."""
    async def page(self, merchant_id: str, *, limit: int,
                   starting_after: str | None) -> tuple[list[Settlement], bool]: ...
    async def forwarded_total(self, merchant_id: str, asset: str) -> int:
        """Net the merchant's fee collector forwarded on chain, over all settlements."""


class LedgerRepo(Protocol):
    async def post(self, entry: JournalEntry, now: datetime) -> None: ...
    async def balances(self, account_prefix: str | None = None) -> dict[tuple[str, str], int]: ...
    async def postings(self) -> list[Posting]: ...


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    txid: int
    id: str
    type: str
    merchant_id: str | None
    subject_id: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventWindow:
    """The next events of the log, looked at cheaply (EventLog.window): the type of each, in
    order, and in full only those a consumer asked for. `end` is where the consumer stands
    once it has handled them (None: nothing new)."""

    end: tuple[int, int] | None
    types: Sequence[str]
    events: Sequence[StoredEvent]


@dataclass(frozen=True, slots=True)
class ConsumerLag:
    """How far one reader of the event log is behind (for /metrics)."""

    consumer: str
    events: int  # unread events, counted up to a cap
    oldest_unread: datetime | None


class EventLog(Protocol):
    async def append(self, event: Event, now: datetime) -> str: ...
    async def flush(self) -> None:
        """Write appended events now (the unit of work does it before committing)."""
    async def read(self, after: tuple[int, int], limit: int, merchant_id: str | None = None,
                   types: Collection[str] = ()) -> Sequence[StoredEvent]:
        """Events after `after` in commit order; only these `types` when some are given."""
    async def window(self, after: tuple[int, int], limit: int,
                     wanted: Callable[[str, str | None], bool]) -> EventWindow:
        """The next `limit` events' types, and in full those `wanted` (by type and merchant):
        for consumers that need few of the events they must look at."""
    async def position_of(self, event_id: str,
                          merchant_id: str | None = None) -> tuple[int, int] | None: ...
    async def count(self) -> int: ...
    async def consumer_position(self, name: str) -> tuple[int, int]: ...
    async def consumer_lags(self, cap: int) -> list[ConsumerLag]: ...
    async def set_consumer_position(self, name: str, position: tuple[int, int]) -> None: ...


class EventSink(Protocol):
    """Where the event log is exported (adapters/events/): a broker's stream.

    `publish` returns once the broker holds every event given, and raises if it may not.
    An event published again (after a crash, the same id) is not stored twice, and the
    events of one aggregate (`subject_id`) are stored in the order given."""

    async def publish(self, events: Sequence[StoredEvent]) -> None: ...


class IdempotencyRepo(Protocol):
    async def save(self, merchant_id: str, key: str, request_hash: str, result: Any,
                   now: datetime) -> None:
        """Store what the request produced; raises IdempotencyClash if another request stored
        one first."""

    async def get(self, merchant_id: str, key: str) -> tuple[str, Any] | None:
        """(request hash, stored result)."""


@dataclass(frozen=True, slots=True)
class DailyRow:
    """One merchant's settlements of one asset on one day (UTC)."""

    day: str
    asset: str
    gross: int
    fees: int
    count: int


@dataclass(frozen=True, slots=True)
class ConfirmedPayment:
    id: str
    asset: str
    detected_at: datetime
    confirmed_at: datetime

    @property
    def seconds(self) -> float:
        return (self.confirmed_at - self.detected_at).total_seconds()


class ReadModels(Protocol):
    async def apply_batch(self, events: Sequence[StoredEvent]) -> None: ...
    async def reset(self) -> None: ...
    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]: ...
    async def merchant_summary(self, merchant_id: str) -> list[dict[str, Any]]: ...
    async def invoice_summary(self, merchant_id: str) -> dict[str, int]: ...
    async def daily_settlements(self, merchant_id: str, since: str) -> list[DailyRow]:
        """The merchant's settlements per day and asset, from `since` (YYYY-MM-DD) on."""
    async def confirmed_payments(self, merchant_id: str, limit: int) -> list[ConfirmedPayment]:
        """The merchant's newest confirmed payments, with when each was seen and confirmed."""
    async def events_about(self, merchant_id: str, subject_ids: Sequence[str],
                           limit: int) -> list[StoredEvent]:
        """The merchant's events about these objects, in commit order."""


class Sealer(Protocol):
    """Encrypts a secret at rest, bound to the row that holds it (`aad`)."""

    def seal(self, plaintext: bytes, *, aad: bytes) -> str: ...
    def open(self, token: str, *, aad: bytes) -> bytes: ...
    def needs_rewrap(self, token: str) -> bool: ...


class UrlGuard(Protocol):
    async def check(self, url: str) -> None:
        """Raise DomainError (field "url") when the URL may not receive webhooks: not https
        outside development, or a host that is or resolves to a non-public address."""


class Sent(Protocol):
    """What one webhook attempt got: the status (None: no response), the start of the body,
    how long it took, and why it failed when it did."""

    @property
    def status(self) -> int | None: ...
    @property
    def excerpt(self) -> str: ...
    @property
    def duration_ms(self) -> int: ...
    @property
    def error(self) -> str | None: ...


class WebhookSender(Protocol):
    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> Sent:
        """POST once, to the address the URL's host resolves to *now* if that is public; a
        network failure or a refused address comes back as `error`, never raised."""


class WebhookObjects(Protocol):
    """How a webhook shows the object an event is about: as the REST API shows it."""

    def invoice(self, invoice: Invoice) -> dict[str, Any]: ...
    def payment(self, payment: Payment) -> dict[str, Any]: ...
    def settlement(self, settlement: Settlement) -> dict[str, Any]: ...
    def event_data(self, event: StoredEvent) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery claimed for an attempt, with what sending it needs from its endpoint."""

    delivery: Delivery
    endpoint: Endpoint


class WebhookRepo(Protocol):
    async def add_endpoint(self, endpoint: Endpoint) -> None: ...
    async def endpoint(self, endpoint_id: str, *, for_update: bool = False) -> Endpoint | None: ...
    async def save_endpoint(self, endpoint: Endpoint) -> None: ...
    async def delete_endpoint(self, endpoint_id: str) -> None: ...
    async def endpoints_page(self, merchant_id: str, *, limit: int,
                             starting_after: str | None) -> tuple[list[Endpoint], bool]: ...
    async def enabled_endpoints(self, merchant_ids: Collection[str]) -> list[Endpoint]: ...
    async def subscribed_merchants(self) -> set[str]:
        """Merchants with at least one enabled endpoint."""
    async def all_endpoints(self) -> list[Endpoint]: ...
    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Insert, skipping any (event, endpoint) pair already there."""
    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Due]:
        """Due deliveries of enabled, unresting endpoints, each counted as one more attempt
        and hidden from other claimers until `lease_until` (concurrent claimers skip rows
        another holds)."""
    async def delivery(self, delivery_id: str) -> Delivery | None: ...
    async def save_delivery(self, delivery: Delivery) -> None: ...
    async def save_deliveries(self, deliveries: Sequence[Delivery]) -> None: ...
    async def add_attempts(self, attempts: Sequence[Attempt]) -> None: ...
    async def attempts(self, delivery_id: str) -> list[Attempt]: ...
    async def deliveries_page(self, endpoint_id: str, *, limit: int, starting_after: str | None,
                              status: str | None = None) -> tuple[list[Delivery], bool]: ...
    async def failures_page(self, *, limit: int,
                            starting_after: str | None) -> tuple[list[Delivery], bool]:
        """Across merchants: failed deliveries and pending ones after a failed attempt."""


class PasswordHasher(Protocol):
    """A slow, salted password hash (adapters/auth/passwords.py: Argon2id). Its calls are
    CPU-bound: the use cases run them on a worker thread."""

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; False for a wrong password or an unreadable hash."""

    def verify_dummy(self, password: str) -> None:
        """Spend what `verify` spends, against no account: an unknown email costs as much
        time as a wrong password, so timing does not tell which it was."""

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with weaker parameters than today's."""


class Tokens(Protocol):
    """Signed, short-lived access tokens (adapters/auth/tokens.py: HS256 JWT)."""

    def issue(self, principal: UserPrincipal, now: datetime) -> str:
        """A token saying `principal`, valid from `now` until `principal.expires_at`."""

    def verify(self, token: str) -> UserPrincipal | None:
        """The principal if the token is ours, untampered and unexpired, else None."""


class UserRepo(Protocol):
    async def add(self, user: User) -> bool:
        """False, writing nothing, when another user has the email."""
    async def get(self, user_id: str, *, for_update: bool = False) -> User | None: ...
    async def by_email(self, email: str) -> User | None:
        """`email` in stored form (domain.users.normalize_email)."""
    async def all(self) -> Sequence[User]: ...
    async def for_merchant(self, merchant_id: str, *, for_update: bool = False) -> Sequence[User]:
        """Oldest first; `for_update` locks the rows (where the database can) until commit."""
    async def save_lockout(self, user_id: str, lockout: Lockout) -> None: ...
    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...
    async def set_access(self, user_id: str, role: Role, disabled_at: datetime | None) -> None:
        """Set the user's role and when it was disabled (None: enabled)."""


class SessionRepo(Protocol):
    async def add(self, token: RefreshToken) -> None: ...
    async def by_hash(self, token_hash: str) -> RefreshToken | None: ...
    async def mark_used(self, token_id: str, now: datetime) -> bool:
        """Spend the token; False (nothing written) when it was spent already: of concurrent
        callers exactly one gets True."""
    async def revoke_family(self, family_id: str, now: datetime) -> int:
        """Revoke every token of the session not yet revoked; how many."""
    async def family_active(self, family_id: str) -> bool: ...
    async def revoke_user(self, user_id: str, now: datetime) -> int:
        """Revoke every token of every session of the user not yet revoked; how many."""


@dataclass(frozen=True, slots=True)
class ProviderSnapshot:
    """One provider endpoint as its process sees it now (the chain adapters' provider
    clients): breaker state, recent success rate, latency, counters, the last error. No URL,
    no key: the provider layer's error texts name the endpoint and the request, redacted."""

    name: str  # the endpoint's configured name, unique across the chain adapters' providers
    host: str
    state: str  # closed, open, half_open
    success_rate: float | None  # share of good outcomes in the recent window; None: no traffic
    latency_ms: float | None
    failures: int
    throttled: int
    consecutive_failures: int
    last_error: str | None
    last_error_age_s: float | None


@dataclass(frozen=True, slots=True)
class ProviderReport:
    """A snapshot as stored: when and by which process (hostname:pid) it was reported."""

    snapshot: ProviderSnapshot
    updated_at: datetime
    process: str


class ProviderHealthRepo(Protocol):
    async def put(self, reports: Sequence[ProviderReport]) -> None:
        """Store each endpoint's report, replacing the endpoint's previous one."""

    async def all(self) -> list[ProviderReport]:
        """Every endpoint's latest report, by name."""


class UnitOfWork(Protocol):
    @property
    def merchants(self) -> MerchantRepo: ...
    @property
    def collectors(self) -> CollectorRepo: ...
    @property
    def api_keys(self) -> ApiKeyRepo: ...
    @property
    def invoices(self) -> InvoiceRepo: ...
    @property
    def payments(self) -> PaymentRepo: ...
    @property
    def unmatched(self) -> UnmatchedRepo: ...
    @property
    def settlements(self) -> SettlementRepo: ...
    @property
    def ledger(self) -> LedgerRepo: ...
    @property
    def events(self) -> EventLog: ...
    @property
    def idempotency(self) -> IdempotencyRepo: ...
    @property
    def read_models(self) -> ReadModels: ...
    @property
    def counters(self) -> CounterRepo: ...
    @property
    def cursors(self) -> CursorRepo: ...
    @property
    def webhooks(self) -> WebhookRepo: ...
    @property
    def users(self) -> UserRepo: ...
    @property
    def sessions(self) -> SessionRepo: ...
    @property
    def provider_health(self) -> ProviderHealthRepo: ...

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool = True) -> UnitOfWork: ...


class Leases(Protocol):
    """Who runs a background job: exactly one holder of a job's lease cluster-wide, taken
    over by another process soon after the holder dies."""

    async def try_acquire(self, job: str) -> bool:
        """True when this process holds `job`'s lease (newly or still); False when another
        does or the lease store cannot be reached (ask again later)."""

    async def release(self, job: str) -> None:
        """Give `job`'s lease up, for another process to take."""

    async def running(self, jobs: Collection[str]) -> set[str]:
        """Which of `jobs` are held by some process now (for the health check)."""

    async def close(self) -> None:
        """Give every lease up."""


class IdempotencyClash(Exception):
    """Another request already holds this Idempotency-Key."""


class SignerUnavailable(Exception):
    """The hot-wallet signer could not be asked (socket down, an error frame): nothing is
    known of the request; ask again, the signer refuses a request id it already signed."""


@dataclass(frozen=True, slots=True)
class SignRequest:
    """One transfer asked of the signer (domain/signer_policy.TransferRequest's fields)."""

    request_id: str
    kind: str  # payout | refund | supplier_payment | fee_sweep
    asset: str
    amount: int
    destination: str
    destination_kind: str  # merchant_wallet | payer_wallet | supplier | treasury
    ledger_entry_id: int
    # The message's text comment: a supplier payment's (e.g. Fragment's "…Ref#<id>", by which
    # the supplier finds it); None: the signer writes "<kind> <request_id>". Other kinds may
    # not carry one (the signer's policy refuses it).
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class SignOutcome:
    """What the signer says of a request: recorded or broadcast (signed, on its way),
    confirmed or failed (the wallet's transaction), or refused (never signed)."""

    request_id: str
    status: str
    refusal: str | None = None
    reason: str | None = None
    message_hash: str | None = None
    tx_hash: str | None = None
    bounced: bool = False  # the destination sent it back (a failed payout)
    # For a confirmed one: whether the destination's transaction took it (None: not seen yet)
    delivered: bool | None = None
    network_fee: int = 0  # its share of the nanotons the chain charged the hot wallet


class Signer(Protocol):
    """The hot-wallet signer (`krypton signer run`) seen from the use cases."""

    async def transfer(self, requests: Sequence[SignRequest]) -> list[SignOutcome]:
        """One outcome per request, in order; SignerUnavailable if it cannot be asked."""

    async def status(self, request_id: str) -> SignOutcome | None:
        """The request as the signer recorded it; None if it never signed it."""


# --- the Stars shop's suppliers (app/fulfilment.py) ---

class SupplierError(Exception):
    """A supplier call failed. `retryable`: worth asking again (timeout, 5xx, rate limit);
    otherwise the supplier cannot do it (unknown username, price changed, out of balance)."""

    def __init__(self, message: str, *, retryable: bool, code: str = "supplier_error") -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code


@dataclass(frozen=True, slots=True)
class SupplierQuote:
    supplier: str
    quantity: int
    asset: str  # what the supplier is paid in ("TON"; "XTR" for the bot's Stars balance)
    cost: int  # smallest units of `asset`
    cost_ton: int  # the same in nanoton: what the payer is charged for it
    ref: str | None = None  # the supplier's price reference, if it has one
    product: str = "stars"  # domain/order.Product: "stars" (quantity = Stars) | "premium" (months)


@dataclass(frozen=True, slots=True)
class SupplierRecipient:
    username: str
    name: str
    photo_url: str | None
    ref: str | None = None  # the supplier's id for this recipient


@dataclass(frozen=True, slots=True)
class SupplierPayment:
    """A transfer the supplier asks for: the hot wallet pays it through the signer."""

    address: str
    amount: int  # nanoton
    comment: str | None


@dataclass(frozen=True, slots=True)
class SupplierOrder:
    """A supplier's purchase for one order. status: pending_payment (pay `payment`) |
    processing | delivered | failed (with `failure`) | unknown (the supplier never saw it)."""

    order_id: str
    status: str
    ref: str | None = None
    payment: SupplierPayment | None = None
    failure: str | None = None


class StarsSupplier(Protocol):
    """One way to deliver Stars (or Premium) to a username. The order id is the supplier's
    idempotency key: purchase twice with one id and the supplier answers the first purchase."""

    name: str

    async def quote(self, quantity: int, product: str = "stars") -> SupplierQuote:
        """The price of `quantity` of `product` now; SupplierError when this supplier cannot
        sell it (it does not sell the product, or cannot reach or pay for it now)."""
    async def lookup(self, username: str) -> SupplierRecipient: ...
    async def purchase(self, order_id: str, recipient: str, quantity: int,
                       quote: SupplierQuote) -> SupplierOrder:
        """Buy `quote.product` (Stars or Premium months) for `recipient`."""
    async def status(self, order_id: str, ref: str | None = None) -> SupplierOrder:
        """What the supplier knows of the order (`ref`: its purchase id, once known)."""
    async def balance(self) -> int | None:
        """What the supplier can still spend for us (its asset's units); None: unlimited."""


class TelegramUsers(Protocol):
    """Telegram usernames the bot has met, with their user ids (table shop_telegram_users): a
    Premium gift through the Bot API needs the id, and a bot cannot look a username up."""

    async def user_id(self, username: str) -> int | None: ...
    async def remember(self, username: str, user_id: int, now: datetime) -> None: ...


class PaymentSender(Protocol):
    """Where a chain payment came from: the shop's refunds go back there."""

    async def sender_of(self, payment: Payment) -> str | None:
        """The paying wallet's raw address, None if the chain does not say (yet)."""
