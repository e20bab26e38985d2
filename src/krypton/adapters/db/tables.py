"""Table definitions (SQLAlchemy Core). Money columns are BigInteger smallest units."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import sqlalchemy as sa

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})



def json_text(value: object) -> str:
    """JSON columns' serializer on both engines: orjson, several times faster than the
    standard library's (an invoice row has two JSON columns and its event one)."""
    return orjson.dumps(value).decode()


json_value = orjson.loads  # and their deserializer


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on every database (SQLite stores naive text otherwise)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


TS = UTCDateTime()
Money = sa.BigInteger
# 64-bit ids that SQLite still treats as its rowid (autoincrement needs INTEGER there).
Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

merchants = sa.Table(
    "merchants", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("fee_bps", sa.Integer, nullable=False),
    sa.Column("confirmations_override", sa.Integer),
    sa.Column("underpayment_tolerance_bps", sa.Integer, nullable=False),
    sa.Column("methods", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("ton_address", sa.String(80)),
    # The active fee collector's address (fee_collectors has the rest): read with the
    # merchant on every invoice creation, so it costs no extra query.
    sa.Column("ton_collector", sa.String(80)),
)

# One fee-collector contract per merchant: pending until read back from the chain.
fee_collectors = sa.Table(
    "fee_collectors", metadata,
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), primary_key=True),
    sa.Column("address", sa.String(80), nullable=False, unique=True),
    sa.Column("owner", sa.String(80), nullable=False),
    sa.Column("destination", sa.String(80), nullable=False),
    sa.Column("fee_bps", sa.Integer, nullable=False),
    sa.Column("min_withdrawal", Money, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("activated_at", TS),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False, index=True),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("revoked_at", TS),
)

invoices = sa.Table(
    "invoices", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("exception", sa.String(16)),
    sa.Column("price_currency", sa.String(8), nullable=False),
    sa.Column("price_amount", Money, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("fee_bps", sa.Integer, nullable=False),
    sa.Column("underpayment_tolerance_bps", sa.Integer, nullable=False),
    sa.Column("asset", sa.String(16)),
    sa.Column("amount_paid", Money, nullable=False),
    sa.Column("amount_detected", Money, nullable=False),
    sa.Column("order_id", sa.String(200)),
    sa.Column("description", sa.String(1000)),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("redirect_url", sa.String(2000)),
    sa.Column("confirmations", sa.Integer),
    sa.Column("memo", sa.String(32), unique=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("monitor_until", TS, nullable=False),
    sa.Column("paid_at", TS),
    sa.Column("ton_address", sa.String(80)),
    sa.Column("ton_collector", sa.String(80)),  # where TON itself goes, if not ton_address
    sa.Column("tron_address", sa.String(40), unique=True),
    sa.Column("tron_index", sa.BigInteger, unique=True),
    sa.Column("rate_source", sa.String(64)),  # where its USD rates came from ("coingecko", …)
    sa.Column("rate_at", TS),  # when the oldest of them was quoted (None: a fixed table)
    # Goes up by one with every change: webhook receivers drop an update older than one seen.
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Index("ix_invoices_merchant_created", "merchant_id", "created_at", "id"),
    sa.Index("ix_invoices_merchant_order", "merchant_id", "order_id"),
    sa.Index("ix_invoices_status_expires", "status", "expires_at"),
)

payments = sa.Table(
    "payments", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("invoice_id", sa.ForeignKey("invoices.id"), nullable=False, index=True),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("chain", sa.String(16), nullable=False),
    sa.Column("tx_id", sa.String(128), nullable=False),
    sa.Column("tx_index", sa.Integer, nullable=False),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("destination", sa.String(128), nullable=False),
    sa.Column("memo", sa.String(200)),
    sa.Column("block", sa.BigInteger),
    sa.Column("confirmations", sa.Integer, nullable=False),
    sa.Column("required_confirmations", sa.Integer, nullable=False),
    sa.Column("dust", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detected_at", TS, nullable=False),
    sa.Column("confirmed_at", TS),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    # The payer's address (migration 0020): null for payments stored before it.
    sa.Column("sender", sa.String(128)),
    sa.UniqueConstraint("chain", "tx_id", "tx_index", name="uq_payments_transfer"),
)

unmatched_transfers = sa.Table(
    "unmatched_transfers", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("chain", sa.String(16), nullable=False),
    sa.Column("tx_id", sa.String(128), nullable=False),
    sa.Column("tx_index", sa.Integer, nullable=False),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("destination", sa.String(128), nullable=False),
    sa.Column("memo", sa.String(200)),
    sa.Column("block", sa.BigInteger),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("invoice_id", sa.String(40)),
    sa.Column("observed_at", TS, nullable=False),
    sa.UniqueConstraint("chain", "tx_id", "tx_index", name="uq_unmatched_transfer"),
)

# One row per transfer key, taken first by whatever files the transfer (app/ingest.py) and
# locked to the end of its transaction: concurrent watchers decide a transfer's fate (a
# payment, unmatched, or nothing) one after the other, never both. PostgreSQL only: on
# SQLite the one writer already holds the whole database.
transfer_claims = sa.Table(
    "transfer_claims", metadata,
    sa.Column("chain", sa.String(16), primary_key=True),
    sa.Column("tx_id", sa.String(128), primary_key=True),
    sa.Column("tx_index", sa.Integer, primary_key=True),
)

settlements = sa.Table(
    "settlements", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    # Several when a payment confirms after its invoice was settled (ingest.py).
    sa.Column("invoice_id", sa.ForeignKey("invoices.id"), nullable=False, index=True),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("gross", Money, nullable=False),
    sa.Column("fee", Money, nullable=False),
    sa.Column("net", Money, nullable=False),
    sa.Column("fee_bps", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    # Of net and fee: what the fee collector forwarded on chain and kept (0 when custodial).
    sa.Column("forwarded", Money, nullable=False, server_default="0"),
    sa.Column("collector_fee", Money, nullable=False, server_default="0"),
    sa.Column("collector_address", sa.String(80)),
    sa.CheckConstraint("gross = fee + net", name="gross_is_fee_plus_net"),
    sa.Index("ix_settlements_merchant_created", "merchant_id", "created_at", "id"),
)

journal_entries = sa.Table(
    "journal_entries", metadata,
    sa.Column("id", Serial, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("reference", sa.String(64), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("kind", "reference", name="uq_journal_entries_kind_reference"),
)

postings = sa.Table(
    "postings", metadata,
    sa.Column("id", Serial, primary_key=True, autoincrement=True),
    sa.Column("entry_id", sa.ForeignKey("journal_entries.id"), nullable=False, index=True),
    sa.Column("account", sa.String(100), nullable=False, index=True),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("amount", Money, nullable=False),
)

# The append-only event log, and the outbox. `txid` is the writing transaction's id on
# PostgreSQL (0 on SQLite, which has one writer at a time); consumers read in (txid, seq)
# order and only below the oldest transaction still running, so none is ever skipped.
events = sa.Table(
    "events", metadata,
    sa.Column("seq", Serial, primary_key=True, autoincrement=True),
    sa.Column("txid", sa.BigInteger, nullable=False),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("merchant_id", sa.String(40)),
    sa.Column("subject_id", sa.String(200), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Index("ix_events_txid_seq", "txid", "seq"),
    sa.Index("ix_events_merchant_txid_seq", "merchant_id", "txid", "seq"),
)

# Monotonic counters (e.g. the next Tron deposit-address index); rows are seeded by migrations.
# On PostgreSQL a counter named in SEQUENCES is that sequence instead (its row is gone):
# nextval() locks nothing to the end of the transaction, so concurrent invoice creations
# do not queue for it; its values may then commit out of order (app/watching.py copes).
counters = sa.Table(
    "counters", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

tron_deposit_index = sa.Sequence("tron_deposit_index", start=0, minvalue=0, metadata=metadata)
SEQUENCES: dict[str, sa.Sequence] = {"tron_deposit_index": tron_deposit_index}

# Where each chain watcher has read up to (e.g. a TON account's last (lt, hash)).
chain_cursors = sa.Table(
    "chain_cursors", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("value", sa.String(400), nullable=False),
)

consumer_positions = sa.Table(
    "consumer_positions", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("txid", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys", metadata,
    sa.Column("merchant_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("response", sa.JSON),
    sa.Column("created_at", TS, nullable=False),
)

# Where a merchant wants its events POSTed (app/webhooks.py). The signing secrets are sealed
# (AES-256-GCM, the row id as associated data: adapters/secrets/envelope.py); the old one
# still signs until old_secret_until after a rotation. failures/failing_since/resting_until
# are the endpoint's failure streak (domain/webhooks.Health).
webhook_endpoints = sa.Table(
    "webhook_endpoints", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("description", sa.String(500)),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.String(500)),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("old_secret", sa.Text),
    sa.Column("old_secret_until", TS),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failing_since", TS),
    sa.Column("resting_until", TS),
    sa.Column("created_at", TS, nullable=False),
    sa.Index("ix_webhook_endpoints_merchant_created", "merchant_id", "created_at", "id"),
)

# One per (event, endpoint): written with the webhook relay's position, so each event is
# handed to each endpoint once. A pending delivery is due at next_attempt_at; a sender
# claims it by moving that past the lease, so a sender that dies mid-send leaves it to be
# tried again when the lease runs out. The body is kept as sent (every attempt sends it).
webhook_deliveries = sa.Table(
    "webhook_deliveries", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("endpoint_id", sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("merchant_id", sa.String(40), nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("event_type", sa.String(40), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("schedule_from", sa.Integer, nullable=False),  # attempts before a redelivery
    sa.Column("next_attempt_at", TS),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("finished_at", TS),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.String(500)),
    sa.UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
    sa.Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
)

webhook_attempts = sa.Table(
    "webhook_attempts", metadata,
    sa.Column("delivery_id", sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("request_headers", sa.JSON, nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("error", sa.String(500)),
    sa.Column("response_excerpt", sa.Text, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
)

# The Telegram Stars invoice link of an invoice, made once by the bot (app/stars.py).
stars_links = sa.Table(
    "stars_links", metadata,
    sa.Column("invoice_id", sa.ForeignKey("invoices.id"), primary_key=True),
    sa.Column("link", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

# Read models, rebuilt from the event log by `krypton replay`.
rm_merchant_revenue = sa.Table(
    "rm_merchant_revenue", metadata,
    sa.Column("merchant_id", sa.String(40), primary_key=True),
    sa.Column("asset", sa.String(16), primary_key=True),
    sa.Column("gross", Money, nullable=False),
    sa.Column("net", Money, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
)

rm_invoice_summary = sa.Table(
    "rm_invoice_summary", metadata,
    sa.Column("merchant_id", sa.String(40), primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

rm_daily_settlements = sa.Table(
    "rm_daily_settlements", metadata,
    sa.Column("merchant_id", sa.String(40), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("asset", sa.String(16), primary_key=True),
    sa.Column("gross", Money, nullable=False),
    sa.Column("fees", Money, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
)

rm_payment_stats = sa.Table(
    "rm_payment_stats", metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("asset", sa.String(16), primary_key=True),
    sa.Column("detected", sa.Integer, nullable=False),
    sa.Column("confirmed", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("confirm_ms_total", sa.BigInteger, nullable=False),
)

READ_MODELS = (rm_merchant_revenue, rm_invoice_summary, rm_daily_settlements, rm_payment_stats)

# Each provider endpoint's health as the process running the chain job last saw it (its
# breakers and counters live in that process's memory): one row per endpoint, overwritten
# every few seconds, so every process of the cluster can show it. No URL, no key. Integers,
# not floats: the direct PostgreSQL path (pg_direct.py) has no result type for a float
# column, and whole milliseconds, seconds and basis points are precise enough to show.
provider_health = sa.Table(
    "provider_health", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("success_bps", sa.Integer),  # recent success rate, 10000 = all; null: no traffic
    sa.Column("latency_ms", sa.Integer),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("throttled", sa.Integer, nullable=False),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("last_error_age_s", sa.Integer),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("process", sa.String(300), nullable=False),
)

# --- merchant bot (migration 0012) ---

# Telegram chats linked to a merchant by a one-time code (app/merchant_bot.py): a chat
# belongs to one merchant at a time; a merchant may have several chats.
telegram_chats = sa.Table(
    "telegram_chats", metadata,
    sa.Column("chat_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("chat_type", sa.String(20), nullable=False),
    sa.Column("title", sa.String(200)),
    sa.Column("linked_by", sa.BigInteger),  # the Telegram user who sent the code
    sa.Column("linked_at", TS, nullable=False),
    sa.Index("ix_telegram_chats_merchant_id", "merchant_id"),
)

# One-time link codes: only their hash is kept; spent once, and only before expires_at.
telegram_link_codes = sa.Table(
    "telegram_link_codes", metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("created_by", sa.String(100)),  # a dashboard user's id, or "cli"
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("used_at", TS),
    sa.Column("used_by_chat", sa.BigInteger),
)

# Notifications to linked chats: an outbox the relay fills from the event log and the
# sender empties, each message retried on its own schedule.
telegram_messages = sa.Table(
    "telegram_messages", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("chat_id", sa.BigInteger, nullable=False),
    sa.Column("merchant_id", sa.String(40), nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False),
    # The event's place in the log (commit order): a chat's messages go out in this order.
    sa.Column("event_txid", sa.BigInteger, nullable=False),
    sa.Column("event_seq", sa.BigInteger, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", TS),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("finished_at", TS),
    sa.Column("last_error", sa.String(500)),
    sa.UniqueConstraint("event_id", "chat_id", name="uq_telegram_messages_event_chat"),
    sa.Index("ix_telegram_messages_status_next", "status", "next_attempt_at"),
)

# --- Mini-App (migration 0013) ---
# The Telegram user who first opened an invoice in the Mini App with verified initData: that
# user owns it (its "My purchases" list); later users may still pay it.
miniapp_bindings = sa.Table(
    "miniapp_bindings", metadata,
    sa.Column("invoice_id", sa.ForeignKey("invoices.id"), primary_key=True),
    sa.Column("telegram_user_id", sa.BigInteger, nullable=False),
    sa.Column("bound_at", TS, nullable=False),
    sa.Index("ix_miniapp_bindings_user_bound", "telegram_user_id", "bound_at"),
)

# --- Stars money (migration 0014) ---
# Refunds of confirmed payments (Stars now; chain payouts with issue 17). At most one
# pending or succeeded refund a payment (app/refunds.py checks it under the invoice's lock).
refunds = sa.Table(
    "refunds", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("invoice_id", sa.ForeignKey("invoices.id"), nullable=False, index=True),
    sa.Column("payment_id", sa.ForeignKey("payments.id"), nullable=False, index=True),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("reason", sa.String(500)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("failure", sa.String(500)),
    sa.Column("from_held", Money, nullable=False, server_default="0"),
    sa.Column("settlement_id", sa.String(40)),  # whose held money `from_held` came from
    # The request's Idempotency-Key and body hash: a retry finds (and resumes) its refund.
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("request_hash", sa.String(64)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("completed_at", TS),
    sa.UniqueConstraint("merchant_id", "idempotency_key", name="uq_refunds_merchant_id"),
    sa.Index("ix_refunds_status_created", "status", "created_at"),
)

# Who paid each Stars charge: refundStarPayment needs the payer's user id with the charge id.
stars_charges = sa.Table(
    "stars_charges", metadata,
    sa.Column("charge_id", sa.String(128), primary_key=True),
    sa.Column("payer_id", sa.BigInteger, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

# A Stars subscription: the invoice that started it, its payer and how long it runs.
stars_subscriptions = sa.Table(
    "stars_subscriptions", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("invoice_id", sa.ForeignKey("invoices.id"), nullable=False, unique=True),
    sa.Column("period", sa.Integer, nullable=False),  # seconds; Telegram allows 30 days only
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("payer_id", sa.BigInteger),
    sa.Column("expires_at", TS),
    sa.Column("renewals", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# Each renewal charge of a subscription, and the invoice made for it (once per charge id).
stars_renewals = sa.Table(
    "stars_renewals", metadata,
    sa.Column("charge_id", sa.String(128), primary_key=True),
    sa.Column("subscription_id", sa.ForeignKey("stars_subscriptions.id"), nullable=False,
              index=True),
    sa.Column("invoice_id", sa.ForeignKey("invoices.id"), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("expires_at", TS),
    sa.Column("renewed_at", TS),  # set once the subscription was advanced for this charge
    sa.Column("created_at", TS, nullable=False),
)

# Reports of `getStarTransactions` compared with the ledger (`krypton stars reconcile`).
stars_reconciliations = sa.Table(
    "stars_reconciliations", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("created_at", TS, nullable=False, index=True),
    sa.Column("transactions", sa.Integer, nullable=False),
    sa.Column("differences", sa.JSON, nullable=False),
)

# --- signer (migration 0015) ---

# The hot-wallet signer's outbox (adapters/signer/outbox.py): one row per signed request.
# A row is written with its external's seqno, message hash and BOC in the same transaction
# as its audit row, BEFORE the BOC is broadcast; status recorded -> broadcast -> confirmed |
# failed. Rows of one batch share the external (seqno, message_hash, boc). request_id and
# ledger_entry_id are unique: a request, and a ledger entry, is signed for once.
signer_transfers = sa.Table(
    "signer_transfers", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("request_id", sa.String(100), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("destination", sa.String(100), nullable=False),
    sa.Column("destination_kind", sa.String(32), nullable=False),
    sa.Column("ledger_entry_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("wallet", sa.String(70), nullable=False),
    sa.Column("seqno", sa.BigInteger, nullable=False),
    sa.Column("message_hash", sa.String(44), nullable=False, index=True),
    sa.Column("boc", sa.Text, nullable=False),
    sa.Column("valid_until", sa.BigInteger, nullable=False),  # unix seconds, as the wallet checks it
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("tx_hash", sa.String(44)),
    sa.Column("failure", sa.String(500)),
    sa.Column("day", sa.String(10), nullable=False),  # UTC day it was first signed: the daily limit
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    # A supplier payment's comment (migration 0020): a re-signed external carries it again.
    sa.Column("comment", sa.String(200)),
)

# Append-only: one row per signature, with the request that caused it (never updated).
signer_audit = sa.Table(
    "signer_audit", metadata,
    sa.Column("id", Serial, primary_key=True, autoincrement=True),
    sa.Column("transfer_id", sa.ForeignKey("signer_transfers.id"), nullable=False, index=True),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("wallet", sa.String(70), nullable=False),
    sa.Column("seqno", sa.BigInteger, nullable=False),
    sa.Column("message_hash", sa.String(44), nullable=False),
    sa.Column("signed_at", TS, nullable=False),
)

# --- payouts (migration 0016) ---

# Merchants' withdrawals (adapters/db/payouts.py; states in domain/payout.py). The amount's
# ledger entries carry the payout's id as their reference.
payouts = sa.Table(
    "payouts", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("destination", sa.String(100), nullable=False),
    sa.Column("description", sa.String(200)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message_hash", sa.String(44)),
    sa.Column("tx_hash", sa.String(44)),
    sa.Column("network_fee", Money, nullable=False, server_default="0"),
    sa.Column("failure", sa.String(500)),
    # The request's Idempotency-Key and body hash: a retry answers with its payout.
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("request_hash", sa.String(64)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    # Migration 0020: a confirmed payout's bounce watch (domain/payout.py): when to ask the
    # signer again (null: not watched) and how many checks were answered.
    sa.Column("bounce_check_at", TS),
    sa.Column("bounce_checks", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("merchant_id", "idempotency_key", name="uq_payouts_merchant_id"),
    sa.Index("ix_payouts_merchant_id_created_at", "merchant_id", "created_at"),
    sa.Index("ix_payouts_status_created_at", "status", "created_at"),
    # The tracker's due bounce checks: status = confirmed, bounce_check_at <= now, in order.
    sa.Index("ix_payouts_status_bounce_check_at", "status", "bounce_check_at"),
)

# The platform's fee sweeps (app/fee_sweeps.py): fees:<asset> to the treasury address
# through the signer, or, for Stars, to owner:XTR in the ledger (destination null).
fee_sweeps = sa.Table(
    "fee_sweeps", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("destination", sa.String(100)),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("failure", sa.String(500)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# --- crypto refunds (migration 0017) ---

# What a chain refund adds to its `refunds` row (app/refunds.py): where it goes (the
# payment's source, or the address the payer gave through the claim link), the network fee
# kept from it, the claim link's nonce and expiry (spent once: claimed_at), and the ledger
# entry and signer request that send it.
crypto_refunds = sa.Table(
    "crypto_refunds", metadata,
    sa.Column("refund_id", sa.ForeignKey("refunds.id"), primary_key=True),
    sa.Column("target", sa.String(8), nullable=False),  # source | claim
    sa.Column("destination", sa.String(100)),  # raw address; None until the payer claims
    sa.Column("fee", Money, nullable=False),
    sa.Column("claim_nonce", sa.String(64)),
    sa.Column("claim_expires_at", TS),
    sa.Column("claimed_at", TS),
    sa.Column("ledger_entry_id", sa.BigInteger),  # the `refund` entry the signer checks
    sa.Column("signer_request_id", sa.String(100), unique=True),
    sa.Column("updated_at", TS, nullable=False),
)

# --- shop orders (migration 0018) ---

# The Stars shop's orders (adapters/db/orders.py). An order's checkout invoice belongs to the
# shop merchant; status follows domain/order.py. `supplier_request` is set, in the same
# transaction as the supplier-payment ledger entry, BEFORE the signer is asked: from then on
# the order is committed to that supplier and never pays another (never twice).
shop_orders = sa.Table(
    "shop_orders", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("buyer", sa.String(100), index=True),
    sa.Column("recipient", sa.String(64), nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("invoice_id", sa.String(40), unique=True),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("cost", Money, nullable=False),
    sa.Column("fee", Money, nullable=False),
    sa.Column("total", Money, nullable=False),
    sa.Column("supplier", sa.String(32), nullable=False),  # the quote's, then the one paid
    sa.Column("supplier_ref", sa.String(100)),  # the supplier's id of the purchase
    sa.Column("supplier_request", sa.String(100)),  # the signer request paying the supplier
    sa.Column("supplier_amount", Money),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("payer_address", sa.String(100)),  # the paying transfer's sender: refunds go there
    sa.Column("refund_amount", Money),
    sa.Column("refund_request", sa.String(100)),
    sa.Column("refund_tx", sa.String(100)),
    sa.Column("failure", sa.String(500)),
    sa.Column("idempotency_key", sa.String(200), unique=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("paid_at", TS),
    sa.Column("deadline_at", TS),  # paid_at + the fulfilment deadline: refunded after it
    sa.Column("next_attempt_at", TS, index=True),
    sa.Column("delivered_at", TS),
    # domain/order.Product: "stars" (quantity = Stars) | "premium" (quantity = months); 0021
    sa.Column("product", sa.String(16), nullable=False, server_default="stars"),
)


# --- shop buyers (migration 0019) ---

# ton_proof payloads already used to sign in (adapters/tonconnect/payloads.py): a payload is
# good for one sign-in. Rows past `expires_at` prove nothing anyway and may be pruned.
shop_proof_payloads = sa.Table(
    "shop_proof_payloads", metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("expires_at", TS, nullable=False, index=True),
)

# --- payments sender (migration 0020) ---
# payments.sender, signer_transfers.comment, payouts.bounce_check_at and .bounce_checks
# (with ix_payouts_status_bounce_check_at): columns in those tables' definitions above.

# --- shop products (migration 0021) ---

# Telegram usernames the bot has seen with their user ids (adapters/suppliers/premium_gift.py):
# a Premium gift through the Bot API needs the recipient's user id, and Telegram gives a bot
# no lookup by username. Filled when a user signs in to the shop from the Mini App.
shop_telegram_users = sa.Table(
    "shop_telegram_users", metadata,
    sa.Column("username", sa.String(64), primary_key=True),  # lower case, without "@"
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("seen_at", TS, nullable=False),
)

# --- provider quorum (migration 0022) ---
